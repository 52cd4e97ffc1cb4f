//! The JSONL protocol's requests: each calls the HTTP API's endpoint functions (their
//! parameters named by the request's fields, their answers turned into the result) or the
//! same engine functions they call, so the protocol behaves as the API and the CLI do.
//! Short requests answer one final line; `pull`, `push`, `build`, `run`, `logs` and
//! `events` answer `ack` first and stream `progress` (`event`) lines. `run` and its
//! output are in [`crate::jsonl_run`]. Errors carry a stable code ([`Fail`]); a refusal
//! of the policy gate carries `POLICY_DENY`, its rule and its reason.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;
use gcr_core::jsonl::{self, Id, Request};
use gcr_engine::{Engine, EngineError};
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::errors::HttpError;
use crate::http::{Body, Query, Resp};
use crate::jsonl::{Out, Peer};
use crate::server::Shared;
use crate::{build, containers, images, jsonl_run, push, system};

/// A failed request: its error line's code, rule (policy refusals) and reason.
#[derive(Debug)]
pub(crate) struct Fail {
    pub code: &'static str,
    pub rule: Option<String>,
    pub reason: String,
}

impl Fail {
    pub fn invalid(reason: impl Into<String>) -> Fail {
        Fail {
            code: "invalid_request",
            rule: None,
            reason: reason.into(),
        }
    }

    /// The error line.
    pub fn line(&self, id: Option<&Id>) -> Value {
        jsonl::error(id, self.code, self.rule.as_deref(), &self.reason)
    }
}

impl From<String> for Fail {
    fn from(reason: String) -> Fail {
        Fail::invalid(reason)
    }
}

impl From<HttpError> for Fail {
    fn from(e: HttpError) -> Fail {
        if let Some((rule, reason)) = e.policy {
            return Fail {
                code: "POLICY_DENY",
                rule: Some(rule),
                reason,
            };
        }
        let code = match e.status {
            StatusCode::BAD_REQUEST => "invalid_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            _ => "internal",
        };
        Fail {
            code,
            rule: None,
            reason: e.message,
        }
    }
}

impl From<EngineError> for Fail {
    fn from(e: EngineError) -> Fail {
        HttpError::from(e).into()
    }
}

pub(crate) type Res = Result<Value, Fail>;

/// A query of `pairs` (the endpoint's parameter names).
pub(crate) fn query(pairs: &[(&str, String)]) -> Query {
    Query::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// An endpoint's whole JSON answer (null when it has no body).
pub(crate) async fn body_json(resp: Resp) -> Res {
    let bytes = match resp.into_body() {
        Body::Full(None) => return Ok(Value::Null),
        Body::Full(Some(b)) => b.to_vec(),
        Body::Stream(mut rx) => {
            let mut all = Vec::new();
            while let Some(c) = rx.recv().await {
                all.extend_from_slice(&c);
            }
            all
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| Fail {
        code: "internal",
        rule: None,
        reason: format!("the service's answer was not JSON: {e}"),
    })
}

/// An endpoint's answer as a stream of chunks.
pub(crate) fn body_stream(resp: Resp) -> mpsc::Receiver<Bytes> {
    match resp.into_body() {
        Body::Stream(rx) => rx,
        Body::Full(b) => {
            let (tx, rx) = mpsc::channel(1);
            if let Some(b) = b {
                let _ = tx.try_send(b);
            }
            rx
        }
    }
}

/// Sends each JSON line of `rx` as `key` (`progress`, `event`) of the request.
async fn forward(mut rx: mpsc::Receiver<Bytes>, out: &Out, key: &str) {
    let mut buf = Vec::new();
    while let Some(c) = rx.recv().await {
        buf.extend_from_slice(&c);
        while let Some(p) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=p).collect();
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                out.line(key, v).await;
            }
        }
    }
}

/// Runs `f` with an engine (under the fork gate, as the endpoints do), forwarding the
/// dockerd lines it sends as progress; its result.
async fn streamed<T, F>(st: &Shared, out: &Out, f: F) -> Result<T, Fail>
where
    T: Send + 'static,
    F: FnOnce(&Engine, mpsc::Sender<Bytes>) -> Result<T, EngineError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let job = st.engine(move |e| f(e, tx).map_err(HttpError::from));
    let (r, ()) = tokio::join!(job, forward(rx, out, "progress"));
    r.map_err(Fail::from)
}

/// A required string field.
pub(crate) fn need<'a>(req: &'a Request, k: &str, what: &str) -> Result<&'a str, Fail> {
    req.str(k)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Fail::invalid(format!("field '{k}' is missing: {what}")))
}

