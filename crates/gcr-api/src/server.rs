//! The service: binds the address, accepts connections (unix peers checked, see
//! [`crate::listen`]), serves HTTP/1.1 with upgrades (attach), hands each request to [`crate::routes`]
//! and lends engines to the blocking calls (a small pool: one store connection
//! per blocking thread in use).

use std::collections::HashMap;
use std::convert::Infallible;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gcr_engine::Engine;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::errors::{ApiError, HttpError};
use crate::listen::{self, Host};
use crate::version::Prefix;

/// What `gcr system service` was asked for.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    pub root: PathBuf,
    pub run_dir: PathBuf,
    pub host: Host,
    /// `--group`: members of this group may use the unix socket too.
    pub group: Option<String>,
    /// `--tls`: a TCP address served with TLS, client certificates required.
    pub tls: Option<crate::tls::TlsFiles>,
    /// `--jsonl`: the JSONL protocol's unix socket (see [`crate::jsonl`]), if any.
    pub jsonl: Option<PathBuf>,
    /// `--webhook`: where the live events are POSTed (see [`crate::WebhookOptions`]).
    pub webhook: Option<crate::WebhookOptions>,
    /// `--insecure-registry`: registry hosts reached over plain http (normalized as
    /// `gcr login` names them).
    pub insecure_registries: Vec<String>,
}

/// What the endpoints share.
pub(crate) struct State {
    root: PathBuf,
    /// `--insecure-registry` hosts.
    insecure: Vec<String>,
    run_dir: PathBuf,
    pool: Mutex<Vec<Engine>>,
    /// Containers with an attach waiting for their start (id -> how many): their start
    /// holds the output for it.
    waiting_attach: Mutex<HashMap<String, usize>>,
    /// Containers with an attach relaying (id -> how many): a wait that finds such a
    /// container gone asks [`State::exit_code`], which the relay fills.
    relaying: Mutex<HashMap<String, usize>>,
    /// Exit codes seen by attaches and waits (auto-removed containers keep none).
    exits: Mutex<HashMap<String, (i32, Instant)>>,
    /// Ids of containers started through the API (waits and attaches wake up at once).
    pub started: tokio::sync::broadcast::Sender<String>,
    /// The fork gate. The engine forks a container's guard and supervisor, which go on
    /// running engine code (SQLite included) before they exec; in this multi-threaded
    /// process a lock another thread held at the fork would stay locked in the child for
    /// ever. So every engine call holds the read side and a call that forks holds the
    /// write side: nothing else is inside the engine when it forks.
    pub gate: std::sync::RwLock<()>,
    /// Exec instances, and the exit of each started one not yet relayed.
    pub execs: crate::exec::Execs,
    pub exec_done: Mutex<HashMap<String, tokio::sync::oneshot::Receiver<i32>>>,
    /// A request was served since the last heap trim (see [`trim_heap`]).
    pub(crate) served: std::sync::atomic::AtomicBool,
}

pub(crate) type Shared = Arc<State>;

/// How to reach `registry` with `credentials`, given the `--insecure-registry` values:
/// plain http for a host among them or an address inside one of their networks.
pub(crate) fn connect_to(
    insecure: &[String],
    registry: &str,
    credentials: Option<gcr_engine::registry::Credentials>,
) -> gcr_engine::registry::ConnectOptions {
    gcr_engine::registry::ConnectOptions {
        insecure: crate::insecure::is_insecure(insecure, registry),
        credentials,
    }
}

/// The registry host of image reference `image` (`docker.io` when it names none).
pub(crate) fn registry_of(image: &str) -> String {
    gcr_engine::Reference::parse(image)
        .map(|r| r.registry().to_string())
        .unwrap_or_default()
}

impl State {
    /// How to reach `registry` (a host, as a reference names it) with `credentials`:
    /// plain http when the service was started with `--insecure-registry` for it.
    pub(crate) fn connect(
        &self,
        registry: &str,
        credentials: Option<gcr_engine::registry::Credentials>,
    ) -> gcr_engine::registry::ConnectOptions {
        connect_to(&self.insecure, registry, credentials)
    }

    /// The `--insecure-registry` hosts.
    pub(crate) fn insecure_registries(&self) -> &[String] {
        &self.insecure
    }

