//! `POST /v1/apply`: a MiniContainer manifest (seed 002; its JSON, or a `.llc` archive)
//! applied by the engine's `manifest_apply`, the function behind `gcr manifest apply`:
//! verify, policy, pull, grants, run detached. `Idempotency-Key` and `X-Nonce` are that
//! command's `--idempotency-key` and `--nonce` (the same keys: a key used on the command
//! line replays here too); `?name=` and `?key=` its `--name` and `--key`. The answer is 201
//! with the apply's result (`Replayed: true` and the header `Idempotent-Replayed: true`
//! when it is the first apply's, given again); a refusal carries the seed's code
//! (`409_IDEMPOTENCY_CONFLICT`, `422_SCHEMA_INVALID`, ...) and its HTTP status.

use std::io::Write;

use gcr_engine::manifest::McError;
use gcr_engine::manifest_apply::ApplyOptions;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::server::Shared;

/// A header's value as text; one that is not is a 400 naming it.
fn header(req: &Request<Incoming>, name: &str) -> Result<Option<String>, HttpError> {
    req.headers()
        .get(name)
        .map(|v| {
            v.to_str().map(String::from).map_err(|_| {
                HttpError::bad_request(format!(
                    "invalid {name}: use printable ASCII characters without spaces"
                ))
            })
        })
        .transpose()
}

/// The seed's refusal with its status: `{"message", "code", "field", "reason"}`.
fn refusal(e: &McError) -> Resp {
    let code = e.code.as_str();
    let status = code
        .get(..3)
        .and_then(|n| n.parse::<u16>().ok())
        .and_then(|n| StatusCode::from_u16(n).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let field = if e.field.is_empty() {
        String::new()
    } else {
        format!(" ({})", e.field)
    };
    http::json(
        status,
        &json!({
            "message": format!("{code}{field}: {}", e.reason),
            "code": code,
            "field": e.field,
            "reason": e.reason,
        }),
    )
}

/// `POST /v1/apply[?name=NAME][&key=SIGNER]`.
pub async fn apply(st: &Shared, q: &Query, req: Request<Incoming>) -> Result<Resp, HttpError> {
    let opts = ApplyOptions {
        idempotency_key: header(&req, "idempotency-key")?,
        nonce: header(&req, "x-nonce")?,
        name: q.get("name").filter(|n| !n.is_empty()).map(String::from),
        key: q.get("key").filter(|n| !n.is_empty()).map(String::from),
    };
    let body = http::read_body(req.into_body()).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::bad_request(
            "the request body is empty: send the manifest's JSON (or its .llc archive) as the body",
        ));
    }
    let mut file = tempfile::NamedTempFile::new()
        .map_err(|e| HttpError::internal(format!("could not stage the manifest: {e}")))?;
    file.write_all(&body)
        .and_then(|()| file.flush())
        .map_err(|e| HttpError::internal(format!("could not stage the manifest: {e}")))?;
    let r = st
        .engine_forking(move |e| Ok(e.manifest_apply(file.path(), &opts)))
        .await?;
    match r {
        Ok(a) => {
            let body = serde_json::to_value(&a).unwrap_or_default();
            let mut resp = http::json(StatusCode::CREATED, &body);
            if a.replayed {
                resp.headers_mut().insert(
                    "idempotent-replayed",
                    hyper::header::HeaderValue::from_static("true"),
                );
            }
            Ok(resp)
        }
        Err(e) => Ok(refusal(&e)),
    }
}
