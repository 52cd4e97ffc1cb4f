//! Container endpoints other than the streams: list (Docker's shape and filters), create,
//! inspect, start, stop, restart, kill, remove.

use std::collections::BTreeMap;

use gcr_engine::container::record::Record;
use gcr_engine::network::{EndpointView, NetView, PortView};
use gcr_engine::Engine;
use hyper::StatusCode;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::server::Shared;

/// A container as `GET /containers/json` lists it (Docker's `ContainerSummary`), written
/// straight from the record: a listing of hundreds serializes without building a JSON
/// tree per container.
#[derive(Serialize)]
pub(crate) struct ListItem<'a> {
    #[serde(rename = "Id")]
    id: &'a str,
    #[serde(rename = "Names")]
    names: [String; 1],
    #[serde(rename = "Image")]
    image: &'a str,
    #[serde(rename = "ImageID")]
    image_id: &'a str,
    #[serde(rename = "Command")]
    command: String,
    #[serde(rename = "Created")]
    created: i64,
    #[serde(rename = "Ports")]
    ports: Vec<PortView>,
    #[serde(rename = "SizeRw", skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<u64>,
    #[serde(rename = "SizeRootFs", skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<u64>,
    /// Docker's labels map: the last value of a repeated key wins, as in `inspect`.
    #[serde(rename = "Labels")]
    labels: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "State")]
    state: &'static str,
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "HostConfig")]
    host_config: HostConfigSummary<'a>,
    #[serde(rename = "NetworkSettings")]
    network_settings: NetworkSummary,
    #[serde(rename = "Mounts")]
    mounts: Value,
}

#[derive(Serialize)]
struct HostConfigSummary<'a> {
    #[serde(rename = "NetworkMode")]
    network_mode: &'a str,
}

#[derive(Serialize)]
struct NetworkSummary {
    #[serde(rename = "Networks")]
    networks: BTreeMap<String, EndpointView>,
}

impl<'a> ListItem<'a> {
    /// `r` as listed (`nets`: the endpoints and networks, read once for the whole listing).
    pub(crate) fn new(e: &Engine, nets: &NetView, r: &'a Record) -> ListItem<'a> {
        let c = &r.config.resolved;
        let net = e.list_network_in(nets, r);
        ListItem {
            id: &r.id,
            names: [format!("/{}", r.name)],
            image: &r.image_ref,
            image_id: &r.image_id,
            command: c.args.join(" "),
            created: r.created_at,
            ports: net.ports,
            size_rw: None,
            size_root_fs: None,
            labels: c
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            state: r.state.as_str(),
            status: gcr_engine::container::view::status_text(r),
            host_config: HostConfigSummary {
                network_mode: &c.network,
            },
            network_settings: NetworkSummary {
                networks: net.networks,
            },
            mounts: e.mounts_view(r),
        }
    }
}

/// `GET /containers/json`.
pub async fn list(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let all = q.flag("all", false);
    let limit: Option<usize> = q
        .number("limit")?
        .filter(|n: &i64| *n > 0)
        .map(|n| n as usize);
    let filters = q.filters()?;
    let size = q.flag("size", false);
    let body = st
        .engine(move |e| {
            let filter = e.container_filter(filters)?;
            let images = if size {
                e.image_sizes()?
            } else {
                Default::default()
            };
            let nets = e.net_view();
            let records: Vec<Record> = e
                .containers(all || filter.wants_all())?
                .into_iter()
                .filter(|r| filter.matches(e, r))
                .take(limit.unwrap_or(usize::MAX))
                .collect();
            let items: Vec<ListItem> = records
                .iter()
                .map(|r| {
                    let mut item = ListItem::new(e, &nets, r);
                    if size {
                        let (rw, root) = e.container_size(r, &images);
                        item.size_rw = Some(rw);
                        item.size_root_fs = Some(root);
                    }
                    item
                })
                .collect();
            Ok(serde_json::to_vec(&items).unwrap_or_default())
        })
        .await?;
    Ok(http::body(StatusCode::OK, "application/json", body))
}

/// `POST /containers/create?name=` with its body (see [`crate::idempotency`]).
pub async fn create(
    st: &Shared,
    name: Option<&str>,
    body: &[u8],
    v: crate::version::ApiVersion,
) -> Result<Resp, HttpError> {
    let body = http::parse_json(body)?;
    let mut opts = crate::create::options(&body, name)?;
    // dockerd ignores AutoRemove from clients before 1.25 (they remove the container).
    if v.before(25) {
        opts.rm = false;
    }
    let (id, warnings) = st
        .engine(move |e| {
            let warnings = e.fit_to_host(&mut opts)?;
            Ok((e.create(opts)?.id, warnings))
        })
        .await?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({ "Id": id, "Warnings": warnings }),
    ))
}

