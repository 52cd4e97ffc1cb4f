//! Container administration and prunes: `top`, `pause`, `unpause`, `rename`, `update`, and
//! `POST /{containers,images,volumes,networks}/prune` in Docker's report shapes.

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::server::Shared;

/// `GET /containers/{id}/top?ps_args=`: the host's `ps` (default `-ef`) rows of the
/// container's processes, as dockerd answers it.
pub async fn top(st: &Shared, id: &str, q: &Query) -> Result<Resp, HttpError> {
    let id = id.to_string();
    let args = q.get("ps_args").map(str::to_string);
    let t = st.engine(move |e| Ok(e.top(&id, args.as_deref())?)).await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({ "Titles": t.titles, "Processes": t.processes }),
    ))
}

/// `POST /containers/{id}/pause` and `unpause`.
pub async fn pause(st: &Shared, id: &str, on: bool) -> Result<Resp, HttpError> {
    let id = id.to_string();
    st.engine(move |e| {
        if on {
            e.pause(&id)?;
        } else {
            e.unpause(&id)?;
        }
        Ok(())
    })
    .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/rename?name=`.
pub async fn rename(st: &Shared, id: &str, q: &Query) -> Result<Resp, HttpError> {
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| HttpError::bad_request("the new name (name) must be given"))?
        .to_string();
    let id = id.to_string();
    st.engine(move |e| Ok(e.rename(&id, &name).map(|_| ())?))
        .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/update`: new limits and restart policy, live for a running
/// container and kept for its next starts (the engine's `update`, as `gcr update`).
pub async fn update(
    st: &Shared,
    id: &str,
    req: hyper::Request<hyper::body::Incoming>,
    v: crate::version::ApiVersion,
) -> Result<Resp, HttpError> {
    let mut u = crate::limits::update(&http::read_json(req.into_body()).await?)?;
    // dockerd ignores PidsLimit from clients before 1.40.
    if v.before(40) {
        u.pids_limit = None;
    }
    let id = id.to_string();
    st.engine(move |e| Ok(e.update(&id, &u).map(|_| ())?))
        .await?;
    Ok(http::json(StatusCode::OK, &json!({ "Warnings": [] })))
}

/// Prune filters gcr does not apply are refused rather than ignored.
fn prune_filters(q: &Query, known: &[&str]) -> Result<Vec<(String, String)>, HttpError> {
    let f = q.filters()?;
    if let Some((k, _)) = f.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(HttpError::bad_request(format!(
            "invalid filter '{k}' for prune: gcr applies {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    Ok(f)
}

/// The `until`, `label` and `label!` filters among `f` (the prune's own keys left out), for
/// the prune of `what`.
fn object_filter(
    f: &[(String, String)],
    what: &str,
    keys: &[&str],
) -> Result<gcr_engine::prune::PruneFilter, HttpError> {
    let common: Vec<(String, String)> = f
        .iter()
        .filter(|(k, _)| keys.contains(&k.as_str()))
        .cloned()
        .collect();
    Ok(gcr_engine::prune::PruneFilter::parse(&common, what, keys)?)
}

const UNTIL_LABEL: &[&str] = &["until", "label", "label!"];

fn truthy(f: &[(String, String)], key: &str) -> Option<bool> {
    f.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v == "true" || v == "1")
}

/// `POST /containers/prune`: every stopped container (`until`, `label`, `label!` filters).
pub async fn prune_containers(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let f = prune_filters(q, UNTIL_LABEL)?;
    let f = object_filter(&f, "container", UNTIL_LABEL)?;
    let p = st.engine(move |e| Ok(e.container_prune_with(&f)?)).await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({ "ContainersDeleted": p.ids, "SpaceReclaimed": p.bytes }),
    ))
}

/// `POST /images/prune`: dangling images, or with `dangling=false` every unused one.
pub async fn prune_images(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let f = prune_filters(q, &["dangling", "until", "label", "label!"])?;
    let all = truthy(&f, "dangling") == Some(false);
    let f = object_filter(&f, "image", UNTIL_LABEL)?;
    let p = st.engine(move |e| Ok(e.image_prune_with(all, &f)?)).await?;
    let deleted: Vec<Value> = p
        .images
        .iter()
        .map(|l| match l.split_once(": ") {
            Some((k, v)) => json!({ k: v }),
            None => json!({ "Deleted": l }),
        })
        .collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({ "ImagesDeleted": deleted, "SpaceReclaimed": p.bytes_reclaimed }),
    ))
}

/// `POST /volumes/prune`: unused anonymous volumes, or with `all=true` every unused one
/// (Docker 1.42's rule, the safer one, for every API version).
pub async fn prune_volumes(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let f = prune_filters(q, &["all", "label", "label!"])?;
    let all = truthy(&f, "all") == Some(true);
    let f = object_filter(&f, "volume", &["label", "label!"])?;
    let gone = st
        .engine(move |e| Ok(e.volume_prune_with(all, &f)?))
        .await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({ "VolumesDeleted": gone, "SpaceReclaimed": 0 }),
    ))
}

/// `POST /networks/prune`: user networks no container uses (`until`, `label`, `label!`).
pub async fn prune_networks(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let f = prune_filters(q, UNTIL_LABEL)?;
    let f = object_filter(&f, "network", UNTIL_LABEL)?;
    let gone = st.engine(move |e| Ok(e.network_prune(&f)?)).await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({ "NetworksDeleted": gone }),
    ))
}
