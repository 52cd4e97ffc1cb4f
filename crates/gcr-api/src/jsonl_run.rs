//! The JSONL `run` and `logs` requests. A run is the API's `docker run`: the container is
//! made from a Docker create body (the request's fields, or its `config`) by the same
//! mapping and engine call as `POST /containers/create`, started as `POST
//! /containers/{id}/start` starts it; a foreground run then streams its output as progress
//! (`GET /containers/{id}/logs?follow=1`), waits for its exit code (`POST
//! /containers/{id}/wait`) and removes it with `rm`. That work runs in a task of its own:
//! a client that cancels or leaves does not stop it half-way, so no container is left
//! half-made (a foreground `rm` container is still removed when it exits).

use bytes::Bytes;
use gcr_core::jsonl::Request;
use gcr_engine::container::attach::frames;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::jsonl::Out;
use crate::jsonl_ops::{body_json, body_stream, need, query, Fail, Res};
use crate::server::Shared;
use crate::{containers, stream};

/// The Docker create body of a `run`: `config` (a create body) with the request's
/// `image`, `cmd`, `entrypoint`, `env`, `labels`, `workdir`, `user`, `tty`, `network`
/// over it.
fn create_body(req: &Request, auto_remove: bool) -> Result<Value, Fail> {
    let mut body = match req.fields.get("config") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(Fail::invalid(
                "field 'config' must be a Docker create body (a JSON object)",
            ))
        }
    };
    if let Some(i) = req.str("image")? {
        body.insert("Image".into(), json!(i));
    }
    if !body.get("Image").is_some_and(|i| i.is_string()) {
        return Err(Fail::invalid("field 'image' is missing: the image to run"));
    }
    for (field, key) in [("cmd", "Cmd"), ("entrypoint", "Entrypoint"), ("env", "Env")] {
        if req.fields.get(field).is_some_and(|v| !v.is_null()) {
            body.insert(key.into(), json!(req.strings(field)?));
        }
    }
    for (field, key) in [("workdir", "WorkingDir"), ("user", "User")] {
        if let Some(v) = req.str(field)? {
            body.insert(key.into(), json!(v));
        }
    }
    match req.fields.get("labels") {
        None | Some(Value::Null) => {}
        Some(v @ Value::Object(_)) => {
            body.insert("Labels".into(), v.clone());
        }
        Some(_) => return Err(Fail::invalid("field 'labels' must be a JSON object")),
    }
    if req.fields.contains_key("tty") {
        body.insert("Tty".into(), json!(req.flag("tty", false)?));
    }
    let host = body
        .entry("HostConfig")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| Fail::invalid("config.HostConfig must be a JSON object"))?;
    if let Some(n) = req.str("network")? {
        host.insert("NetworkMode".into(), json!(n));
    }
    host.insert("AutoRemove".into(), json!(auto_remove));
    Ok(Value::Object(body))
}

/// `run`: `image`, `cmd`, …, `name`, `detach`, `rm`. Detached: the result is the
/// container's `id` and `name`; foreground: its output as progress
/// (`{"stream":"stdout","data":…}`), then `id`, `name` and `exit_code`.
pub(crate) async fn run(st: &Shared, req: &Request, out: &Out) -> Res {
    let detach = req.flag("detach", false)?;
    let rm = req.flag("rm", false)?;
    // A detached --rm container is removed by its supervisor; a foreground one by the
    // run's task once its exit code is read.
    let body = create_body(req, detach && rm)?;
    let opts = crate::create::options(&body, req.str("name")?)?;
    out.ack().await;
    let (ptx, mut prx) = mpsc::channel::<Value>(64);
    let job = tokio::spawn(run_job(st.clone(), opts, detach, rm, ptx));
    while let Some(p) = prx.recv().await {
        out.progress(p).await;
    }
    job.await.map_err(|e| Fail {
        code: "internal",
        rule: None,
        reason: format!("the run failed: {e}"),
    })?
}