/// `GET /containers/{id}/json` (`size`: with `SizeRw` and `SizeRootFs`, as `docker
/// inspect -s`).
pub async fn inspect(st: &Shared, id: &str, size: bool) -> Result<Resp, HttpError> {
    let id = id.to_string();
    let (mut doc, opts) = st
        .engine(move |e| {
            let r = e.container(&id)?;
            let mut doc = e.inspect_record(&r);
            if size {
                let (rw, root) = e.container_size(&r, &e.image_sizes()?);
                doc["SizeRw"] = json!(rw);
                doc["SizeRootFs"] = json!(root);
            }
            Ok((doc, r.config.opts))
        })
        .await?;
    if let Some(h) = doc["HostConfig"].as_object_mut() {
        h.insert("Binds".into(), json!(opts.volumes));
        // Docker's Tmpfs is a map of destination to options.
        let tmpfs: Map<String, Value> = opts
            .tmpfs
            .iter()
            .map(|t| {
                let (dest, o) = t.split_once(':').unwrap_or((t, ""));
                (dest.to_string(), Value::String(o.to_string()))
            })
            .collect();
        h.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    // Docker's Config carries the attach flags the CLI reads back.
    let tty = doc["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = doc["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if let Some(c) = doc["Config"].as_object_mut() {
        c.insert("AttachStdin".into(), Value::Bool(stdin));
        c.insert("AttachStdout".into(), Value::Bool(true));
        c.insert("AttachStderr".into(), Value::Bool(!tty));
        c.insert("StdinOnce".into(), Value::Bool(stdin));
    }
    Ok(http::json(StatusCode::OK, &doc))
}

/// `POST /containers/{id}/start`: 204, or 304 when it runs already. A container with an
/// attach waiting for it starts with its output held for that attach.
pub async fn start(st: &Shared, id: &str) -> Result<Resp, HttpError> {
    let id = id.to_string();
    let st2 = st.clone();
    let started = st
        .engine_forking(move |e| {
            let r = e.container(&id)?;
            if r.state.is_alive() {
                return Ok(false);
            }
            if st2.attach_pending(&r.id) {
                e.start_held(&r.id)?;
            } else {
                e.start(&r.id)?;
            }
            let _ = st2.started.send(r.id);
            Ok(true)
        })
        .await?;
    Ok(http::empty(if started {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    }))
}

fn timeout(q: &Query) -> Result<Option<u32>, HttpError> {
    let t: Option<i64> = match q.number("t")? {
        Some(t) => Some(t),
        None => q.number("timeout")?,
    };
    // Docker's -1: wait for ever; gcr's longest wait is u32 seconds.
    Ok(t.map(|t| {
        if t < 0 {
            u32::MAX
        } else {
            t.min(u32::MAX as i64) as u32
        }
    }))
}

/// `POST /containers/{id}/stop?t=`: 204, or 304 when it is not running.
pub async fn stop(st: &Shared, id: &str, q: &Query) -> Result<Resp, HttpError> {
    let t = timeout(q)?;
    let id = id.to_string();
    let stopped = st
        .engine(move |e| {
            let r = e.container(&id)?;
            if !r.state.is_alive() {
                return Ok(false);
            }
            e.stop(&r.id, t)?;
            Ok(true)
        })
        .await?;
    Ok(http::empty(if stopped {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    }))
}

/// `POST /containers/{id}/restart?t=`: [`stop`] (a shared call), then [`start`], which
/// forks the supervisor alone under the fork gate's write side (a fork beside a call inside
/// SQLite left the child waiting on SQLite's lock forever).
pub async fn restart(st: &Shared, id: &str, q: &Query) -> Result<Resp, HttpError> {
    stop(st, id, q).await?;
    start(st, id).await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/kill?signal=`: 409 when it is not running.
pub async fn kill(st: &Shared, id: &str, q: &Query) -> Result<Resp, HttpError> {
    let signal = q
        .get("signal")
        .filter(|s| !s.is_empty())
        .unwrap_or("SIGKILL")
        .to_string();
    let id = id.to_string();
    st.engine(move |e| {
        let r = e.container(&id)?;
        if !r.state.is_alive() {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                format!(
                    "Cannot kill container: {id}: container {} is not running",
                    r.name
                ),
            ));
        }
        e.kill(&r.id, &signal).map_err(|err| match err {
            gcr_engine::EngineError::Usage(m) => HttpError::bad_request(m),
            other => other.into(),
        })?;
        Ok(())
    })
    .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `DELETE /containers/{id}?force=&v=`: 409 for a running container without force.
pub async fn remove(st: &Shared, id: &str, q: &Query) -> Result<Resp, HttpError> {
    let force = q.flag("force", false);
    let volumes = q.flag("v", false);
    let id = id.to_string();
    st.engine(move |e| {
        let r = e.container(&id)?;
        if r.state.is_alive() && !force {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    r.id
                ),
            ));
        }
        e.remove_with(&r.id, force, volumes)?;
        Ok(())
    })
    .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}
