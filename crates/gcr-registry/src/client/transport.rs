//! HTTP to one registry: scheme choice (https; plain http only for loopback or with
//! `--insecure`), timeouts, retries with exponential backoff on 5xx/429/timeouts/resets,
//! and authentication (anonymous, Basic, Bearer tokens from the challenge's realm).

use crate::auth::{Challenge, Credentials};
use crate::error::{RegistryError, Result};
use std::sync::Mutex;
use std::time::Duration;
use ureq::http::{self, Response};
use ureq::Body;

/// How many times a failed request is retried (so up to RETRIES + 1 attempts).
const RETRIES: u32 = 3;
/// Re-authentications allowed per request before a 401 is final.
const REAUTHS: u32 = 2;

/// Options for connecting to a registry.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Allow plain http (and unverified TLS is never allowed) for non-loopback hosts.
    pub insecure: bool,
    /// Credentials to use instead of the saved ones.
    pub credentials: Option<Credentials>,
}

/// A request body that can be sent again on retry.
pub enum ReqBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A whole file; `on_sent` is told the bytes written, and returns false to stop the
    /// upload there (its caller left): the request fails with [`RegistryError::Cancelled`]
    /// and is not retried.
    File(&'a std::path::Path, &'a (dyn Fn(u64) -> bool + Sync)),
}

/// True for loopback hosts, where plain http is allowed without `--insecure`.
pub fn is_loopback(host: &str) -> bool {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    h == "localhost" || h == "::1" || h.starts_with("127.")
}

/// The API host for a registry name (Docker Hub's API lives elsewhere).
pub fn api_host(registry: &str) -> &str {
    if registry == "docker.io" || registry == "index.docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    }
}

fn timeout() -> Duration {
    let s = std::env::var("GCR_REGISTRY_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(30);
    Duration::from_secs(s)
}

/// A connection to one registry with a fixed auth scope.
pub struct Transport {
    agent: ureq::Agent,
    /// `http://host` or `https://host`.
    pub base: String,
    /// The registry's name as the user wrote it (for messages and credentials).
    pub host: String,
    creds: Option<Credentials>,
    scopes: Vec<String>,
    authorization: Mutex<Option<String>>,
}

fn agent(per_read: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_per_read(Some(per_read))
        .timeout_per_write(Some(per_read))
        .max_redirects(5)
        .user_agent(format!("gcr/{}", env!("CARGO_PKG_VERSION")))
        .accept_encoding("identity")
        .max_idle_connections_per_host(8)
        // Each connection allocates (and the kernel zeroes) its buffers: ureq's 128 KiB
        // pair costs a connection ~60 page faults, a pull opens several, and a larger
        // buffer reads a blob no faster. Response headers still get their 64 KiB.
        .input_buffer_size(64 * 1024)
        .output_buffer_size(32 * 1024)
        .build()
        .new_agent()
}

fn transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Timeout(_)
            | ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
    )
}

