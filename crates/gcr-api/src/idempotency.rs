//! `Idempotency-Key` on `POST /containers/create` and `POST /containers/{id}/start` (and on
//! the other POSTs whose answer is whole: stop, restart, kill, pause, unpause, rename,
//! exec create, image tag, volume and network create, network connect and disconnect): the
//! first answer given for a key is kept in the store (see
//! [`gcr_engine::idempotency`], 24 hours) and a repeated request with that key and the same
//! method, path, query and body gets it again, status and body, with the header
//! `Idempotent-Replayed: true`, without acting a second time; the key with another request
//! is a 409. A request that arrives while the first one with its key still runs gets a 409
//! at once (retry later). An error answer (400 or above) is not kept: nothing was done (the
//! engine leaves no partial state), so a retry acts. `POST /v1/apply` uses the engine's own keys
//! of manifest applies instead (see [`crate::apply`]).

use bytes::Bytes;
use gcr_engine::idempotency::{Answer, Claim};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use sha2::{Digest, Sha256};

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::server::Shared;

/// How long a key's answer is kept.
pub const TTL_SECS: i64 = 24 * 3600;

/// The request's `Idempotency-Key`, checked: 1 to 255 printable ASCII characters.
pub fn key_of<B>(req: &Request<B>) -> Result<Option<String>, HttpError> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k.to_string()))
        }
        _ => Err(HttpError::bad_request(
            "invalid Idempotency-Key: use 1 to 255 printable ASCII characters without spaces (a UUID, say)",
        )),
    }
}

/// `path` without its `/v1.NN` prefix (a retry may negotiate another version).
fn unversioned(path: &str) -> &str {
    match crate::version::split(path) {
        crate::version::Prefix::Ok(_, tail) => tail,
        crate::version::Prefix::Refused { .. } => path,
    }
}

/// `sha256:<hex>` of the method, the path with its query, and the body.
fn digest(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    let out = h.finalize();
    let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The answer `a` as a response; `replayed` adds `Idempotent-Replayed: true`.
fn respond(a: &Answer, replayed: bool) -> Resp {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = if a.body.is_empty() {
        http::empty(status)
    } else {
        http::body(status, &a.content_type, a.body.clone())
    };
    if replayed {
        r.headers_mut().insert(
            "idempotent-replayed",
            hyper::header::HeaderValue::from_static("true"),
        );
    }
    r
}

/// The whole answer of `r` (a streamed one has none to keep).
async fn answer_of(r: Resp) -> Option<Answer> {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if let http::Body::Stream(_) = r.body() {
        return None;
    }
    let body = r.into_body().collect().await.ok()?.to_bytes().to_vec();
    Some(Answer {
        status,
        content_type,
        body,
    })
}

/// Runs `act` (given the request's body) at most once per key: see the module's text.
pub(crate) async fn once<F, Fut>(
    st: &Shared,
    req: Request<Incoming>,
    act: F,
) -> Result<Resp, HttpError>
where
    F: FnOnce(Shared, Bytes) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Resp, HttpError>> + Send + 'static,
{
    let key = key_of(&req)?;
    let method = req.method().as_str().to_string();
    let path = unversioned(
        req.uri()
            .path_and_query()
            .map_or_else(|| req.uri().path(), |p| p.as_str()),
    )
    .to_string();
    let body = http::read_body(req.into_body()).await?;
    let Some(key) = key else {
        return act(st.clone(), body).await;
    };
    let d = digest(&method, &path, &body);
    // A task of its own: a client that leaves mid-request does not leave the key claimed.
    let st = st.clone();
    tokio::spawn(async move { guarded(st, key, d, body, act).await })
        .await
        .map_err(|e| HttpError::internal(format!("the request's task failed: {e}")))?
}

/// [`once`] with a key: claim, act, keep the answer (or release the claim).
async fn guarded<F, Fut>(
    st: Shared,
    key: String,
    d: String,
    body: Bytes,
    act: F,
) -> Result<Resp, HttpError>
where
    F: FnOnce(Shared, Bytes) -> Fut,
    Fut: std::future::Future<Output = Result<Resp, HttpError>>,
{
    let k = key.clone();
    let claim = st
        .engine(move |e| Ok(e.idempotency_claim(&k, &d, TTL_SECS)?))
        .await?;
    match claim {
        Claim::Replay(a) => return Ok(respond(&a, true)),
        Claim::Conflict(_) => {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                format!(
                    "Idempotency-Key '{key}' was used for another request; send a new key for a different request"
                ),
            ))
        }
        Claim::InFlight => {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                format!(
                    "a request with Idempotency-Key '{key}' is still in progress; retry when it has answered"
                ),
            ))
        }
        Claim::New => {}
    }
    let r = match act(st.clone(), body).await {
        Ok(r) => r,
        Err(e) => http::error(&e),
    };
    if r.status().is_client_error() || r.status().is_server_error() {
        // Not kept: nothing was done, so a retry with the key acts (a create refused for a
        // missing image succeeds with the same key once the image is pulled).
        st.engine(move |e| Ok(e.idempotency_finish(&key, None)?))
            .await?;
        return Ok(r);
    }
    let answer = answer_of(r).await;
    let kept = answer.clone();
    st.engine(move |e| Ok(e.idempotency_finish(&key, kept.as_ref())?))
        .await?;
    match answer {
        Some(a) => Ok(respond(&a, false)),
        None => Err(HttpError::internal(
            "the answer could not be kept for its Idempotency-Key; retry the request with the key",
        )),
    }
}

/// `POST /containers/create` with its key.
pub async fn create(st: &Shared, q: &Query, req: Request<Incoming>) -> Result<Resp, HttpError> {
    let name = q.get("name").map(String::from);
    let v = q.version();
    once(st, req, move |st, body| async move {
        crate::containers::create(&st, name.as_deref(), &body, v).await
    })
    .await
}

/// `POST /containers/{id}/start` with its key.
pub async fn start(st: &Shared, id: &str, req: Request<Incoming>) -> Result<Resp, HttpError> {
    let id = id.to_string();
    once(st, req, move |st, _| async move {
        crate::containers::start(&st, &id).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_cover_method_path_and_body() {
        let a = digest("POST", "/containers/create?name=a", b"{}");
        assert!(a.starts_with("sha256:") && a.len() == 71);
        assert_eq!(a, digest("POST", "/containers/create?name=a", b"{}"));
        assert_ne!(a, digest("POST", "/containers/create?name=b", b"{}"));
        assert_ne!(a, digest("POST", "/containers/create?name=a", b"{ }"));
        assert_ne!(a, digest("PUT", "/containers/create?name=a", b"{}"));
        assert_eq!(
            unversioned("/v1.41/containers/x/start"),
            "/containers/x/start"
        );
        assert_eq!(
            unversioned("/containers/create?a=1"),
            "/containers/create?a=1"
        );
        assert_eq!(unversioned("/v1/apply"), "/v1/apply");
    }
}
