//! System endpoints (`/_ping`, `/version`, `/info`, `/events`) and volumes and networks
//! (list, create, inspect, delete).

use std::time::Duration;

use bytes::Bytes;
use gcr_engine::container::record::now_ns;
use gcr_engine::events::Event;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::server::Shared;

/// `GET|HEAD /_ping`: `OK`, with the `Api-Version` header clients negotiate with.
pub fn ping(head: bool) -> Resp {
    let mut r = if head {
        http::empty(StatusCode::OK)
    } else {
        http::text(StatusCode::OK, "OK")
    };
    if let Ok(v) = "no-cache, no-store, must-revalidate".parse() {
        r.headers_mut().insert(hyper::header::CACHE_CONTROL, v);
    }
    if let Ok(v) = "false".parse() {
        r.headers_mut().insert("docker-experimental", v);
    }
    r
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// `GET /version`.
pub fn version() -> Resp {
    let v = env!("CARGO_PKG_VERSION");
    http::json(
        StatusCode::OK,
        &json!({
            "Platform": { "Name": "gcr" },
            "Components": [{ "Name": "Engine", "Version": v, "Details": {
                "ApiVersion": crate::API_VERSION, "MinAPIVersion": crate::MIN_API_VERSION,
                "Os": "linux", "Arch": arch(), "KernelVersion": kernel(),
            } }],
            "Version": v,
            "ApiVersion": crate::API_VERSION,
            "MinAPIVersion": crate::MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": arch(),
            "KernelVersion": kernel(),
        }),
    )
}

/// `GET /info`.
pub async fn info(st: &Shared) -> Result<Resp, HttpError> {
    let v = st
        .engine(|e| {
            let images = e.images()?.len();
            let cs = e.ps(true)?;
            let count = |s: gcr_engine::State| cs.iter().filter(|(r, _)| r.state == s).count();
            let (running, paused) = (count(gcr_engine::State::Running), count(gcr_engine::State::Paused));
            let cgroup = gcr_engine::cgroup_version().unwrap_or_else(|| "none".into());
            let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
            Ok(json!({
                "ID": "gcr",
                "Containers": cs.len(),
                "ContainersRunning": running,
                "ContainersPaused": paused,
                "ContainersStopped": cs.len() - running - paused,
                "Images": images,
                "Driver": "overlay",
                "DockerRootDir": e.root(),
                "CgroupDriver": "cgroupfs",
                "CgroupVersion": if cgroup == "V2" { "2" } else { "1" },
                "KernelVersion": kernel(),
                "OperatingSystem": "gcr",
                "OSType": "linux",
                "Architecture": std::env::consts::ARCH,
                "NCPU": ncpu,
                "Name": rustix::system::uname().nodename().to_string_lossy(),
                "ServerVersion": env!("CARGO_PKG_VERSION"),
                "Runtimes": { "gcr": { "path": "gcr" } },
                "DefaultRuntime": "gcr",
                "SecurityOptions": ["name=seccomp,profile=builtin"],
                "Plugins": { "Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file"] },
                "Swarm": { "LocalNodeState": "inactive", "ControlAvailable": false },
                "Warnings": [],
            }))
        })
        .await?;
    Ok(http::json(StatusCode::OK, &v))
}

/// An event in the Engine API's shape.
fn docker_event(e: &Event) -> Value {
    let action = docker_action(e);
    let mut attrs = Map::new();
    if let Some(n) = &e.name {
        attrs.insert("name".into(), n.clone().into());
    }
    json!({
        "Type": e.kind,
        "Action": action,
        "Actor": { "ID": e.object, "Attributes": attrs },
        "scope": "local",
        "time": e.time_ns / 1_000_000_000,
        "timeNano": e.time_ns,
        "status": action,
        "id": e.object,
    })
}

/// Docker's action name for an event (gcr's `rm` cause is Docker's `destroy`).
fn docker_action(e: &Event) -> String {
    let a = e.cause.as_deref().or(e.to.as_deref()).unwrap_or("");
    match (e.kind.as_str(), a) {
        ("container", "rm") => "destroy".into(),
        // Its cause is the grant's JSON (see `gcr_engine::container::grant_events`).
        ("grant", _) => e.to.clone().unwrap_or_default(),
        (_, a) => a.split(':').next().unwrap_or(a).to_string(),
    }
}

fn event_passes(e: &Event, filters: &[(String, String)]) -> bool {
    let mut keys: Vec<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let action = docker_action(e);
    keys.into_iter().all(|k| {
        filters
            .iter()
            .filter(|(fk, _)| fk == k)
            .any(|(_, v)| match k {
                "type" => e.kind == *v,
                "event" => action == *v,
                "container" | "image" | "volume" | "network" => {
                    e.kind == k
                        && (e.object.starts_with(v.as_str()) || e.name.as_deref() == Some(v))
                }
                _ => false,
            })
    })
}

fn secs_param(q: &Query, k: &str) -> Result<Option<i64>, HttpError> {
    let Some(v) = q.get(k).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    gcr_engine::events::parse_since(v, now_ns())
        .map(Some)
        .ok_or_else(|| {
            HttpError::bad_request(format!("invalid {k} '{v}': use unix seconds or a time"))
        })
}

