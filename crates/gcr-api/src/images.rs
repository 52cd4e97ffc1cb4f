//! Image endpoints: list (Docker's summary shape), inspect, pull (`POST /images/create`,
//! progress as Docker's JSON lines, which [`crate::push`] uses too), tag, delete. Save,
//! load and history are in [`crate::images_io`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use gcr_engine::registry::{ConnectOptions, Progress, PullOptions};
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::server::Shared;

/// `GET /images/json`: one entry per image (its tags together), newest first.
pub async fn list(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let mut filters = q.filters()?;
    // Clients before 1.41 may name a reference pattern with `filter=` (docker images NAME
    // of API 1.24).
    if let Some(f) = q
        .get("filter")
        .filter(|f| !f.is_empty() && q.version().before(41))
    {
        filters.push(("reference".into(), f.to_string()));
    }
    for (k, _) in &filters {
        if !["reference", "dangling"].contains(&k.as_str()) {
            return Err(HttpError::bad_request(format!(
                "invalid filter '{k}': gcr filters images by reference and dangling"
            )));
        }
    }
    let items = st
        .engine(move |e| {
            let mut by_id: BTreeMap<String, (Vec<String>, Option<i64>, u64)> = BTreeMap::new();
            for row in e.images()? {
                let entry =
                    by_id
                        .entry(row.id.clone())
                        .or_insert((Vec::new(), row.created, row.size));
                if row.repository != "<none>" {
                    entry.0.push(format!("{}:{}", row.repository, row.tag));
                }
            }
            let mut out: Vec<(i64, Value)> = Vec::new();
            for (id, (tags, created, size)) in by_id {
                let keep = filters.iter().all(|(k, v)| match k.as_str() {
                    "dangling" => (v == "true" || v == "1") == tags.is_empty(),
                    _ => tags.iter().any(|t| {
                        let (repo, tag) = gcr_engine::images::split_familiar(t);
                        gcr_engine::images::reference_matches(v, &repo, &tag)
                    }),
                });
                if !keep {
                    continue;
                }
                let full = format!("sha256:{id}");
                let digests: Vec<String> = e
                    .inspect_image(&full)
                    .ok()
                    .and_then(|d| serde_json::from_value(d["RepoDigests"].clone()).ok())
                    .unwrap_or_default();
                let created = created.unwrap_or(0);
                out.push((
                    created,
                    json!({
                        "Id": full,
                        "ParentId": "",
                        "RepoTags": tags,
                        "RepoDigests": digests,
                        "Created": created,
                        "Size": size,
                        "SharedSize": -1,
                        "VirtualSize": size,
                        "Labels": {},
                        "Containers": -1,
                    }),
                ));
            }
            out.sort_by_key(|b| std::cmp::Reverse(b.0));
            Ok(out.into_iter().map(|(_, v)| v).collect::<Vec<_>>())
        })
        .await?;
    Ok(http::json(StatusCode::OK, &Value::Array(items)))
}

/// The engine reports unknown images by store errors; Docker's clients want 404 and
/// "No such image".
pub(crate) fn no_such_image(name: &str, e: gcr_engine::EngineError) -> HttpError {
    let h = HttpError::from(e);
    if h.status == StatusCode::NOT_FOUND {
        HttpError::not_found(format!("No such image: {name}"))
    } else {
        h
    }
}

/// `GET /images/{name}/json`.
pub async fn inspect(st: &Shared, name: &str) -> Result<Resp, HttpError> {
    let name = name.to_string();
    let doc = st
        .engine(move |e| {
            e.inspect_image(&name)
                .map_err(|err| no_such_image(&name, err))
        })
        .await?;
    Ok(http::json(StatusCode::OK, &doc))
}

