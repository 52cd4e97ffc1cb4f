//! Healthchecks: the supervisor runs the check inside the container (same namespaces,
//! cgroup, user, capabilities and seccomp as `exec`), keeps the last results and the
//! status (`starting`, `healthy`, `unhealthy`) in the container row.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use gcr_runtime::Stdio;
use serde::{Deserialize, Serialize};

use super::config::HealthConfig;
use super::exec::{exec_process, ExecOptions};
use super::procfs;
use super::record::{self, Record, Update};
use crate::{Engine, EngineError};

/// How many results `inspect` keeps, as Docker.
const KEEP: usize = 5;
/// Output kept per result.
const MAX_OUTPUT: usize = 4096;

/// One check result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthResult {
    pub start_ns: i64,
    pub end_ns: i64,
    pub exit_code: i32,
    pub output: String,
}

/// Health as shown by `ps` and `inspect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthState {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthResult>,
}

impl HealthState {
    pub fn starting() -> HealthState {
        HealthState {
            status: "starting".into(),
            ..Default::default()
        }
    }

    /// Applies one result with Docker's rules: any success makes it healthy; `retries`
    /// consecutive failures make it unhealthy; failures during the start period only count
    /// once the container has been healthy... (Docker ignores them while starting).
    pub fn record(&mut self, res: HealthResult, cfg: &HealthConfig, in_start_period: bool) {
        if res.exit_code == 0 {
            self.status = "healthy".into();
            self.failing_streak = 0;
        } else if !(in_start_period && self.status == "starting") {
            self.failing_streak += 1;
            if self.failing_streak >= cfg.retries.max(1) {
                self.status = "unhealthy".into();
            }
        }
        self.log.push(res);
        if self.log.len() > KEEP {
            self.log.remove(0);
        }
    }
}

fn pipe() -> Option<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    use std::os::fd::FromRawFd;
    // SAFETY: pipe2 succeeded; both fds are fresh and owned by nobody else.
    Some(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Runs the check once; a timeout kills it and counts as failure (exit code -1). The
/// container's `grant://NAME` environment values are filled in memory, as for `exec`.
pub fn run_check(engine: &crate::Engine, r: &Record, cfg: &HealthConfig) -> HealthResult {
    let start_ns = record::now_ns();
    let fail = |msg: String| HealthResult {
        start_ns,
        end_ns: record::now_ns(),
        exit_code: -1,
        output: msg,
    };
    let o = ExecOptions {
        cmd: cfg.test.clone(),
        ..Default::default()
    };
    let mut process = match exec_process(r, &o) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(env) = process.env_mut().as_mut() {
        if env
            .iter()
            .any(|e| crate::secrets::grant::env_grant(e).is_some())
        {
            if let Err(e) = crate::secrets::grant::fill_env(engine, &mut None, env) {
                crate::secrets::grant::wipe_env(env);
                return fail(e.to_string());
            }
        }
    }
    let Some((out_r, out_w)) = pipe() else {
        return fail("cannot create a pipe".into());
    };
    let err_w = match out_w.try_clone() {
        Ok(f) => f,
        Err(e) => return fail(e.to_string()),
    };
    let cg = engine.cgroup(&r.id).ok();
    let seccomp = r.config.resolved.seccomp_mode();
    let stdio = Stdio::Fds {
        stdin: None,
        stdout: out_w,
        stderr: err_w,
    };
    let running = gcr_runtime::exec_in(r.pid.unwrap_or(0), &process, cg.as_ref(), seccomp, stdio);
    if let Some(env) = process.env_mut().as_mut() {
        crate::secrets::grant::wipe_env(env);
    }
    let running = match running {
        Ok(x) => x,
        Err(e) => return fail(e.to_string()),
    };
    let deadline = Instant::now() + Duration::from_millis(cfg.timeout_ms);
    let mut output = Vec::new();
    let pidfd = procfs::pidfd_open(running.pid);
    let mut open = true;
    while open {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut p = libc::pollfd {
            fd: out_r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd on the stack.
        let n = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if n <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: reading into a stack buffer of the stated length from our pipe.
        let got = unsafe { libc::read(out_r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if got <= 0 {
            open = false;
        } else if output.len() < MAX_OUTPUT {
            output.extend_from_slice(&buf[..got as usize]);
        }
    }
    let exited = pidfd.as_ref().is_some_and(|fd| {
        procfs::wait_pidfd(fd, deadline.saturating_duration_since(Instant::now()))
    });
    if !exited {
        procfs::signal(running.pid, libc::SIGKILL);
    }
    let code = gcr_runtime::wait_exit(&running)
        .map(|s| s.code())
        .unwrap_or(-1);
    output.truncate(MAX_OUTPUT);
    HealthResult {
        start_ns,
        end_ns: record::now_ns(),
        exit_code: if exited { code } else { -1 },
        output: if exited {
            String::from_utf8_lossy(&output).into_owned()
        } else {
            format!("Health check exceeded timeout ({}ms)", cfg.timeout_ms)
        },
    }
}

impl Engine {
    /// Stores a new health state for a running container (no state transition).
    pub(crate) fn store_health(&self, id: &str, h: &HealthState) -> Result<(), EngineError> {
        let r = record::find(self.store()?.conn(), id)?;
        let mut extra = r.extra.clone();
        extra.health = Some(h.clone());
        let u = Update {
            extra: Some(extra),
            ..Default::default()
        };
        let cause = format!("health_status: {}", h.status);
        let changed = r.extra.health.as_ref().map(|x| x.status.as_str()) != Some(h.status.as_str());
        let conn = self.store()?.conn();
        if changed {
            record::set_state(conn, &r, Some(r.state), r.state, &cause, &u)
        } else {
            record::update_extra(conn, &r, &u)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(code: i32) -> HealthResult {
        HealthResult {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn status_follows_docker_rules() {
        let cfg = HealthConfig {
            retries: 2,
            ..Default::default()
        };
        let mut h = HealthState::starting();
        h.record(res(1), &cfg, true);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        h.record(res(0), &cfg, false);
        assert_eq!(h.status, "healthy");
        h.record(res(1), &cfg, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 1));
        h.record(res(1), &cfg, false);
        assert_eq!(h.status, "unhealthy");
        for _ in 0..10 {
            h.record(res(0), &cfg, false);
        }
        assert_eq!(h.log.len(), KEEP);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 0));
    }
}