    /// Runs `f` with an engine on a blocking thread, under the fork gate's read side (see
    /// [`State::gate`]).
    pub async fn engine<T, F>(self: &Arc<Self>, f: F) -> Result<T, HttpError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, HttpError> + Send + 'static,
    {
        self.engine_as(Gate::Read, f).await
    }

    /// [`State::engine`] for a call that forks (start, restart, exec): alone, under the
    /// gate's write side.
    pub async fn engine_forking<T, F>(self: &Arc<Self>, f: F) -> Result<T, HttpError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, HttpError> + Send + 'static,
    {
        self.engine_as(Gate::Write, f).await
    }

    /// [`State::engine`] without the gate, for a long call (a log follower) that takes
    /// [`State::gate`]'s read side itself around each database use.
    pub async fn engine_ungated<T, F>(self: &Arc<Self>, f: F) -> Result<T, HttpError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, HttpError> + Send + 'static,
    {
        self.engine_as(Gate::None, f).await
    }

    async fn engine_as<T, F>(self: &Arc<Self>, gate: Gate, f: F) -> Result<T, HttpError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, HttpError> + Send + 'static,
    {
        let st = self.clone();
        tokio::task::spawn_blocking(move || {
            let _read;
            let _write;
            match gate {
                Gate::Read => _read = st.gate.read(),
                Gate::Write => _write = st.gate.write(),
                Gate::None => {}
            }
            let pooled = st.pool.lock().ok().and_then(|mut p| p.pop());
            let e = match pooled {
                Some(e) => e,
                None => {
                    let _open = matches!(gate, Gate::None).then(|| st.gate.read());
                    Engine::open(&st.root, &st.run_dir)?
                }
            };
            let r = f(&e);
            if let Ok(mut p) = st.pool.lock() {
                p.push(e);
            }
            r
        })
        .await
        .map_err(|e| HttpError::internal(format!("the engine call failed: {e}")))?
    }

    /// Whether an attach waits for container `id`'s start.
    pub fn attach_pending(&self, id: &str) -> bool {
        count(&self.waiting_attach, id) > 0
    }

    /// An attach of `id` began (it waits for the start until [`State::attach_connected`]).
    pub fn attach_begin(&self, id: &str) {
        bump(&self.waiting_attach, id, 1);
        bump(&self.relaying, id, 1);
    }

    /// The attach of `id` said hello to the supervisor.
    pub fn attach_connected(&self, id: &str) {
        bump(&self.waiting_attach, id, -1);
    }

    /// The attach of `id` ended; `connected`: it had said hello.
    pub fn attach_end(&self, id: &str, connected: bool) {
        if !connected {
            bump(&self.waiting_attach, id, -1);
        }
        bump(&self.relaying, id, -1);
    }

    /// Records container `id`'s exit code (kept a minute).
    pub fn remember_exit(&self, id: &str, code: i32) {
        if let Ok(mut m) = self.exits.lock() {
            m.retain(|_, (_, t)| t.elapsed() < Duration::from_secs(60));
            m.insert(id.to_string(), (code, Instant::now()));
        }
    }