impl Transport {
    /// Connects to `registry` (host[:port]) for the given token scopes
    /// (`repository:NAME:pull[,push]`). Credentials: `opts`, else the saved ones.
    pub fn new(registry: &str, scopes: Vec<String>, opts: &ConnectOptions) -> Result<Transport> {
        let host = api_host(registry);
        let creds = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => crate::auth::lookup(registry)?,
        };
        let agent = agent(timeout());
        let scheme = if is_loopback(host) {
            "http"
        } else if opts.insecure {
            // Prefer https, fall back to http when the server does not speak TLS.
            match agent.get(format!("https://{host}/v2/")).call() {
                Ok(_) => "https",
                Err(_) => "http",
            }
        } else {
            "https"
        };
        Ok(Transport {
            agent,
            base: format!("{scheme}://{host}"),
            host: registry.to_string(),
            creds,
            scopes,
            authorization: Mutex::new(None),
        })
    }

    /// An absolute URL for a path (`/v2/...`) or a `Location` header value.
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else if path_or_url.starts_with('/') {
            format!("{}{path_or_url}", self.base)
        } else {
            format!("{}/{path_or_url}", self.base)
        }
    }

    /// The error for a registry that stopped answering.
    pub fn timeout_error(&self) -> RegistryError {
        RegistryError::Timeout {
            host: self.host.clone(),
            secs: timeout().as_secs(),
            attempts: RETRIES + 1,
        }
    }

    fn connect_err(&self, e: &ureq::Error) -> RegistryError {
        match e {
            ureq::Error::Timeout(_) => self.timeout_error(),
            other => RegistryError::Connect {
                host: self.host.clone(),
                reason: other.to_string(),
            },
        }
    }

    /// Sends a request with auth and retries. Returns any response that is not a 401 or a
    /// retryable failure (the caller checks the status).
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &ReqBody<'_>,
    ) -> Result<Response<Body>> {
        let url = self.url(url);
        let mut attempt = 0;
        let mut reauths = 0;
        loop {
            let mut b = http::Request::builder().method(method).uri(&url);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            if let Some(a) = self.authorization.lock().ok().and_then(|g| g.clone()) {
                b = b.header("Authorization", a);
            }
            // Everything but blob transfers is small: bound its whole exchange, so a server
            // that drips bytes cannot hold a pull forever.
            let bounded = !(method == "GET" && url.contains("/blobs/"));
            let res = match body {
                ReqBody::Empty if matches!(method, "POST" | "PUT" | "PATCH") => {
                    b.body(&[][..]).map(|r| self.run(r, bounded))
                }
                ReqBody::Empty => b.body(()).map(|r| self.run(r, bounded)),
                ReqBody::Bytes(d) => b.body(*d).map(|r| self.run(r, bounded)),
                ReqBody::File(p, on_sent) => {
                    let f = std::fs::File::open(p)
                        .map_err(|e| RegistryError::io("cannot open", p, e))?;
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    let mut rd = Counting {
                        inner: f,
                        cb: *on_sent,
                        stopped: false,
                    };
                    let res = b
                        .header("Content-Length", len.to_string())
                        .body(ureq::SendBody::from_reader(&mut rd))
                        .map(|r| self.run(r, false));
                    if rd.stopped {
                        return Err(RegistryError::Cancelled(format!(
                            "the upload to {} was cancelled: its client left",
                            self.host
                        )));
                    }
                    res
                }
            };
            let res =
                res.map_err(|e| RegistryError::Usage(format!("invalid request to {url}: {e}")))?;
            let retry = match res {
                Ok(resp) if resp.status() == 401 => {
                    if reauths >= REAUTHS {
                        return Err(RegistryError::Unauthorized {
                            host: self.host.clone(),
                            reason: if self.creds.is_some() {
                                "the registry refused the credentials".into()
                            } else {
                                "the registry requires credentials".into()
                            },
                        });
                    }
                    reauths += 1;
                    self.authenticate(&resp)?;
                    continue;
                }
                Ok(resp) if resp.status().is_server_error() || resp.status() == 429 => {
                    if attempt >= RETRIES {
                        return Ok(resp);
                    }
                    format!("status {}", resp.status())
                }
                Ok(resp) => return Ok(resp),
                Err(e) if transient(&e) && attempt < RETRIES => e.to_string(),
                Err(e) => return Err(self.connect_err(&e)),
            };
            let _ = retry;
            std::thread::sleep(Duration::from_millis(200 << attempt));
            attempt += 1;
        }
    }

    fn run<B: ureq::AsSendBody>(
        &self,
        req: http::Request<B>,
        bounded: bool,
    ) -> Result<Response<Body>, ureq::Error> {
        if bounded {
            let req = self
                .agent
                .configure_request(req)
                .timeout_global(Some(timeout() * 3))
                .build();
            self.agent.run(req)
        } else {
            self.agent.run(req)
        }
    }

    /// Handles a 401: obtains a Bearer token from the challenge's realm, or uses Basic.
    fn authenticate(&self, resp: &Response<Body>) -> Result<()> {
        let unauthorized = |reason: &str| RegistryError::Unauthorized {
            host: self.host.clone(),
            reason: reason.to_string(),
        };
        let ch = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(Challenge::parse)
            .find(|c| c.scheme == "bearer" || c.scheme == "basic")
            .ok_or_else(|| unauthorized("it answered 401 without a Bearer or Basic challenge"))?;
        let value = if ch.scheme == "basic" {
            let c = self
                .creds
                .as_ref()
                .ok_or_else(|| unauthorized("the registry requires credentials"))?;
            c.basic()
        } else {
            format!("Bearer {}", self.token(&ch)?)
        };
        if let Ok(mut g) = self.authorization.lock() {
            *g = Some(value);
        }
        Ok(())
    }

    fn token(&self, ch: &Challenge) -> Result<String> {
        let unauthorized = |reason: String| RegistryError::Unauthorized {
            host: self.host.clone(),
            reason,
        };
        let realm = ch
            .param("realm")
            .filter(|r| r.starts_with("https://") || r.starts_with("http://"))
            .ok_or_else(|| unauthorized("its Bearer challenge has no usable realm URL".into()))?;
        if realm.starts_with("http://") {
            let rh = realm
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or("");
            if !is_loopback(rh) && !self.base.starts_with("http://") {
                return Err(unauthorized(format!(
                    "its token realm '{realm}' is plain http"
                )));
            }
        }
        let mut q: Vec<(String, String)> = Vec::new();
        if let Some(s) = ch.param("service") {
            q.push(("service".into(), s.into()));
        }
        let mut scopes = self.scopes.clone();
        if let Some(s) = ch.param("scope") {
            for one in s.split(' ') {
                if !one.is_empty() && !scopes.iter().any(|x| x == one) {
                    scopes.push(one.into());
                }
            }
        }
        for s in scopes {
            q.push(("scope".into(), s));
        }
        let mut attempt = 0;
        let mut resp = loop {
            let mut req = self.agent.get(realm);
            for (k, v) in &q {
                req = req.query(k, v);
            }
            if let Some(c) = &self.creds {
                req = req.header("Authorization", c.basic());
            }
            match req.call() {
                Ok(r)
                    if (r.status().is_server_error() || r.status() == 429) && attempt < RETRIES => {
                }
                Ok(r) => break r,
                Err(e) if transient(&e) && attempt < RETRIES => {}
                Err(e) => return Err(self.connect_err(&e)),
            }
            std::thread::sleep(Duration::from_millis(200 << attempt));
            attempt += 1;
        };
        if resp.status() == 401 || resp.status() == 403 {
            return Err(unauthorized(format!(
                "the token server {realm} refused {}",
                if self.creds.is_some() {
                    "the credentials"
                } else {
                    "anonymous access"
                }
            )));
        }
        if !resp.status().is_success() {
            return Err(unauthorized(format!(
                "the token server {realm} answered {}",
                resp.status()
            )));
        }
        let v: serde_json::Value = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| unauthorized(format!("the token server sent an invalid answer ({e})")))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| unauthorized("the token server's answer has no token".into()))
    }
}

