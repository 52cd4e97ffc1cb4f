//! Request and response helpers: the response body (whole, or streamed from a channel),
//! JSON answers and Docker's error body, query strings (percent-decoded, Docker's
//! booleans), and request bodies read with a size limit.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::{Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::errors::HttpError;

/// The largest request body read (a create body is a few KiB).
const MAX_BODY: usize = 4 << 20;

/// A response body: all at once, or chunks sent on a channel until its sender drops.
pub enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }
}

pub type Resp = Response<Body>;

fn with_headers(status: StatusCode, ctype: &str, body: Body) -> Resp {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Ok(v) = ctype.parse() {
        h.insert(hyper::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = crate::API_VERSION.parse() {
        h.insert("api-version", v);
    }
    if let Ok(v) = "Docker/gcr (linux)".parse() {
        h.insert(hyper::header::SERVER, v);
    }
    if let Ok(v) = "linux".parse() {
        h.insert("ostype", v);
    }
    r
}

/// A JSON answer.
pub fn json(status: StatusCode, v: &Value) -> Resp {
    let body = serde_json::to_vec(v).unwrap_or_default();
    with_headers(status, "application/json", Body::Full(Some(body.into())))
}

/// A plain-text answer.
pub fn text(status: StatusCode, s: &str) -> Resp {
    with_headers(
        status,
        "text/plain; charset=utf-8",
        Body::Full(Some(Bytes::copy_from_slice(s.as_bytes()))),
    )
}

/// A whole body of type `ctype`.
pub fn body(status: StatusCode, ctype: &str, b: Vec<u8>) -> Resp {
    with_headers(status, ctype, Body::Full(Some(Bytes::from(b))))
}

/// An empty answer (204, 304, ...).
pub fn empty(status: StatusCode) -> Resp {
    with_headers(status, "text/plain", Body::Full(None))
}

/// A streamed answer: the receiver's chunks until its sender is dropped.
pub fn stream(ctype: &str, rx: mpsc::Receiver<Bytes>) -> Resp {
    with_headers(StatusCode::OK, ctype, Body::Stream(rx))
}

/// Docker's error body.
pub fn error(e: &HttpError) -> Resp {
    json(e.status, &serde_json::json!({ "message": e.message }))
}

/// A query string, percent-decoded (`+` is a space): the last value of each key, and every
/// pair in order (for repeated keys such as `names`).
#[derive(Clone)]
pub struct Query(
    HashMap<String, String>,
    Vec<(String, String)>,
    crate::version::ApiVersion,
);

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut m = HashMap::new();
        let mut all = Vec::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (unescape(k), unescape(v));
            all.push((k.clone(), v.clone()));
            m.insert(k, v);
        }
        Query(m, all, crate::version::ApiVersion::NEWEST)
    }

    /// The API version the request was made with (the newest without a prefix).
    pub fn version(&self) -> crate::version::ApiVersion {
        self.2
    }

    /// This query as asked with API version `v`.
    pub fn at_version(mut self, v: crate::version::ApiVersion) -> Query {
        self.2 = v;
        self
    }

    /// A query from decoded pairs (the JSONL protocol's fields, named as the endpoint's
    /// parameters).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Query {
        let m = pairs.iter().cloned().collect();
        Query(m, pairs, crate::version::ApiVersion::NEWEST)
    }

    /// Every value of a repeated key, in order.
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.1
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// Docker's booleans: `1`, `true`, `True` are true; absent is `default`.
    pub fn flag(&self, k: &str, default: bool) -> bool {
        match self.get(k) {
            None => default,
            Some(v) => !matches!(v, "" | "0" | "false" | "False" | "FALSE" | "no"),
        }
    }

    /// A number; a value that is not one is a 400.
    pub fn number<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>, HttpError> {
        self.get(k)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse().map_err(|_| {
                    HttpError::bad_request(format!("invalid {k} '{v}': expected a number"))
                })
            })
            .transpose()
    }

    /// Every value of `k`, repeated or comma-separated, without empty ones.
    pub fn list(&self, k: &str) -> Vec<String> {
        self.all(k)
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect()
    }

    /// Docker's `filters` parameter: `{"key": ["v", ...]}` or the older `{"key": {"v": true}}`.
    pub fn filters(&self) -> Result<Vec<(String, String)>, HttpError> {
        let Some(raw) = self.get("filters").filter(|s| !s.is_empty()) else {
            return Ok(Vec::new());
        };
        let v: Value = serde_json::from_str(raw)
            .map_err(|e| HttpError::bad_request(format!("invalid filters '{raw}': {e}")))?;
        let Value::Object(m) = v else {
            return Err(HttpError::bad_request(format!(
                "invalid filters '{raw}': expected a JSON object"
            )));
        };
        let mut out = Vec::new();
        for (k, vals) in m {
            match vals {
                Value::Array(a) => {
                    for x in a {
                        if let Value::String(s) = x {
                            out.push((k.clone(), s));
                        }
                    }
                }
                Value::Object(o) => {
                    for (s, on) in o {
                        if on == Value::Bool(true) {
                            out.push((k.clone(), s));
                        }
                    }
                }
                _ => {
                    return Err(HttpError::bad_request(format!(
                        "invalid filter '{k}': expected a list of strings"
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// Reads a request body (at most 4 MiB).
pub async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, HttpError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body could not be read ({e}); bodies are limited to 4 MiB"),
        )),
    }
}

/// Reads a JSON request body; an empty body is `null`.
pub async fn read_json(body: hyper::body::Incoming) -> Result<Value, HttpError> {
    parse_json(&read_body(body).await?)
}

/// A JSON request body already read; an empty body is `null`.
pub fn parse_json(b: &[u8]) -> Result<Value, HttpError> {
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(b)
        .map_err(|e| HttpError::bad_request(format!("invalid JSON in the request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let q = Query::parse(Some(
            "all=1&filters=%7B%22status%22%3A%5B%22exited%22%5D%7D&x=%zz&t=a+b",
        ));
        assert!(q.flag("all", false));
        assert_eq!(
            q.filters().unwrap(),
            vec![("status".into(), "exited".into())]
        );
        assert_eq!(q.get("x"), Some("%zz"));
        assert_eq!(q.get("t"), Some("a b"));
        assert!(Query::parse(Some("filters=notjson")).filters().is_err());
        assert!(Query::parse(Some("t=abc")).number::<u32>("t").is_err());
        assert_eq!(Query::parse(Some("x=%4")).get("x"), Some("%4"));
        let q = Query::parse(Some("names=a&names=b%2Fc&x=1"));
        assert_eq!(q.all("names"), vec!["a", "b/c"]);
        assert_eq!(q.get("names"), Some("b/c"));
        let q = Query::parse(Some("t=a%3A1&q=1&t=b"));
        assert_eq!(q.all("t"), vec!["a:1", "b"]);
        assert_eq!(q.get("t"), Some("b"));
    }
}
