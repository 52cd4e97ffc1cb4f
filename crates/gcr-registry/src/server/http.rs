//! The server's HTTP plumbing over tiny_http: a request with decoded path and query, and a
//! reply (status, headers, bytes or a file) with distribution-spec error bodies.

use base64::Engine as _;
use std::io::Read;

/// A request being handled.
pub(crate) struct Req {
    inner: Option<tiny_http::Request>,
    pub method: String,
    /// Percent-decoded path.
    pub path: String,
    pub query: Vec<(String, String)>,
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

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Req {
    pub fn new(r: tiny_http::Request) -> Req {
        let url = r.url().to_string();
        let (p, q) = url.split_once('?').unwrap_or((&url, ""));
        let query = q
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k), decode(v))
            })
            .collect();
        Req {
            method: r.method().as_str().to_ascii_uppercase(),
            path: decode(p),
            query,
            inner: Some(r),
        }
    }

    pub fn query(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.inner
            .as_ref()?
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().to_string())
    }

    /// `Authorization: Basic` user and password.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let h = self.header("Authorization")?;
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

    /// The request body as a reader.
    pub fn body(&mut self) -> Box<dyn Read + '_> {
        match self.inner.as_mut() {
            Some(r) => Box::new(r.as_reader()),
            None => Box::new(std::io::empty()),
        }
    }

    /// Reads at most `limit` bytes of body; None when it is longer.
    pub fn body_limited(&mut self, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
        let mut v = Vec::new();
        self.body().take(limit + 1).read_to_end(&mut v)?;
        Ok((v.len() as u64 <= limit).then_some(v))
    }

    /// Sends the reply (errors writing to a gone client are ignored).
    pub fn respond(&mut self, reply: Reply) {
        let Some(mut r) = self.inner.take() else {
            return;
        };
        // Consume what the handler did not read, so the connection stays usable.
        let _ = std::io::copy(&mut r.as_reader().take(16 << 20), &mut std::io::sink());
        let mut headers: Vec<tiny_http::Header> = reply
            .headers
            .iter()
            .filter_map(|(k, v)| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
            .collect();
        if let Ok(h) = tiny_http::Header::from_bytes(
            &b"Docker-Distribution-API-Version"[..],
            &b"registry/2.0"[..],
        ) {
            headers.push(h);
        }
        let status = tiny_http::StatusCode(reply.status);
        let _ = match reply.body {
            Body::Bytes(b) => {
                let len = b.len();
                r.respond(tiny_http::Response::new(
                    status,
                    headers,
                    std::io::Cursor::new(b),
                    Some(len),
                    None,
                ))
            }
            Body::File(f) => {
                let len = f.metadata().map(|m| m.len() as usize).ok();
                r.respond(tiny_http::Response::new(status, headers, f, len, None))
            }
            Body::Part(f, len) => r.respond(tiny_http::Response::new(
                status,
                headers,
                f,
                Some(len),
                None,
            )),
        };
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
