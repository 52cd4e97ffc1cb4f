//! `gcr registry serve`: an OCI distribution-spec registry on a gcr store. Blobs and
//! manifests live in the store's content-addressed blob CAS (so a blob is stored once,
//! whatever the number of repositories); repositories, tags and blob links are rows in
//! the store's database (see `db`). The HTTP/1.1 server is the crate's own, built to
//! survive hostile clients: heads, headers and bodies are parsed under hard limits
//! (`wire`, `body`), every socket operation has a timeout, a thread serves each
//! connection and a full server makes room by closing the connection that waits longest
//! on its client (`conn`); a panic in a handler answers 500 and ends that connection only.

mod blobs;
pub mod body;
mod conn;
pub mod db;
pub mod htpasswd;
mod http;
mod manifests;
pub mod wire;

use crate::error::{RegistryError, Result};
use gcr_store::Store;
use htpasswd::{Access, Htpasswd};
use http::{Reply, Req};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use wire::parse_request_head;

/// Timeout of each socket read and write, and of a whole request head, unless
/// `GCR_REGISTRY_SERVE_TIMEOUT` (seconds) says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once per worker thread of [`ServeOptions::threads`].
pub const CONNECTIONS_PER_THREAD: usize = 16;

/// Options of `gcr registry serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Listen address; port 0 picks a free port (printed on stdout).
    pub addr: String,
    /// Store root.
    pub root: PathBuf,
    pub htpasswd: Option<PathBuf>,
    /// Database connections kept open; the server serves up to
    /// `threads *` [`CONNECTIONS_PER_THREAD`] connections at once.
    pub threads: usize,
}

/// State shared by the connection threads.
pub(crate) struct Shared {
    pub uploads: Mutex<HashMap<String, blobs::Upload>>,
    pub users: Option<Htpasswd>,
    pub tmp: PathBuf,
}

/// Per-thread context of a request.
pub(crate) struct Ctx<'a> {
    pub store: &'a Store,
    pub shared: &'a Shared,
    pub user: Option<String>,
}

impl Ctx<'_> {
    /// Checks that the request's user may do `access` on `repo`.
    pub fn check(&self, repo: &str, access: Access) -> std::result::Result<(), Reply> {
        let Some(users) = &self.shared.users else {
            return Ok(());
        };
        match &self.user {
            None => Err(http::unauthorized()),
            Some(u) if users.allowed(u, repo, access) => Ok(()),
            Some(u) => Err(Reply::error(
                403,
                "DENIED",
                &format!(
                    "user '{u}' may not {} repository '{repo}'",
                    if access == Access::Read {
                        "read"
                    } else {
                        "write"
                    }
                ),
            )),
        }
    }

    pub fn may_read(&self, repo: &str) -> bool {
        self.check(repo, Access::Read).is_ok()
    }
}

/// The server: shared state, a pool of store handles and the timeout.
struct Server {
    shared: Shared,
    root: PathBuf,
    stores: Mutex<Vec<Store>>,
    pool: usize,
    timeout: Duration,
    log: bool,
}

impl conn::Handler for Server {
    fn answer(&self, req: &mut Req) -> (Reply, bool) {
        let pooled = self.stores.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let store = match pooled.map_or_else(|| Store::open(&self.root), Ok) {
            Ok(s) => s,
            Err(e) => return (Reply::error(500, "UNKNOWN", &e.to_string()), false),
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle(&store, &self.shared, req)
        }));
        match r {
            Ok(reply) => {
                let mut pool = self.stores.lock().unwrap_or_else(|e| e.into_inner());
                if pool.len() < self.pool {
                    pool.push(store);
                }
                (reply, false)
            }
            // The store handle may be mid-transaction: drop it, and the connection.
            Err(_) => (
                Reply::error(
                    500,
                    "UNKNOWN",
                    "the registry failed on this request (a bug); please report it",
                ),
                true,
            ),
        }
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn log(&self) -> bool {
        self.log
    }
}

fn timeout_from_env() -> Result<Duration> {
    let Some(v) = std::env::var_os("GCR_REGISTRY_SERVE_TIMEOUT") else {
        return Ok(DEFAULT_TIMEOUT);
    };
    v.to_str()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| (1..=3600).contains(s))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            RegistryError::Usage(format!(
                "GCR_REGISTRY_SERVE_TIMEOUT is {v:?}; set it to whole seconds from 1 to 3600"
            ))
        })
}