    /// The exit code an attach or a wait saw for `id`; while an attach of it still relays,
    /// waits for it (at most 5 s).
    pub async fn exit_code(&self, id: &str) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let seen = self
                .exits
                .lock()
                .ok()
                .and_then(|m| m.get(id).map(|(c, _)| *c));
            if seen.is_some() || count(&self.relaying, id) == 0 || Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn count(m: &Mutex<HashMap<String, usize>>, id: &str) -> usize {
    m.lock()
        .map(|m| m.get(id).copied().unwrap_or(0))
        .unwrap_or(0)
}

fn bump(m: &Mutex<HashMap<String, usize>>, id: &str, by: i64) {
    if let Ok(mut m) = m.lock() {
        let n = m.get(id).copied().unwrap_or(0) as i64 + by;
        if n <= 0 {
            m.remove(id);
        } else {
            m.insert(id.to_string(), n as usize);
        }
    }
}

/// How an engine call takes [`State::gate`].
#[derive(Clone, Copy)]
enum Gate {
    Read,
    Write,
    None,
}

/// Serves the API until SIGINT or SIGTERM (the unix socket is removed then); `ready` is
/// called once, when the API's address and the JSONL socket are bound and listening.
pub fn serve(opts: ServiceOptions, ready: impl FnOnce()) -> Result<(), ApiError> {
    let group = opts.group.as_deref().map(listen::group_id).transpose()?;
    let tls = match (&opts.host, &opts.tls) {
        (Host::Unix(p), Some(_)) => return Err(ApiError::TlsOnUnix(p.display().to_string())),
        (Host::Tcp(a), None) if !a.ip().is_loopback() => {
            return Err(ApiError::NotLoopback(opts.host.to_string()))
        }
        (_, Some(files)) => Some(Arc::new(crate::tls::Reloadable::new(files)?)),
        (_, None) => None,
    };
    let webhook = opts.webhook.as_ref().map(|w| w.open()).transpose()?;
    // Listings ask whether the same containers run on every request: pidfds answer that
    // with a poll each (see `procfs::watch_pids`).
    gcr_engine::container::procfs::watch_pids();
    // `/metrics` reads every running container's cgroup files: they stay open.
    gcr_engine::metrics::hold_cgroup_files();
    // The store must open before anything is served: a bad root is an error at start.
    let first = Engine::open(&opts.root, &opts.run_dir)?;
    crate::record::init()?;
    let state = Arc::new(State {
        root: opts.root.clone(),
        insecure: opts.insecure_registries.clone(),
        run_dir: opts.run_dir.clone(),
        pool: Mutex::new(vec![first]),
        waiting_attach: Mutex::new(HashMap::new()),
        relaying: Mutex::new(HashMap::new()),
        exits: Mutex::new(HashMap::new()),
        started: tokio::sync::broadcast::channel(64).0,
        gate: std::sync::RwLock::new(()),
        execs: Mutex::new(HashMap::new()),
        exec_done: Mutex::new(HashMap::new()),
        served: std::sync::atomic::AtomicBool::new(false),
    });
    lean_malloc();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        // Idle blocking threads (and their stacks) go after 2 s rather than tokio's 10.
        .thread_keep_alive(Duration::from_secs(2))
        .enable_all()
        .build()
        .map_err(|e| ApiError::io("starting the service's runtime", e))?;
    rt.block_on(async move {
        tokio::spawn(reap_children(state.clone()));
        if let Some(w) = webhook {
            tokio::spawn(crate::webhook::deliver(state.clone(), w));
        }
        // SIGINT/SIGTERM are caught and every socket is bound before the service says it
        // serves (`ready`): a bad path is an error alone, never one after a "serving"
        // line. The JSONL socket first.
        let stop = stopped()?;
        let jsonl = match &opts.jsonl {
            Some(path) => Some(listen::unix_listener(path, group, "the JSONL socket")?),
            None => None,
        };
        let api = match bind_api(&opts.host, group).await {
            Ok(api) => api,
            Err(e) => {
                if let Some(path) = &opts.jsonl {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        };
        ready();
        let jsonl = jsonl.map(|l| tokio::spawn(crate::jsonl::accept(l, state.clone(), group)));
        let r = match api {
            Api::Unix(l, path) => {
                let r = accept_unix(l, state, group, stop).await;
                let _ = std::fs::remove_file(path);
                r
            }
            Api::Tcp(l) => accept_tcp(l, state, tls, stop).await,
        };
        if let (Some(task), Some(path)) = (jsonl, &opts.jsonl) {
            task.abort();
            let _ = std::fs::remove_file(path);
        }
        r
    })
}

/// The Docker Engine API's listener, bound.
enum Api {
    /// The socket and its path (removed when the service stops).
    Unix(tokio::net::UnixListener, PathBuf),
    Tcp(tokio::net::TcpListener),
}

/// Binds the Docker Engine API's address.
async fn bind_api(host: &Host, group: Option<u32>) -> Result<Api, ApiError> {
    match host {
        Host::Unix(path) => Ok(Api::Unix(
            listen::unix_listener(path, group, "the socket")?,
            path.clone(),
        )),
        Host::Tcp(addr) => tokio::net::TcpListener::bind(addr)
            .await
            .map(Api::Tcp)
            .map_err(|e| ApiError::io(format!("binding {addr}"), e)),
    }
}

/// The service's idle memory: glibc makes up to 8 malloc arenas per core, one per thread
/// that allocates concurrently, each keeping what was freed in it; two are enough for
/// two worker threads and the blocking calls.
fn lean_malloc() {
    // SAFETY: mallopt only changes the allocator's settings; called before any other thread
    // of the service exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Gives the heap's free pages back to the system (the service idles between requests;
/// a /metrics or ps answer leaves a few freed megabytes behind).
fn trim_heap() {
    // SAFETY: malloc_trim only releases free memory of the allocator's arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Reaps the exited children nobody waits for (the guards `start` forks, see
/// `gcr_engine::children`) on SIGCHLD, and every second in case a signal was coalesced.
async fn reap_children(state: Shared) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut chld = signal(SignalKind::child()).ok();
    loop {
        match chld.as_mut() {
            Some(s) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), s.recv()).await;
            }
            None => tokio::time::sleep(Duration::from_secs(1)).await,
        }
        let st = state.clone();
        let served = state
            .served
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || {
            // Under the fork gate's read side: a child forked while another thread held
            // the list's lock would find it locked for ever.
            let _gate = st.gate.read();
            gcr_engine::children::reap();
            if served {
                trim_heap();
            }
        })
        .await;
    }
}