struct Counting<'a> {
    inner: std::fs::File,
    cb: &'a (dyn Fn(u64) -> bool + Sync),
    /// The callback asked to stop.
    stopped: bool,
}

impl std::io::Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !(self.cb)(n as u64) {
            self.stopped = true;
            return Err(std::io::Error::other("the upload was cancelled"));
        }
        Ok(n)
    }
}

/// A header value as a string.
pub fn header<'a>(resp: &'a Response<Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A short description of an error response (the registry's `errors[0].message` if any).
pub fn describe(resp: &mut Response<Body>) -> String {
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    let msg = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?.clone();
            let code = e
                .get("code")
                .and_then(|c| c.as_str())
                .unwrap_or("")
                .to_string();
            let m = e
                .get("message")
                .and_then(|c| c.as_str())
                .unwrap_or("")
                .to_string();
            Some(format!("{code} {m}").trim().to_string())
        })
        .filter(|s| !s.is_empty());
    match msg {
        Some(m) => format!("status {} ({m})", status.as_u16()),
        None => format!("status {}", status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_stops_when_told_and_is_not_retried() {
        let m = super::super::testreg::mock(Default::default());
        let t = Transport::new(&m.host, Vec::new(), &ConnectOptions::default()).unwrap();
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), vec![7u8; 4 << 20]).unwrap();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let sent = std::sync::atomic::AtomicU64::new(0);
        let on_sent = |n: u64| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            sent.fetch_add(n, std::sync::atomic::Ordering::Relaxed) < (1 << 20)
        };
        let e = t
            .send(
                "PUT",
                "/v2/x/blobs/uploads/1",
                &[],
                &ReqBody::File(f.path(), &on_sent),
            )
            .unwrap_err();
        assert!(matches!(e, RegistryError::Cancelled(_)), "{e}");
        assert!(e.to_string().contains("cancelled: its client left"), "{e}");
        // Stopped after about a MiB, not 4, and sent once (no retry).
        assert!(sent.load(std::sync::atomic::Ordering::Relaxed) < (3 << 20));
        let puts = m.log.lock().unwrap().len();
        assert!(puts <= 1, "retried: {:?}", m.log.lock().unwrap());
        assert!(calls.load(std::sync::atomic::Ordering::Relaxed) > 0);
    }

    #[test]
    fn loopback() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:41234",
            "[::1]:5000",
            "127.0.0.1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["example.com", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
