//! The server's requests and replies: a request with its decoded path and query, headers
//! and a body reader (which sends `100 Continue` first when the client waits for it), and
//! a reply (status, headers, bytes or a file) with distribution-spec error bodies.

use super::body::{wire_error, BodyReader};
use super::conn::{ConnReader, Tracked};
use super::wire::{RequestHead, Target};
use base64::Engine as _;
use std::io::{Read, Write};

/// A request being handled.
pub(crate) struct Req {
    pub method: String,
    /// Percent-decoded path.
    pub path: String,
    pub query: Vec<(String, String)>,
    head: RequestHead,
    body: BodyReader<ConnReader>,
    wr: Tracked,
    /// The client waits for `100 Continue` before it sends the body.
    waiting: bool,
}

/// A reply body.
pub(crate) enum Body {
    Bytes(Vec<u8>),
    File(std::fs::File),
    /// `len` bytes of a file from its current position.
    Part(std::io::Take<std::fs::File>, usize),
}

/// A reply.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

/// The reply to a request body that could not be read.
pub(crate) fn body_error(e: &std::io::Error) -> Reply {
    if let Some(w) = wire_error(e) {
        return Reply::error(w.status, w.code, &w.message);
    }
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Reply::error(
            408,
            "UNKNOWN",
            "the client stopped sending the request body; the request was dropped",
        ),
        _ => Reply::error(
            400,
            "BLOB_UPLOAD_INVALID",
            "the request body ended before its announced length; nothing was stored",
        ),
    }
}

impl Req {
    pub(crate) fn new(
        head: RequestHead,
        target: Target,
        body: BodyReader<ConnReader>,
        wr: Tracked,
    ) -> Req {
        Req {
            method: head.method.to_ascii_uppercase(),
            path: target.path,
            query: target.query,
            waiting: head.expects_continue() && !body.is_done(),
            head,
            body,
            wr,
        }
    }

    /// The body reader, whether the client still waits for `100 Continue`, and the writer.
    pub(crate) fn into_parts(self) -> (BodyReader<ConnReader>, bool, Tracked) {
        (self.body, self.waiting, self.wr)
    }

    pub fn query(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.head.header(name).map(str::to_string)
    }

    /// `Authorization: Basic` user and password.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let h = self.head.header("Authorization")?;
        let b64 = h
            .strip_prefix("Basic ")
            .or_else(|| h.strip_prefix("basic "))?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (u, p) = raw.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }

    /// The request body as a reader (errors: see [`body_error`]).
    pub fn body(&mut self) -> &mut dyn Read {
        if self.waiting {
            self.waiting = false;
            if self
                .wr
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .and_then(|()| self.wr.flush())
                .is_err()
            {
                return &mut self.body;
            }
        }
        &mut self.body
    }

    /// Reads at most `limit` bytes of body; None when it is longer (a body announced as
    /// longer is not read at all).
    pub fn body_limited(&mut self, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
        if self.body.announced_left().is_some_and(|n| n > limit) {
            return Ok(None);
        }
        let mut v = Vec::new();
        self.body().take(limit + 1).read_to_end(&mut v)?;
        Ok((v.len() as u64 <= limit).then_some(v))
    }
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        }
    }

    pub fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply::new(status)
            .header("Content-Type", "application/json")
            .bytes(body)
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    pub fn bytes(mut self, b: Vec<u8>) -> Reply {
        self.body = Body::Bytes(b);
        self
    }

    pub fn file(mut self, f: std::fs::File) -> Reply {
        self.body = Body::File(f);
        self
    }

    /// A distribution-spec error: `{"errors":[{"code":...,"message":...}]}`.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        let body =
            serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]});
        Reply::json(status, serde_json::to_vec(&body).unwrap_or_default())
    }
}

/// 401 with a Basic challenge.
pub(crate) fn unauthorized() -> Reply {
    Reply::error(
        401,
        "UNAUTHORIZED",
        "authentication required; log in with a user of the registry's htpasswd file",
    )
    .header("WWW-Authenticate", "Basic realm=\"gcr-registry\"")
}

/// Paginates a sorted list by `n` and `last`; returns the page and whether more follow.
pub(crate) fn paginate(all: Vec<String>, req: &Req) -> (Vec<String>, Option<String>) {
    let last = req.query("last").map(str::to_string);
    let mut v: Vec<String> = match &last {
        Some(l) => all.into_iter().filter(|x| x > l).collect(),
        None => all,
    };
    let n = req.query("n").and_then(|n| n.parse::<usize>().ok());
    match n {
        Some(n) if v.len() > n => {
            v.truncate(n);
            let next = v.last().cloned();
            (v, next)
        }
        _ => (v, None),
    }
}