/// `GET /images/search?term=&limit=&filters=`: [`gcr_engine::Engine::search`], with the
/// `X-Registry-Auth` credentials when given (else the saved ones).
pub async fn search(
    st: &Shared,
    q: &Query,
    credentials: Option<gcr_engine::registry::Credentials>,
) -> Result<Resp, HttpError> {
    let term = q
        .get("term")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            HttpError::bad_request("a search needs a term: give term=TEXT or term=REGISTRY/TEXT")
        })?
        .to_string();
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        None => gcr_engine::registry::SEARCH_LIMIT.0,
        Some(l) => match l.parse::<usize>() {
            Ok(0) => gcr_engine::registry::SEARCH_LIMIT.0,
            Ok(n) => n,
            Err(_) => {
                return Err(HttpError::bad_request(format!(
                    "invalid limit '{l}': give a number from 1 to 100"
                )))
            }
        },
    };
    let filter = gcr_engine::registry::SearchFilter::parse(&q.filters()?)?;
    let connect = st.connect(&gcr_engine::registry::search_registry(&term), credentials);
    let hits = st
        .engine(move |e| Ok(e.search(&term, limit, &filter, &connect)?))
        .await?;
    Ok(http::json(StatusCode::OK, &json!(hits)))
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub async fn tag(st: &Shared, name: &str, q: &Query) -> Result<Resp, HttpError> {
    let repo = q
        .get("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| HttpError::bad_request("repository name (repo) must be given"))?;
    let target = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    let name = name.to_string();
    st.engine(move |e| {
        e.store()?
            .tag(&name, &target)
            .map_err(|err| no_such_image(&name, err.into()))?;
        Ok(())
    })
    .await?;
    Ok(http::empty(StatusCode::CREATED))
}

/// `DELETE /images/{name}?force=`: Docker's list of `Untagged`/`Deleted` entries.
pub async fn remove(st: &Shared, name: &str, q: &Query) -> Result<Resp, HttpError> {
    let force = q.flag("force", false);
    let name = name.to_string();
    let lines = st
        .engine(move |e| {
            e.remove_image(&name, force)
                .map_err(|err| no_such_image(&name, err))
        })
        .await?;
    let items: Vec<Value> = lines
        .iter()
        .map(|l| match l.split_once(": ") {
            Some((k, v)) => json!({ k: v }),
            None => json!({ "Deleted": l }),
        })
        .collect();
    Ok(http::json(StatusCode::OK, &Value::Array(items)))
}

/// Pull or push progress as Docker's JSON lines.
pub(crate) struct Lines {
    pub tx: mpsc::Sender<Bytes>,
    pub totals: Mutex<BTreeMap<String, (u64, u64)>>,
    /// A push: `Preparing`/`Pushing` rather than `Pulling fs layer`/`Downloading`.
    pub push: bool,
}

impl Lines {
    /// Pull progress lines sent into a streamed body.
    pub(crate) fn new(tx: mpsc::Sender<Bytes>) -> Lines {
        Lines {
            tx,
            totals: Mutex::new(BTreeMap::new()),
            push: false,
        }
    }

    pub(crate) fn send(&self, v: Value) {
        let mut b = serde_json::to_vec(&v).unwrap_or_default();
        b.push(b'\n');
        let _ = self.tx.blocking_send(Bytes::from(b));
    }

    /// dockerd's closing lines of a pull: its digest and whether it was new.
    pub(crate) fn pulled(&self, digest: &str, reference: &str, up_to_date: bool) {
        self.send(json!({ "status": format!("Digest: {digest}") }));
        let what = if up_to_date {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        self.send(json!({ "status": format!("Status: {what} {reference}") }));
    }
}

fn short(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

impl Progress for Lines {
    fn begin(&self, id: &str, total: u64) {
        if let Ok(mut t) = self.totals.lock() {
            t.insert(id.to_string(), (0, total));
        }
        let status = if self.push {
            "Preparing"
        } else {
            "Pulling fs layer"
        };
        self.send(json!({ "status": status, "progressDetail": {}, "id": short(id) }));
    }

    fn advance(&self, id: &str, bytes: u64) {
        let (cur, total) = match self.totals.lock() {
            Ok(mut t) => {
                let e = t.entry(id.to_string()).or_insert((0, 0));
                e.0 += bytes;
                *e
            }
            Err(_) => return,
        };
        self.send(json!({
            "status": if self.push { "Pushing" } else { "Downloading" },
            "progressDetail": { "current": cur, "total": total },
            "id": short(id),
        }));
    }

    fn end(&self, id: &str, status: &str) {
        self.send(json!({ "status": status, "progressDetail": {}, "id": short(id) }));
    }

    fn message(&self, msg: &str) {
        self.send(json!({ "status": msg }));
    }

    fn cancelled(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The reference and platform of a pull from its parameters (`fromImage`, `tag`,
/// `platform`), as `POST /images/create` and the JSONL `pull` name them.
pub(crate) fn pull_target(
    q: &Query,
) -> Result<(String, Option<gcr_engine::registry::Platform>), HttpError> {
    let image = q
        .get("fromImage")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| HttpError::bad_request("fromImage must be given"))?;
    let reference = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
        Some(t) if !image.contains('@') => format!("{image}:{t}"),
        _ => image.to_string(),
    };
    let platform = match q.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => Some(gcr_engine::registry::Platform::parse(p).ok_or_else(|| {
            HttpError::bad_request(format!(
                "invalid platform '{p}': use os/arch[/variant], e.g. linux/amd64"
            ))
        })?),
        None => None,
    };
    Ok((reference, platform))
}

/// Pulls `reference` with the engine, sending dockerd's progress lines (the first and the
/// closing ones included) into `lines`.
pub(crate) fn pull_with(
    e: &gcr_engine::Engine,
    reference: &str,
    platform: Option<gcr_engine::registry::Platform>,
    connect: ConnectOptions,
    lines: &Lines,
) -> Result<gcr_engine::registry::PullReport, gcr_engine::EngineError> {
    let (name, tag) = gcr_engine::images::split_familiar(reference);
    lines.send(json!({ "status": format!("Pulling from {name}"), "id": tag }));
    let opts = PullOptions {
        platform,
        connect,
        no_referrers: false,
    };
    let r = e.pull(reference, &opts, lines)?;
    lines.pulled(&r.digest, &r.reference, r.up_to_date);
    Ok(r)
}

/// `POST /images/create?fromImage=&tag=`: pulls, streaming progress; a failure after the
/// stream began is an `error` line, as Docker's. `credentials` (from `X-Registry-Auth`)
/// override the ones `gcr login` saved.
pub async fn pull(
    st: &Shared,
    q: &Query,
    credentials: Option<gcr_engine::registry::Credentials>,
) -> Result<Resp, HttpError> {
    let (reference, platform) = pull_target(q)?;
    let connect = st.connect(&crate::server::registry_of(&reference), credentials);
    let (tx, rx) = mpsc::channel(64);
    let st2 = st.clone();
    tokio::spawn(async move {
        let lines = Lines::new(tx);
        let _ = st2
            .engine(move |e| {
                if let Err(err) = pull_with(e, &reference, platform, connect, &lines) {
                    let m = err.to_string();
                    lines.send(json!({ "errorDetail": { "message": m }, "error": m }));
                }
                Ok(())
            })
            .await;
    });
    Ok(http::stream("application/json", rx))
}
