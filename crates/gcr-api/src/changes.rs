//! A container's filesystem through the API: `GET /containers/{id}/changes` (docker diff),
//! `GET /containers/{id}/export` (docker export: a tar of the whole filesystem, streamed as
//! it is written) and `POST /commit` (docker commit: a new image from a container).

use gcr_engine::container::commit::CommitRequest;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::images_io::{Gated, SaveWriter};
use crate::server::Shared;

/// `GET /containers/{id}/changes`: Docker's kinds, 0 changed, 1 added, 2 deleted.
pub async fn changes(st: &Shared, id: &str) -> Result<Resp, HttpError> {
    let id = id.to_string();
    let list = st.engine(move |e| Ok(e.diff(&id)?)).await?;
    let items: Vec<serde_json::Value> = list
        .iter()
        .map(|c| {
            let kind = match c.kind {
                'A' => 1,
                'D' => 2,
                _ => 0,
            };
            json!({ "Path": c.path, "Kind": kind })
        })
        .collect();
    Ok(http::json(StatusCode::OK, &serde_json::Value::Array(items)))
}

/// `GET /containers/{id}/export`: an unknown container is a 404 before any byte; a client
/// that leaves ends the export at its next chunk.
pub async fn export(st: &Shared, id: &str) -> Result<Resp, HttpError> {
    let key = id.to_string();
    let id = st.engine(move |e| Ok(e.container(&key)?.id)).await?;
    let (tx, rx) = mpsc::channel(4);
    let st2 = st.clone();
    let gate = st.clone();
    tokio::spawn(async move {
        let _ = st2
            .engine_ungated(move |e| {
                let mut w = SaveWriter {
                    tx,
                    buf: Vec::new(),
                    gated: Gated::hold(&gate.gate),
                };
                e.export(&id, &mut w)?;
                std::io::Write::flush(&mut w)
                    .map_err(|err| HttpError::internal(err.to_string()))?;
                Ok(())
            })
            .await;
    });
    Ok(http::stream("application/x-tar", rx))
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`: answers the new
/// image's id. The body (a container config to merge) is not applied: Dockerfile
/// instructions go in `changes`, as `docker commit --change` sends them.
pub async fn commit(st: &Shared, q: &Query, req: Request<Incoming>) -> Result<Resp, HttpError> {
    // Read (and bound) the body so the connection serves the next request.
    let _ = http::read_body(req.into_body()).await?;
    let container = q
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| HttpError::bad_request("the container to commit (container) must be given"))?
        .to_string();
    let reference = q.get("repo").filter(|r| !r.is_empty()).map(|r| {
        match q.get("tag").filter(|t| !t.is_empty()) {
            Some(t) => format!("{r}:{t}"),
            None => r.to_string(),
        }
    });
    let changes: Vec<String> = q
        .all("changes")
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let req = CommitRequest {
        container,
        reference,
        changes,
        message: q
            .get("comment")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        author: q
            .get("author")
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        pause: q.flag("pause", true),
    };
    let id = st.engine(move |e| Ok(e.commit(&req)?)).await?;
    Ok(http::json(StatusCode::CREATED, &json!({ "Id": id })))
}