/// The run's own work (never cancelled): create, start, and for a foreground run its
/// output, exit code and removal. `progress` may be gone (the client left).
async fn run_job(
    st: Shared,
    mut opts: gcr_engine::container::config::RunOptions,
    detach: bool,
    rm: bool,
    progress: mpsc::Sender<Value>,
) -> Res {
    let (r, warnings) = st
        .engine(move |e| {
            let warnings = e.fit_to_host(&mut opts)?;
            Ok((e.create(opts)?, warnings))
        })
        .await?;
    let (id, name) = (r.id.clone(), r.name.clone());
    let mut created = json!({ "status": "created", "container": id, "name": name });
    if !warnings.is_empty() {
        created["warnings"] = json!(warnings);
    }
    let _ = progress.send(created).await;
    let remove = |id: String| {
        let st = st.clone();
        async move {
            let q = query(&[("force", "1".to_string())]);
            containers::remove(&st, &id, &q).await
        }
    };
    if let Err(e) = containers::start(&st, &id).await {
        if rm {
            let _ = remove(id.clone()).await;
        }
        return Err(e.into());
    }
    if detach {
        return Ok(json!({ "id": id, "name": name }));
    }
    let _ = progress.send(json!({ "status": "started" })).await;
    let logs = stream::logs(
        &st,
        &id,
        &query(&[
            ("follow", "1".into()),
            ("stdout", "1".into()),
            ("stderr", "1".into()),
        ]),
    )
    .await;
    if let Ok(resp) = logs {
        let framed = framed(&resp);
        relay(body_stream(resp), framed, |p| {
            let progress = progress.clone();
            async move {
                let _ = progress.send(p).await;
            }
        })
        .await;
    }
    let waited = stream::wait(&st, &id, &query(&[("condition", "not-running".into())])).await;
    let code = match waited {
        Ok(resp) => body_json(resp).await?["StatusCode"].as_i64().unwrap_or(0),
        Err(e) => return Err(e.into()),
    };
    if rm {
        remove(id.clone()).await?;
    }
    Ok(json!({ "id": id, "name": name, "exit_code": code }))
}

/// Whether a logs answer is Docker's multiplexed frames (no tty) rather than raw bytes.
fn framed(resp: &crate::http::Resp) -> bool {
    resp.headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/vnd.docker.multiplexed-stream")
}

/// Turns a logs stream into `{"stream":"stdout"|"stderr","data":…}` values for `send`.
async fn relay<F, Fut>(mut rx: mpsc::Receiver<Bytes>, framed: bool, send: F)
where
    F: Fn(Value) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut buf = Vec::new();
    while let Some(c) = rx.recv().await {
        if !framed {
            send(json!({ "stream": "stdout", "data": String::from_utf8_lossy(&c) })).await;
            continue;
        }
        buf.extend_from_slice(&c);
        for (kind, data) in frames(&mut buf) {
            let s = if kind == 2 { "stderr" } else { "stdout" };
            send(json!({ "stream": s, "data": String::from_utf8_lossy(&data) })).await;
        }
    }
}

/// `logs`: `target`, `follow`, `tail`, `timestamps`, `since`, `until`, `stdout`,
/// `stderr` (both by default) as `GET /containers/{id}/logs`'s; the lines as progress.
pub(crate) async fn logs(st: &Shared, req: &Request, out: &Out) -> Res {
    let target = need(req, "target", "the container's name or id")?;
    let mut p = vec![
        ("follow", flag(req.flag("follow", false)?)),
        ("timestamps", flag(req.flag("timestamps", false)?)),
        ("stdout", flag(req.flag("stdout", true)?)),
        ("stderr", flag(req.flag("stderr", true)?)),
    ];
    for k in ["tail", "since", "until"] {
        match req.fields.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => p.push((k, s.clone())),
            Some(Value::Number(n)) => p.push((k, n.to_string())),
            Some(_) => return Err(Fail::invalid(format!("field '{k}' must be a number"))),
        }
    }
    let resp = stream::logs(st, target, &query(&p)).await?;
    out.ack().await;
    let framed = framed(&resp);
    relay(body_stream(resp), framed, |v| out.progress(v)).await;
    Ok(json!({ "target": target }))
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}