/// A JSON object field given to an endpoint as a JSON string (`filters`, `buildargs`).
fn object_param(req: &Request, k: &str) -> Result<Option<String>, Fail> {
    match req.fields.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.to_string())),
        Some(_) => Err(Fail::invalid(format!("field '{k}' must be a JSON object"))),
    }
}

/// An integer field as a parameter.
fn number_param(req: &Request, k: &str) -> Result<Option<String>, Fail> {
    match req.fields.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(Some(n.to_string())),
        Some(_) => Err(Fail::invalid(format!("field '{k}' must be an integer"))),
    }
}

fn bool_param(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

/// Registry credentials of a request: `auth` as Docker's auth config
/// (`{"username","password"}` or `{"auth": base64 "user:pass"}`).
fn credentials(req: &Request) -> Result<Option<gcr_engine::registry::Credentials>, Fail> {
    match req.fields.get("auth") {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(push::credentials(v)),
        Some(_) => Err(Fail::invalid(
            "field 'auth' must be an object: {\"username\":…,\"password\":…}",
        )),
    }
}

/// Runs one request; its final result (the `ok` line's) or why it failed.
pub(crate) async fn handle(st: &Shared, req: &Request, out: &Out, peer: Peer) -> Res {
    match req.kind.as_str() {
        "ping" => Ok(json!("OK")),
        "version" => body_json(system::version()).await,
        "info" => body_json(system::info(st, &crate::http::Query::parse(None)).await?).await,
        "ps" | "containers.list" => ps(st, req).await,
        "inspect" => inspect(st, req).await,
        "pull" => pull(st, req, out).await,
        "push" => push_op(st, req, out).await,
        "build" => build_op(st, req, out, peer).await,
        "run" => jsonl_run::run(st, req, out).await,
        "start" | "stop" | "kill" | "rm" => lifecycle(st, req).await,
        "logs" => jsonl_run::logs(st, req, out).await,
        "events" => events(st, req, out).await,
        other => Err(Fail {
            code: "unknown_type",
            rule: None,
            reason: format!(
                "unknown request type '{other}': use ping, version, info, ps, inspect, pull, push, build, run, start, stop, kill, rm, logs, events or cancel"
            ),
        }),
    }
}

/// `ps` (`containers.list`): `all`, `limit`, `filters` as `GET /containers/json`'s.
async fn ps(st: &Shared, req: &Request) -> Res {
    let mut p = vec![("all", bool_param(req.flag("all", false)?))];
    if let Some(n) = number_param(req, "limit")? {
        p.push(("limit", n));
    }
    if let Some(f) = object_param(req, "filters")? {
        p.push(("filters", f));
    }
    body_json(containers::list(st, &query(&p)).await?).await
}

/// `inspect`: `target`, a container (first) or an image; `kind` picks one.
async fn inspect(st: &Shared, req: &Request) -> Res {
    let target = need(req, "target", "the container or image to inspect")?;
    let kind = req.str("kind")?.unwrap_or("");
    if !["", "container", "image"].contains(&kind) {
        return Err(Fail::invalid(format!(
            "field 'kind' is '{kind}': use container or image"
        )));
    }
    if kind != "image" {
        match containers::inspect(st, target, false).await {
            Ok(r) => return body_json(r).await,
            Err(e) if kind.is_empty() && e.status == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e.into()),
        }
    }
    match images::inspect(st, target).await {
        Ok(r) => body_json(r).await,
        Err(e) if kind.is_empty() && e.status == StatusCode::NOT_FOUND => Err(Fail {
            code: "not_found",
            rule: None,
            reason: format!("no such container or image: {target}"),
        }),
        Err(e) => Err(e.into()),
    }
}

/// `pull`: `image`, `tag`, `platform`, `auth`; progress is dockerd's pull lines.
async fn pull(st: &Shared, req: &Request, out: &Out) -> Res {
    let mut p = vec![(
        "fromImage",
        need(req, "image", "the image to pull")?.to_string(),
    )];
    for k in ["tag", "platform"] {
        if let Some(v) = req.str(k)? {
            p.push((k, v.to_string()));
        }
    }
    let (reference, platform) = images::pull_target(&query(&p))?;
    let connect = st.connect(&crate::server::registry_of(&reference), credentials(req)?);
    out.ack().await;
    let r = streamed(st, out, move |e, tx| {
        images::pull_with(e, &reference, platform, connect, &images::Lines::new(tx))
    })
    .await?;
    Ok(json!({
        "reference": r.reference, "id": format!("sha256:{}", r.id.trim_start_matches("sha256:")),
        "digest": r.digest, "up_to_date": r.up_to_date, "bytes": r.bytes,
    }))
}