/// Catches SIGTERM and SIGINT now; the future ends at the first of them.
fn stopped() -> Result<impl std::future::Future<Output = ()>, ApiError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| ApiError::io("SIGTERM", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| ApiError::io("SIGINT", e))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}

async fn accept_unix(
    l: tokio::net::UnixListener,
    state: Shared,
    group: Option<u32>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ApiError> {
    tokio::pin!(stop);
    loop {
        let conn = tokio::select! {
            () = &mut stop => return Ok(()),
            c = l.accept() => c,
        };
        let Ok((s, _)) = conn else { continue };
        let allowed = s
            .peer_cred()
            .map(|c| listen::peer_allowed(&c, group))
            .unwrap_or(false);
        if !allowed {
            // Dropped unanswered: an unknown peer learns nothing.
            continue;
        }
        let peer = listen::Peer::of(s.as_fd());
        tokio::spawn(connection(TokioIo::new(s), state.clone(), peer));
    }
}

async fn accept_tcp(
    l: tokio::net::TcpListener,
    state: Shared,
    tls: Option<Arc<crate::tls::Reloadable>>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ApiError> {
    if let Some(t) = &tls {
        tokio::spawn(reload_on_hangup(t.clone()));
    }
    tokio::pin!(stop);
    loop {
        let conn = tokio::select! {
            () = &mut stop => return Ok(()),
            c = l.accept() => c,
        };
        let Ok((s, _)) = conn else { continue };
        let _ = s.set_nodelay(true);
        let peer = listen::Peer::of(s.as_fd());
        match &tls {
            None => {
                tokio::spawn(connection(TokioIo::new(s), state.clone(), peer));
            }
            Some(t) => {
                let (acc, st) = (t.get(), state.clone());
                tokio::spawn(async move {
                    // A client without a certificate the CA signed fails the handshake and
                    // reaches no endpoint; a silent one is dropped after 10 s.
                    let hs = tokio::time::timeout(Duration::from_secs(10), acc.accept(s)).await;
                    if let Ok(Ok(t)) = hs {
                        connection(TokioIo::new(t), st, peer).await;
                    }
                });
            }
        }
    }
}

/// On SIGHUP, the TLS files are read again (`tls::Reloadable`); a failure is said on
/// stderr and the files in use stay.
async fn reload_on_hangup(tls: Arc<crate::tls::Reloadable>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => eprintln!("gcr: reloaded the TLS certificates (SIGHUP)"),
            Err(e) => eprintln!("gcr: kept the TLS certificates in use: {e}"),
        }
    }
}

async fn connection<I>(io: I, state: Shared, peer: Option<listen::Peer>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        if let Some(p) = &peer {
            req.extensions_mut().insert(p.clone());
        }
        let st = state.clone();
        async move { Ok::<_, Infallible>(crate::routes::route(st, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, svc)
        .with_upgrades()
        .await;
}

/// Splits off `/v1.NN`: the path without it, or a 400 for a version gcr does not speak.
pub(crate) fn unversioned(path: &str) -> Result<&str, HttpError> {
    match crate::version::split(path) {
        Prefix::Ok(_, tail) => Ok(tail),
        Prefix::Refused { error, .. } => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            unversioned("/v1.41/containers/json").unwrap(),
            "/containers/json"
        );
        assert_eq!(unversioned("/v1.24/_ping").unwrap(), "/_ping");
        assert_eq!(unversioned("/_ping").unwrap(), "/_ping");
        assert_eq!(unversioned("/volumes").unwrap(), "/volumes");
        assert!(unversioned("/v1.12/info").is_err());
    }
}
