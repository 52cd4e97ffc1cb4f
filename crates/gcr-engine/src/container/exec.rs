//! `gcr exec`: a new process in the namespaces and cgroup of a running container, with
//! the container's capabilities and seccomp profile.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxCapabilitiesBuilder, Process, ProcessBuilder, UserBuilder};

use super::record::{Record, State};

use super::run::runtime_err;
use crate::{resolve, Engine, EngineError};

/// Flags of `gcr exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
}

fn spec_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("building the exec process failed: {e}"))
}

impl Engine {
    /// Runs a command in a running container; returns its exit code (0 when detached).
    pub fn exec(&self, key: &str, o: &ExecOptions) -> Result<i32, EngineError> {
        // Docker connects stdin only with -i, and nothing of a detached exec.
        let on = !o.detach;
        let stdio =
            super::foreground::foreground_stdio(o.tty, [o.interactive && on, on, on], None)?;
        let mut running = self.exec_spawn(key, o, stdio)?;
        if o.detach {
            std::mem::forget(running);
            return Ok(0);
        }
        let interactive = o.interactive;
        let _fwd = gcr_runtime::signal_forwarder(running.pid, false).map_err(runtime_err)?;
        if let Some(m) = running.pty_master.take() {
            {
                use std::os::fd::AsFd;
                let (i, o) = (std::io::stdin(), std::io::stdout());
                let i = interactive.then(|| i.as_fd());
                gcr_runtime::pty::relay(m, i, o.as_fd()).map_err(runtime_err)?;
            }
        }
        exec_wait(&running)
    }

    /// Starts a command in a running container with the given standard streams (a pty with
    /// [`ExecStdio::Pty`]: its master is in the result's `pty_master`); the caller relays
    /// them and reaps the process with [`exec_wait`] (the API service's exec).
    pub fn exec_spawn(
        &self,
        key: &str,
        o: &ExecOptions,
        stdio: ExecStdio,
    ) -> Result<ExecRunning, EngineError> {
        let r = self.container(key)?;
        match r.state {
            State::Running => {}
            State::Paused => {
                return Err(EngineError::Conflict(format!(
                    "container {} is paused; unpause it first",
                    r.name
                )))
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "container {} is not running; start it first",
                    r.name
                )))
            }
        }
        if o.cmd.is_empty() {
            return Err(EngineError::Usage(
                "exec needs a command to run after the container name".into(),
            ));
        }
        let mut process = exec_process(&r, o)?;
        if o.tty {
            super::run::note_console_size();
            super::run::set_process_console_size(&mut process);
        }
        // `VAR=grant://NAME` (the container's or the exec's own) gets its value here, in
        // memory only; wiped once the process has it.
        if let Some(env) = process.env_mut().as_mut() {
            if env
                .iter()
                .any(|e| crate::secrets::grant::env_grant(e).is_some())
            {
                if let Err(e) = crate::secrets::grant::fill_env(self, &mut None, env) {
                    crate::secrets::grant::wipe_env(env);
                    return Err(e);
                }
            }
        }
        let res = &r.config.resolved;
        let cg = self.cgroup(&r.id).ok();
        let seccomp = res.seccomp_mode();
        let running =
            gcr_runtime::exec_in(r.pid.unwrap_or(0), &process, cg.as_ref(), seccomp, stdio)
                .map_err(runtime_err);
        if let Some(env) = process.env_mut().as_mut() {
            crate::secrets::grant::wipe_env(env);
        }
        running
    }
}

/// An exec'd process: its host pid and, with a tty, the pty master.
pub use gcr_runtime::Running as ExecRunning;
/// The standard streams of an exec'd process (see [`Engine::exec_spawn`]).
pub use gcr_runtime::Stdio as ExecStdio;

/// Reaps a process started by [`Engine::exec_spawn`]; its exit code (128+N for signal N).
pub fn exec_wait(running: &ExecRunning) -> Result<i32, EngineError> {
    let status = gcr_runtime::wait_exit(running).map_err(runtime_err)?;
    Ok(status.code())
}

/// The OCI process for a command run inside `r` (by `exec` and healthchecks).
pub(crate) fn exec_process(r: &Record, o: &ExecOptions) -> Result<Process, EngineError> {
    let res = &r.config.resolved;
    let (uid, gid, gids) = match &o.user {
        Some(u) => resolve::resolve_user(u, &res.lowers)?,
        None => (res.uid, res.gid, res.additional_gids.clone()),
    };
    let mut env = res.env.clone();
    // Another user gets its own HOME (from the image's passwd, else /).
    if let Some(u) = &o.user {
        env.retain(|x| !x.starts_with("HOME="));
        env.push(format!("HOME={}", gcr_runtime::users::home(u, &res.lowers)));
    }
    for e in &o.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    let names = crate::ocispec::cap_set(res.caps_mask);
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(names.clone())
        .effective(names.clone())
        .permitted(names)
        .build()
        .map_err(spec_err)?;
    ProcessBuilder::default()
        .terminal(o.tty)
        .user(
            UserBuilder::default()
                .uid(uid)
                .gid(gid)
                .additional_gids(gids)
                .build()
                .map_err(spec_err)?,
        )
        .args(o.cmd.clone())
        .env(env)
        .cwd(PathBuf::from(
            o.workdir.clone().unwrap_or_else(|| res.cwd.clone()),
        ))
        .capabilities(capabilities)
        .no_new_privileges(res.no_new_privileges)
        // The container's --ulimit values hold for what runs in it later too (Docker's rule).
        .rlimits(crate::ocispec::rlimits(&r.config.opts.ulimits)?)
        .build()
        .map_err(spec_err)
}