/// `GET /events?since=&until=&filters=`: JSON objects, one per event, streamed (until
/// `until`, or for as long as the client stays).
pub async fn events(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let filters = q.filters()?;
    for (k, _) in &filters {
        if !["type", "event", "container", "image", "volume", "network"].contains(&k.as_str()) {
            return Err(HttpError::bad_request(format!(
                "invalid filter '{k}': gcr filters events by type, event, container, image, volume, network"
            )));
        }
    }
    let since = secs_param(q, "since")?.unwrap_or_else(now_ns);
    let until = secs_param(q, "until")?;
    let (tx, rx) = mpsc::channel(64);
    let st = st.clone();
    tokio::spawn(async move {
        let mut last = i64::MIN;
        loop {
            let batch = match st.engine(move |e| Ok(e.events_after(since, last)?)).await {
                Ok(b) => b,
                Err(_) => return,
            };
            for e in batch {
                last = e.seq;
                if until.is_some_and(|u| e.time_ns >= u) {
                    return;
                }
                if !event_passes(&e, &filters) {
                    continue;
                }
                let mut b = serde_json::to_vec(&docker_event(&e)).unwrap_or_default();
                b.push(b'\n');
                if tx.send(Bytes::from(b)).await.is_err() {
                    return;
                }
            }
            if until.is_some_and(|u| now_ns() >= u) || tx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    Ok(http::stream("application/json", rx))
}

pub(crate) fn volume_json(v: &gcr_engine::volumes::admin::VolumeInfo) -> Value {
    json!({
        "Name": v.name,
        "Driver": v.driver,
        "Mountpoint": v.mountpoint,
        "CreatedAt": gcr_engine::logs::rfc3339_nanos(v.created * 1_000_000_000),
        "Labels": {},
        "Scope": "local",
        "Options": {},
    })
}

/// `GET /volumes`.
pub async fn volumes(st: &Shared) -> Result<Resp, HttpError> {
    let list = st.engine(|e| Ok(e.volume_list()?)).await?;
    let vs: Vec<Value> = list.iter().map(volume_json).collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({ "Volumes": vs, "Warnings": [] }),
    ))
}

/// `POST /volumes/create` (`{"Name": …}`; no name: a generated one).
pub async fn volume_create(st: &Shared, req: Request<Incoming>) -> Result<Resp, HttpError> {
    let body = http::read_json(req.into_body()).await?;
    let name = match body.get("Name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            return Err(HttpError::bad_request(format!(
                "invalid Name {v}: expected a string"
            )))
        }
    };
    if let Some(d) = body.get("Driver").and_then(Value::as_str) {
        if !d.is_empty() && d != "local" {
            return Err(HttpError::bad_request(format!(
                "volume driver '{d}' is not available; gcr has the local driver only"
            )));
        }
    }
    let v = st
        .engine(move |e| Ok(e.volume_create(name.as_deref())?))
        .await?;
    Ok(http::json(StatusCode::CREATED, &volume_json(&v)))
}

/// `GET /volumes/{name}`.
pub async fn volume_inspect(st: &Shared, name: &str) -> Result<Resp, HttpError> {
    let name = name.to_string();
    let v = st.engine(move |e| Ok(e.volume_inspect(&name)?)).await?;
    Ok(http::json(StatusCode::OK, &volume_json(&v)))
}

/// `DELETE /volumes/{name}`.
pub async fn volume_remove(st: &Shared, name: &str) -> Result<Resp, HttpError> {
    let name = name.to_string();
    st.engine(move |e| Ok(e.volume_remove(&name)?)).await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

fn network_json(n: &gcr_engine::network::admin::NetworkInfo) -> Value {
    let mut members = Map::new();
    for m in &n.containers {
        members.insert(m.id.clone(), json!({ "Name": m.name, "IPv4Address": m.ip }));
    }
    let config = if n.subnet.is_empty() {
        json!([])
    } else {
        json!([{ "Subnet": n.subnet, "Gateway": n.gateway }])
    };
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": gcr_engine::logs::rfc3339_nanos(n.created * 1_000_000_000),
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": { "Driver": "default", "Config": config },
        "Internal": false,
        "Attachable": false,
        "Containers": members,
        "Options": { "com.docker.network.bridge.name": n.bridge },
        "Labels": {},
    })
}

/// `GET /networks`.
pub async fn networks(st: &Shared) -> Result<Resp, HttpError> {
    let list = st.engine(|e| Ok(e.network_list()?)).await?;
    let ns: Vec<Value> = list.iter().map(network_json).collect();
    Ok(http::json(StatusCode::OK, &Value::Array(ns)))
}

/// `POST /networks/create` (`{"Name": …, "IPAM": {"Config": [{"Subnet": …}]}}`).
pub async fn network_create(st: &Shared, req: Request<Incoming>) -> Result<Resp, HttpError> {
    let body = http::read_json(req.into_body()).await?;
    let name = body
        .get("Name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| HttpError::bad_request("network name (Name) must be given"))?
        .to_string();
    if let Some(d) = body.get("Driver").and_then(Value::as_str) {
        if !d.is_empty() && d != "bridge" {
            return Err(HttpError::bad_request(format!(
                "network driver '{d}' is not available; gcr makes bridge networks"
            )));
        }
    }
    let subnet = body["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .map(str::to_string);
    let n = st
        .engine(move |e| Ok(e.network_create(&name, subnet.as_deref())?))
        .await?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({ "Id": n.id, "Warning": "" }),
    ))
}

/// `GET /networks/{name}`.
pub async fn network_inspect(st: &Shared, name: &str) -> Result<Resp, HttpError> {
    let name = name.to_string();
    let n = st.engine(move |e| Ok(e.network_inspect(&name)?)).await?;
    Ok(http::json(StatusCode::OK, &network_json(&n)))
}

/// `DELETE /networks/{name}`.
pub async fn network_remove(st: &Shared, name: &str) -> Result<Resp, HttpError> {
    let name = name.to_string();
    st.engine(move |e| Ok(e.network_remove(&name).map(|_| ())?))
        .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}
