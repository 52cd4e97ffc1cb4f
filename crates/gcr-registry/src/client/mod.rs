//! The distribution-spec client: `pull` and `push` against any OCI/Docker v2 registry,
//! plus `login` (checks the credentials, then saves them).

mod fetch;
pub mod pull;
pub mod push;
mod referrers;
pub mod search;
#[cfg(test)]
mod testreg;
pub mod transport;

use crate::error::{RegistryError, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Receives progress of a pull or push; the CLI renders it (bars on a terminal, lines
/// otherwise). `id` is a short blob digest. Called from several threads.
pub trait Progress: Sync {
    /// A blob transfer starts (`total` bytes).
    fn begin(&self, id: &str, total: u64);
    /// `bytes` more were transferred.
    fn advance(&self, id: &str, bytes: u64);
    /// A blob is done: `Pull complete`, `Already exists`, `Pushed`, `Mounted from ...`.
    fn end(&self, id: &str, status: &str);
    /// A line of information.
    fn message(&self, msg: &str);
    /// True when whoever asked for the transfer is gone (an API client that left): a push
    /// starts no further blob and puts no manifest; a pull stops its downloads and records
    /// no image.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Ignores progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self, _: &str, _: u64) {}
    fn end(&self, _: &str, _: &str) {}
    fn message(&self, _: &str) {}
}

/// The 12-hex-character short form of a digest, for progress lines.
pub fn short(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

/// How many blobs move at once.
pub const JOBS: usize = 4;

/// Runs `f` over `items` on up to `jobs` threads; stops starting new items after the first
/// error and returns it.
pub(crate) fn parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    // One item: on this thread (a thread of its own would only cost its start).
    if items.len() == 1 {
        return f(&items[0]).map(|r| vec![r]);
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                if let Ok(mut g) = results.lock() {
                    g[i] = Some(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    let mut out = Vec::with_capacity(items.len());
    let mut first_err = None;
    for r in results {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) if first_err.is_none() => first_err = Some(e),
            Some(Err(_)) => {}
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None if out.len() == items.len() => Ok(out),
        None => Err(RegistryError::Usage(
            "a transfer thread stopped unexpectedly".into(),
        )),
    }
}

/// Checks credentials against a registry (`GET /v2/` with the token dance); saves nothing.
/// Refused credentials are a [`RegistryError::LoginRefused`].
pub fn check_login(registry: &str, creds: &crate::auth::Credentials, insecure: bool) -> Result<()> {
    let opts = transport::ConnectOptions {
        insecure,
        credentials: Some(creds.clone()),
    };
    let t = transport::Transport::new(registry, Vec::new(), &opts)?;
    let url = format!("{}/v2/", t.base);
    let mut resp = match t.send("GET", "/v2/", &[], &transport::ReqBody::Empty) {
        // The token dance refused them (or Basic was refused on the retry).
        Err(RegistryError::Unauthorized { host, reason }) => {
            return Err(RegistryError::LoginRefused {
                host,
                url,
                status: "401 Unauthorized".into(),
                reason,
            })
        }
        r => r?,
    };
    let status = resp.status();
    if !status.is_success() {
        return Err(RegistryError::LoginRefused {
            host: registry.to_string(),
            url,
            status: format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_string(),
            reason: transport::describe(&mut resp),
        });
    }
    Ok(())
}

/// Checks credentials against a registry (`GET /v2/` with the token dance) and saves them.
pub fn login(
    registry: &str,
    creds: crate::auth::Credentials,
    insecure: bool,
) -> Result<std::path::PathBuf> {
    match check_login(registry, &creds, insecure) {
        Ok(()) => crate::auth::save(registry, &creds),
        Err(RegistryError::LoginRefused { host, reason, .. }) => {
            Err(RegistryError::Unauthorized { host, reason })
        }
        Err(e) => Err(e),
    }
}
