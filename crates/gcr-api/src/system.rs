//! System endpoints (`/_ping`, `/version`, `/info`, `/events`) and volumes and networks
//! (list, create, inspect, delete).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gcr_engine::container::record::now_ns;

use hyper::StatusCode;
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
pub async fn info(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let registries = registry_config(st.insecure_registries());
    let mut v = st
        .engine(move |e| {
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
                "RegistryConfig": registries,
                "Warnings": [],
            }))
        })
        .await?;
    // Before 1.25: the execution driver field and bare security option names.
    if q.version().before(25) {
        v["ExecutionDriver"] = json!("<not supported>");
        v["SecurityOptions"] = json!(["seccomp"]);
    }
    Ok(http::json(StatusCode::OK, &v))
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

/// Docker's `RegistryConfig`: loopback registries are reached over plain http, and so are
/// the `--insecure-registry` hosts and networks (`docker info` lists them all as "Insecure
/// Registries").
fn registry_config(insecure: &[String]) -> Value {
    let mut index = serde_json::Map::new();
    index.insert(
        "docker.io".into(),
        json!({ "Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true }),
    );
    let nets: Vec<&String> = crate::insecure::networks(insecure).collect();
    for h in insecure.iter().filter(|h| !nets.contains(h)) {
        index.insert(
            h.clone(),
            json!({ "Name": h, "Mirrors": [], "Secure": false, "Official": false }),
        );
    }
    let mut cidrs = vec![json!("127.0.0.0/8"), json!("::1/128")];
    cidrs.extend(nets.iter().map(|n| json!(n)));
    json!({
        "AllowNondistributableArtifactsCIDRs": [],
        "AllowNondistributableArtifactsHostnames": [],
        "InsecureRegistryCIDRs": cidrs,
        "IndexConfigs": index,
        "Mirrors": [],
    })
}

/// `GET /events?since=&until=&filters=`: JSON objects, one per event, streamed (until
/// `until`, or for as long as the client stays).
pub async fn events(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let filter = gcr_engine::docker_events::EventFilter::new(q.filters()?)?;
    let since = secs_param(q, "since")?.unwrap_or_else(now_ns);
    let until = secs_param(q, "until")?;
    let (tx, rx) = mpsc::channel(64);
    let st = st.clone();
    tokio::spawn(async move {
        let mut last = i64::MIN;
        let actors = Arc::new(Mutex::new(gcr_engine::docker_events::Actors::default()));
        loop {
            // Each event with its container's actor (looked up once per container).
            let known = actors.clone();
            let batch = st.engine(move |e| {
                let mut actors = known.lock().unwrap_or_else(|p| p.into_inner());
                Ok(e.events_after(since, last)?
                    .into_iter()
                    .map(|ev| {
                        let a = actors.of(e, &ev);
                        (ev, a)
                    })
                    .collect::<Vec<_>>())
            });
            let batch = match batch.await {
                Ok(b) => b,
                Err(_) => return,
            };
            for (e, actor) in batch {
                last = e.seq;
                if until.is_some_and(|u| e.time_ns >= u) {
                    return;
                }
                if !filter.matches(&e, actor.as_ref()) {
                    continue;
                }
                let msg = gcr_engine::docker_events::message(&e, actor.as_ref());
                let mut b = serde_json::to_vec(&msg).unwrap_or_default();
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
        "Labels": v.labels,
        "Scope": "local",
        "Options": {},
    })
}

/// `GET /volumes?filters=` (`name`, `label`, `dangling`, `driver`).
pub async fn volumes(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let filters = crate::networks::volume_filters(q)?;
    let list = st.engine(|e| Ok(e.volume_list()?)).await?;
    let vs: Vec<Value> = list
        .iter()
        .filter(|v| filters.volume(v))
        .map(volume_json)
        .collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({ "Volumes": vs, "Warnings": [] }),
    ))
}

/// `POST /volumes/create` (`{"Name": …, "Labels": {…}}`; no name: a generated one).
pub async fn volume_create(st: &Shared, body: &[u8]) -> Result<Resp, HttpError> {
    let body = http::parse_json(body)?;
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
    let labels = crate::networks::labels(&body)?;
    let v = st
        .engine(move |e| Ok(e.volume_create_labeled(name.as_deref(), &labels)?))
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

pub(crate) fn network_json(n: &gcr_engine::network::admin::NetworkInfo) -> Value {
    let mut members = Map::new();
    for m in &n.containers {
        // Docker's addresses carry their prefix length ("172.18.0.2/16").
        let with_len = |ip: &str, subnet: &str| match subnet.split_once('/') {
            Some((_, len)) if !ip.is_empty() => format!("{ip}/{len}"),
            _ => ip.to_string(),
        };
        members.insert(
            m.id.clone(),
            json!({
                "Name": m.name,
                "EndpointID": m.endpoint,
                "MacAddress": m.mac,
                "IPv4Address": with_len(&m.ip, &n.subnet),
                "IPv6Address": with_len(&m.ip6, &n.subnet6),
            }),
        );
    }
    let config = if n.subnet.is_empty() {
        json!([])
    } else {
        let mut c = json!({ "Subnet": n.subnet, "Gateway": n.gateway });
        if !n.ip_range.is_empty() {
            c["IPRange"] = json!(n.ip_range);
        }
        let mut list = vec![c];
        if !n.subnet6.is_empty() {
            list.push(json!({ "Subnet": n.subnet6, "Gateway": n.gateway6 }));
        }
        Value::Array(list)
    };
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": gcr_engine::logs::rfc3339_nanos(n.created * 1_000_000_000),
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": n.ipv6,
        "IPAM": { "Driver": "default", "Config": config },
        "Internal": n.internal,
        "Attachable": false,
        "Containers": members,
        // Docker lists the bridge's name for its default network only; a user network's
        // are the options it was created with (docker-compose compares them).
        "Options": if n.name == gcr_engine::network::DEFAULT {
            json!({ "com.docker.network.bridge.name": n.bridge })
        } else {
            json!(n.options)
        },
        "Labels": n.labels,
    })
}

/// `GET /networks?filters=` (`name`, `id`, `label`, `driver`, `type`, `scope`).
pub async fn networks(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let filters = crate::networks::network_filters(q)?;
    let list = st.engine(|e| Ok(e.network_list()?)).await?;
    let ns: Vec<Value> = list
        .iter()
        .filter(|n| filters.network(n))
        .map(|n| {
            let mut v = network_json(n);
            // The list details each network's containers only for clients before 1.28.
            if !q.version().before(28) {
                v["Containers"] = json!({});
            }
            v
        })
        .collect();
    Ok(http::json(StatusCode::OK, &Value::Array(ns)))
}

/// `POST /networks/create` (`{"Name": …, "IPAM": {"Config": [{"Subnet": …}]}}`).
pub async fn network_create(st: &Shared, body: &[u8]) -> Result<Resp, HttpError> {
    let body = http::parse_json(body)?;
    let name = body
        .get("Name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| HttpError::bad_request("network name (Name) must be given"))?
        .to_string();
    let mut create = crate::networks::create_request(&name, &body)?;
    create.driver = body
        .get("Driver")
        .and_then(Value::as_str)
        .map(str::to_string);
    let n = st
        .engine(move |e| Ok(e.network_create_with(&name, &create)?))
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