/// Binds and serves until the process is killed.
pub fn serve(opts: &ServeOptions) -> Result<()> {
    let users = match &opts.htpasswd {
        Some(p) => Some(Htpasswd::load(p)?),
        None => None,
    };
    let timeout = timeout_from_env()?;
    let store = Store::open(&opts.root)?;
    let listener = std::net::TcpListener::bind(&opts.addr).map_err(|e| {
        RegistryError::Usage(format!(
            "cannot listen on {}: {e}; choose another --addr",
            opts.addr
        ))
    })?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| opts.addr.clone());
    println!("listening on {addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let threads = opts.threads.max(1);
    let server = Arc::new(Server {
        shared: Shared {
            uploads: Mutex::new(HashMap::new()),
            users,
            tmp: opts.root.join("tmp"),
        },
        root: opts.root.clone(),
        stores: Mutex::new(vec![store]),
        pool: threads,
        timeout,
        log: std::env::var_os("GCR_REGISTRY_LOG").is_some(),
    });
    let slots = Arc::new(conn::Slots::new(
        threads.saturating_mul(CONNECTIONS_PER_THREAD),
    ));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(_) => {
                // Out of descriptors or a connection reset before accept: wait a moment
                // rather than spin.
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let Some((guard, act)) = slots.admit(&stream) else {
            conn::reject_busy(stream);
            continue;
        };
        let server = Arc::clone(&server);
        let spawned = std::thread::Builder::new()
            .name("gcr-registry".into())
            .spawn(move || {
                let _guard = guard;
                conn::serve(stream, act, &*server);
            });
        if spawned.is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// Routes one request.
fn handle(store: &Store, shared: &Shared, req: &mut Req) -> Reply {
    let user = match (&shared.users, req.basic_auth()) {
        (Some(users), Some((u, p))) => {
            if !users.verify(&u, &p) {
                return http::unauthorized();
            }
            Some(u)
        }
        _ => None,
    };
    let ctx = Ctx {
        store,
        shared,
        user,
    };
    let path = req.path.clone();
    let Some(rest) = path.strip_prefix("/v2") else {
        return Reply::error(404, "NAME_UNKNOWN", "not a registry API path; use /v2/");
    };
    let method = req.method.clone();
    if rest.is_empty() || rest == "/" {
        if shared.users.is_some() && ctx.user.is_none() {
            return http::unauthorized();
        }
        return Reply::json(200, b"{}".to_vec());
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Reply::error(404, "NAME_UNKNOWN", "not a registry API path; use /v2/");
    };
    if rest == "_catalog" {
        if shared.users.is_some() && ctx.user.is_none() {
            return http::unauthorized();
        }
        return manifests::catalog(&ctx, req);
    }
    let route = route(rest);
    let Some((name, kind, arg)) = route else {
        return Reply::error(404, "NAME_UNKNOWN", &format!("no such API path '{path}'"));
    };
    if gcr_core::reference::validate_repository(name).is_err() {
        return Reply::error(
            400,
            "NAME_INVALID",
            &format!("invalid repository name '{name}'"),
        );
    }
    let access = match method.as_str() {
        "GET" | "HEAD" => Access::Read,
        _ => Access::Write,
    };
    if let Err(r) = ctx.check(name, access) {
        return r;
    }
    let r = match (kind, method.as_str()) {
        ("manifests", "GET" | "HEAD") => manifests::get(&ctx, name, arg),
        ("manifests", "PUT") => manifests::put(&ctx, req, name, arg),
        ("manifests", "DELETE") => manifests::delete(&ctx, name, arg),
        ("tags", "GET") => manifests::tags(&ctx, req, name),
        ("referrers", "GET") => manifests::referrers(&ctx, req, name, arg),
        ("blobs", "GET" | "HEAD") => blobs::get(&ctx, req, name, arg),
        ("blobs", "DELETE") => blobs::delete(&ctx, name, arg),
        ("uploads", "POST") if arg.is_empty() => blobs::start(&ctx, req, name),
        ("uploads", "PATCH") => blobs::patch(&ctx, req, name, arg),
        ("uploads", "PUT") => blobs::finish(&ctx, req, name, arg),
        ("uploads", "GET") => blobs::status(&ctx, name, arg),
        ("uploads", "DELETE") => blobs::cancel(&ctx, name, arg),
        _ => Ok(Reply::error(
            405,
            "UNSUPPORTED",
            &format!("{method} is not supported on {path}"),
        )),
    };
    r.unwrap_or_else(|e| Reply::error(500, "UNKNOWN", &e.to_string()))
}

/// Splits `NAME/kind/arg`: kind is manifests, blobs, uploads, tags or referrers.
fn route(rest: &str) -> Option<(&str, &'static str, &str)> {
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some((name, "tags", ""));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads") {
        return Some((name, "uploads", ""));
    }
    for (marker, kind) in [
        ("/blobs/uploads/", "uploads"),
        ("/manifests/", "manifests"),
        ("/blobs/", "blobs"),
        ("/referrers/", "referrers"),
    ] {
        if let Some(i) = rest.rfind(marker) {
            return Some((&rest[..i], kind, &rest[i + marker.len()..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn routes() {
        assert_eq!(super::route("a/b/tags/list"), Some(("a/b", "tags", "")));
        assert_eq!(
            super::route("a/manifests/v1"),
            Some(("a", "manifests", "v1"))
        );
        assert_eq!(super::route("a/blobs/uploads/"), Some(("a", "uploads", "")));
        assert_eq!(super::route("a/blobs/uploads"), Some(("a", "uploads", "")));
        assert_eq!(
            super::route("a/blobs/uploads/xyz"),
            Some(("a", "uploads", "xyz"))
        );
        assert_eq!(
            super::route("a/blobs/sha256:00"),
            Some(("a", "blobs", "sha256:00"))
        );
        assert_eq!(
            super::route("blobs/x/manifests/t"),
            Some(("blobs/x", "manifests", "t"))
        );
        assert_eq!(super::route("nothing"), None);
    }
}