/// `push`: `image` (a repository, or `repo:tag`), `tag`, `auth`.
async fn push_op(st: &Shared, req: &Request, out: &Out) -> Res {
    let image = need(req, "image", "the repository or image to push")?;
    let creds = credentials(req)?;
    let plan = push::push_plan(st, image, req.str("tag")?.filter(|t| !t.is_empty())).await?;
    let connect = st.connect(&plan.0, creds);
    out.ack().await;
    let pushed = streamed(st, out, move |e, tx| {
        let lines = images::Lines {
            tx,
            totals: Mutex::new(BTreeMap::new()),
            push: true,
        };
        push::push_with(e, &plan, connect, &lines)
    })
    .await?;
    Ok(Value::Array(
        pushed
            .iter()
            .map(|r| json!({ "reference": r.reference, "digest": r.digest, "size": r.size }))
            .collect(),
    ))
}

/// `build`: `context` (a directory on the service's host: root or the service's user
/// only), `tags`, `dockerfile`, `buildargs`, `labels`, `target`, `nocache`, `pull`,
/// `network`, `platform`, as `POST /build`'s parameters; progress is dockerd's lines.
async fn build_op(st: &Shared, req: &Request, out: &Out, peer: Peer) -> Res {
    let ctx = need(
        req,
        "context",
        "the build context directory on the service's host",
    )?;
    if !peer.trusted {
        return Err(Fail {
            code: "forbidden",
            rule: None,
            reason: "a build context path is read with the service's rights: only root or the service's user may name one; build through the HTTP API (POST /build) with the context as a tar".into(),
        });
    }
    let ctx = PathBuf::from(ctx);
    if !ctx.is_absolute() || !ctx.is_dir() {
        return Err(Fail::invalid(format!(
            "field 'context' is '{}': give an absolute path to a directory",
            ctx.display()
        )));
    }
    let mut p: Vec<(&str, String)> = Vec::new();
    for t in req.strings("tags")? {
        p.push(("t", t));
    }
    for (field, param) in [
        ("dockerfile", "dockerfile"),
        ("target", "target"),
        ("network", "networkmode"),
        ("platform", "platform"),
    ] {
        if let Some(v) = req.str(field)? {
            p.push((param, v.to_string()));
        }
    }
    for (field, param) in [("nocache", "nocache"), ("pull", "pull")] {
        p.push((param, bool_param(req.flag(field, false)?)));
    }
    for k in ["buildargs", "labels"] {
        if let Some(v) = object_param(req, k)? {
            p.push((k, v));
        }
    }
    let mut params = build::Params::parse(&query(&p))?;
    params.insecure_registries = st.insecure_registries().to_vec();
    out.ack().await;
    let id = streamed(st, out, move |e, tx| {
        build::build_in(e, &params, &ctx, &build::Out::new(tx))
    })
    .await?;
    Ok(json!({ "id": id, "tags": req.strings("tags")? }))
}

/// `start`, `stop` (`timeout`), `kill` (`signal`), `rm` (`force`, `volumes`) of `target`:
/// `changed` is false for a start of a running or a stop of a stopped container.
async fn lifecycle(st: &Shared, req: &Request) -> Res {
    let target = need(req, "target", "the container's name or id")?;
    let resp = match req.kind.as_str() {
        "start" => containers::start(st, target).await?,
        "stop" => {
            let t = number_param(req, "timeout")?;
            let p: Vec<(&str, String)> = t.into_iter().map(|t| ("t", t)).collect();
            containers::stop(st, target, &query(&p)).await?
        }
        "kill" => {
            let s = req.str("signal")?.unwrap_or("SIGKILL").to_string();
            containers::kill(st, target, &query(&[("signal", s)])).await?
        }
        _ => {
            let p = [
                ("force", bool_param(req.flag("force", false)?)),
                ("v", bool_param(req.flag("volumes", false)?)),
            ];
            containers::remove(st, target, &query(&p)).await?
        }
    };
    Ok(json!({
        "target": target,
        "changed": resp.status() != StatusCode::NOT_MODIFIED,
    }))
}

/// `events`: `filters`, `since`, `until` as `GET /events`'s; one `{"id","event"}` line per
/// event until `until` (then the final line) or a `cancel`.
async fn events(st: &Shared, req: &Request, out: &Out) -> Res {
    let mut p = Vec::new();
    if let Some(f) = object_param(req, "filters")? {
        p.push(("filters", f));
    }
    for k in ["since", "until"] {
        match req.fields.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => p.push((k, s.clone())),
            Some(Value::Number(n)) => p.push((k, n.to_string())),
            Some(_) => {
                return Err(Fail::invalid(format!(
                    "field '{k}' must be unix seconds or a time"
                )))
            }
        }
    }
    let resp = system::events(st, &query(&p)).await?;
    out.ack().await;
    forward(body_stream(resp), out, "event").await;
    Ok(json!({ "ended": true }))
}
