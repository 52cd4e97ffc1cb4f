//! Lifecycle operations on existing containers: start, stop, kill, restart, pause, unpause,
//! rm, wait, and reconciliation of rows whose holder died (crash, reboot).

use std::time::{Duration, Instant};

use super::record::{self, Extra, Record, State, Update};
use super::{guard, procfs};
use crate::{Engine, EngineError};

/// Docker-like refusal text, e.g. `container web is not running (exited 0, 2 minutes ago)`.
fn not_running(r: &Record) -> EngineError {
    let detail = match r.state {
        State::Exited => {
            let ago = r
                .finished_at
                .map(|t| gcr_core::lifecycle::humanize_ago(now() - t))
                .unwrap_or_default();
            format!(" (exited {}, {ago})", r.exit_code.unwrap_or(0))
        }
        State::Created => " (created, never started)".to_string(),
        other => format!(" ({other})"),
    };
    EngineError::Conflict(format!("container {} is not running{detail}", r.name))
}

fn now() -> i64 {
    record::now_ns() / 1_000_000_000
}

impl Engine {
    /// Loads a container and makes its state true: a live row whose process and holder are
    /// both gone is marked exited and its cgroup and run-time files are removed.
    pub fn container(&self, key: &str) -> Result<Record, EngineError> {
        let r = record::find(self.store()?.conn(), key)?;
        self.reconcile(r)
    }

    pub(crate) fn reconcile(&self, r: Record) -> Result<Record, EngineError> {
        if !r.state.is_alive() {
            return Ok(r);
        }
        let pid = r.pid.unwrap_or(0);
        // The holder is asked only when the container's own process is gone (one /proc
        // read per running container in a listing, not two).
        if procfs::running(pid, r.extra.pid_start) || r.extra.holder_alive() {
            return Ok(r);
        }
        // Nobody holds it any more (supervisor killed, or reboot). Its exit code is in its
        // exit file when its supervisor or guard saw it (see `guard`); otherwise it is
        // unknown, recorded as 255 with an `exit-unknown` event, never as a clean exit.
        let (code, unknown) = match guard::lost_exit(self.run_dir(), &r) {
            guard::Lost::Running => return Ok(r),
            guard::Lost::Exited(code) => (code, false),
            guard::Lost::Unknown => (guard::UNKNOWN_EXIT, true),
        };
        let keep_rm = r.config.opts.rm;
        let mut fixed = r.clone();
        fixed.config.opts.rm = false;
        match self.record_exit(&fixed, code, None) {
            // Someone (the holder finishing up, another gcr) recorded it meanwhile.
            Err(EngineError::Conflict(_)) => return record::find(self.store()?.conn(), &r.id),
            other => other?,
        }
        if unknown {
            let _ = record::container_event(
                self.store()?.conn(),
                &r,
                &r.name,
                Some("exited"),
                Some("exited"),
                "exit-unknown",
            );
        }
        if keep_rm {
            self.remove_files(&r);
            let cur = record::find(self.store()?.conn(), &r.id)?;
            record::delete(self.store()?.conn(), &cur, "rm")?;
            return Err(EngineError::NotFound(format!(
                "no such container: {}; see 'gcr ps -a'",
                r.name
            )));
        }
        record::find(self.store()?.conn(), &r.id)
    }

    /// `gcr start`: starts a created or exited container under a supervisor.
    pub fn start(&self, key: &str) -> Result<Record, EngineError> {
        self.start_with(key, false)
    }

    /// Starts `key` with its output held for an attach that follows (the supervisor reads
    /// nothing until the first client's hello, 10 s at most; see [`super::attach`]): the API
    /// service's start of a container with a pending attach.
    pub fn start_held(&self, key: &str) -> Result<Record, EngineError> {
        self.start_with(key, true)
    }

    /// `start -a`/`-i`: starts `key` with its output held for the attach that follows, and
    /// attaches (see [`super::attach`]).
    pub fn start_attached(
        &self,
        key: &str,
        o: &super::attached::AttachOptions,
    ) -> Result<super::attached::AttachEnd, EngineError> {
        let r = self.start_with(key, true)?;
        self.attach_container(&r.id, o)
    }

    /// `run -it`: creates and starts the container supervised, as `run -d`, and attaches
    /// from its first byte.
    pub fn run_attached(
        &self,
        opts: super::config::RunOptions,
        o: &super::attached::AttachOptions,
    ) -> Result<super::attached::AttachEnd, EngineError> {
        let r = self.run_supervised(opts, true)?;
        self.attach_container(&r.id, o)
    }

    fn start_with(&self, key: &str, attach_wait: bool) -> Result<Record, EngineError> {
        let mut r = self.container(key)?;
        match r.state {
            State::Running | State::Paused => return Ok(r),
            State::Created | State::Exited => {}
            other => {
                return Err(EngineError::Conflict(format!(
                    "container {} cannot be started while {other}",
                    r.name
                )))
            }
        }
        if let Err(e) = self.gate_start(&r) {
            // Not claimed: another process may be starting it; only a stopped one goes.
            self.remove_unstarted(&r, false);
            return Err(e);
        }
        if !self.claim_start(&mut r)? {
            // Another `start` ran it meanwhile: starting a running container is a no-op.
            return Ok(r);
        }
        if let Err(e) = self.start_supervised(&mut r, "start", attach_wait) {
            self.release_start(&r);
            self.remove_unstarted(&r, true);
            return Err(e);
        }
        Ok(r)
    }

    /// A `--rm` container whose start failed goes with its anonymous volumes, as dockerd
    /// removes an `AutoRemove` one (the docker CLI's `run --rm` waits for that removal
    /// after a failed start). `force` when this process claimed the start: a process that
    /// runs although its start failed (its supervisor died) is killed first; otherwise only
    /// a container that is stopped and not being started by another process goes.
    fn remove_unstarted(&self, r: &Record, force: bool) {
        if r.config.opts.rm {
            let _ = self.remove_with(&r.id, force, true);
        }
    }

    /// Claims the start of `r` for this process, in one transaction: refused when it is no
    /// longer startable or another live process is starting it (two `start`s of one
    /// container: exactly one runs it); false, with `r` as it is now, when it runs already.
    fn claim_start(&self, r: &mut Record) -> Result<bool, EngineError> {
        let me = std::process::id() as i32;
        let (claimed, cur) = self.store()?.transaction(|tx| {
            let cur = record::find(tx, &r.id)?;
            if matches!(cur.state, State::Running | State::Paused) {
                return Ok((false, cur));
            }
            if !matches!(cur.state, State::Created | State::Exited) {
                return Err(EngineError::Conflict(format!(
                    "container {} is {} already",
                    cur.name, cur.state
                )));
            }
            if cur.extra.being_started() {
                return Err(EngineError::Conflict(format!(
                    "container {} is being started by process {}; wait for it or try again",
                    cur.name, cur.extra.holder_pid
                )));
            }
            let extra = Extra {
                health: cur.extra.health.clone(),
                ..Extra::claimed_by(me)
            };
            let u = Update {
                extra: Some(extra.clone()),
                ..Default::default()
            };
            record::update_extra(tx, &cur, &u)?;
            Ok((true, Record { extra, ..cur }))
        })?;
        *r = cur;
        Ok(claimed)
    }

    /// Gives up a claim made by [`Engine::claim_start`] (the start failed).
    fn release_start(&self, r: &Record) {
        if let Ok(cur) = self.store().and_then(|s| record::find(s.conn(), &r.id)) {
            if cur.extra.starting && cur.extra.holder_pid == std::process::id() as i32 {
                let u = Update {
                    extra: Some(Extra {
                        starting: false,
                        ..cur.extra.clone()
                    }),
                    ..Default::default()
                };
                let _ = self
                    .store()
                    .and_then(|s| record::update_extra(s.conn(), &cur, &u));
            }
        }
    }

    /// `gcr run -d`.
    pub fn run_detached(&self, opts: super::config::RunOptions) -> Result<Record, EngineError> {
        self.run_supervised(opts, false)
    }

    fn run_supervised(
        &self,
        opts: super::config::RunOptions,
        attach_wait: bool,
    ) -> Result<Record, EngineError> {
        let mut r = self.create(opts)?;
        let started = self.claim_start(&mut r).and_then(|claimed| match claimed {
            true => self.start_supervised(&mut r, "start", attach_wait),
            // Fresh: nobody else can have started it.
            false => Ok(()),
        });
        if let Err(e) = started {
            self.release_start(&r);
            self.remove_unstarted(&r, true);
            return Err(e);
        }
        Ok(r)
    }

    fn mark_stopped_by_user(&self, r: &Record, to: State) -> Result<(), EngineError> {
        let mut extra = r.extra.clone();
        extra.stopped_by_user = true;
        let u = Update {
            extra: Some(extra),
            ..Default::default()
        };
        record::set_state(self.store()?.conn(), r, Some(r.state), to, "stop", &u)
    }

    /// Waits until the holder has recorded the exit (or is gone, then reconciles).
    fn wait_recorded(&self, id: &str, timeout: Duration) -> Result<(), EngineError> {
        let deadline = Instant::now() + timeout;
        loop {
            match record::find(self.store()?.conn(), id) {
                Err(EngineError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
                Ok(r) if !r.state.is_alive() => return Ok(()),
                Ok(r) => {
                    let pid = r.pid.unwrap_or(0);
                    let dead = !procfs::running(pid, r.extra.pid_start);
                    let holder_gone = !r.extra.holder_alive();
                    if dead && holder_gone {
                        let _ = self.reconcile(r);
                        return Ok(());
                    }
                    if Instant::now() >= deadline {
                        return Err(EngineError::Internal(format!(
                            "container {} did not finish stopping in time",
                            r.name
                        )));
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        }
    }

    /// `gcr stop [-t N]`: the stop signal, then SIGKILL after the timeout.
    pub fn stop(&self, key: &str, timeout: Option<u32>) -> Result<Record, EngineError> {
        let r = self.container(key)?;
        let restarting = r.state == State::Exited
            && r.config.opts.restart != super::config::RestartPolicy::No
            && !r.extra.stopped_by_user
            && r.extra.holder_alive();
        if restarting {
            // Waiting to restart: just prevent the restart.
            self.mark_stopped_by_user(&r, State::Exited)?;
            return Ok(r);
        }
        if !r.state.is_alive() {
            // Docker's rule: stopping a stopped container succeeds (and changes nothing).
            return Ok(r);
        }
        let pid = r.pid.unwrap_or(0);
        let pidfd = procfs::pidfd_open(pid);
        self.mark_stopped_by_user(&r, State::Stopping)?;
        let sig = r.config.resolved.stop_signal;
        procfs::signal(pid, sig);
        if r.state == State::Paused {
            self.thaw(&r)?;
        }
        let t = Duration::from_secs(timeout.unwrap_or(r.config.resolved.stop_timeout) as u64);
        let exited = pidfd.as_ref().is_none_or(|fd| procfs::wait_pidfd(fd, t));
        if !exited {
            self.kill_group(&r, libc::SIGKILL);
            if let Some(fd) = &pidfd {
                procfs::wait_pidfd(fd, Duration::from_secs(5));
            }
        }
        self.wait_recorded(&r.id, Duration::from_secs(10))?;
        Ok(r)
    }

    /// Signals the container's init. SIGKILL to the init of a pid namespace takes every
    /// process of the container with it, so no cgroup-wide kill (and no freezing of tasks
    /// that may be busy unmounting) is needed.
    fn kill_group(&self, r: &Record, sig: i32) {
        procfs::signal(r.pid.unwrap_or(0), sig);
    }

    /// `gcr kill [-s SIG]`.
    pub fn kill(&self, key: &str, signal: &str) -> Result<Record, EngineError> {
        let sig = gcr_core::units::parse_signal(signal).map_err(|_| {
            EngineError::Usage(format!(
                "invalid signal '{signal}'; use a name like SIGKILL or KILL, or a number"
            ))
        })?;
        let r = self.container(key)?;
        if !r.state.is_alive() {
            return Err(not_running(&r));
        }
        if sig == libc::SIGKILL || sig == r.config.resolved.stop_signal {
            let mut extra = r.extra.clone();
            extra.stopped_by_user = true;
            let u = Update {
                extra: Some(extra),
                ..Default::default()
            };
            record::set_state(self.store()?.conn(), &r, Some(r.state), r.state, "kill", &u)?;
        }
        self.kill_group(&r, sig);
        if sig == libc::SIGKILL && r.state == State::Paused {
            self.thaw(&r)?;
        }
        Ok(r)
    }

    pub(crate) fn thaw(&self, r: &Record) -> Result<(), EngineError> {
        self.cgroup(&r.id)?
            .thaw()
            .map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// `gcr pause`.
    pub fn pause(&self, key: &str) -> Result<Record, EngineError> {
        let r = self.container(key)?;
        match r.state {
            State::Running => {}
            State::Paused => {
                return Err(EngineError::Conflict(format!(
                    "container {} is already paused",
                    r.name
                )))
            }
            _ => return Err(not_running(&r)),
        }
        self.cgroup(&r.id)?
            .freeze()
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        record::set_state(
            self.store()?.conn(),
            &r,
            Some(State::Running),
            State::Paused,
            "pause",
            &Update::default(),
        )?;
        Ok(r)
    }

    /// `gcr unpause`.
    pub fn unpause(&self, key: &str) -> Result<Record, EngineError> {
        let r = self.container(key)?;
        if r.state != State::Paused {
            return Err(EngineError::Conflict(format!(
                "container {} is not paused ({})",
                r.name, r.state
            )));
        }
        self.thaw(&r)?;
        record::set_state(
            self.store()?.conn(),
            &r,
            Some(State::Paused),
            State::Running,
            "unpause",
            &Update::default(),
        )?;
        Ok(r)
    }

    /// `gcr rm [-f]`.
    pub fn remove(&self, key: &str, force: bool) -> Result<Record, EngineError> {
        self.remove_with(key, force, false)
    }

    /// `gcr rm [-f] [-v]`: with `volumes`, the container's anonymous volumes go too
    /// (those no other container uses).
    pub fn remove_with(
        &self,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<Record, EngineError> {
        let mut r = self.container(key)?;
        if r.extra.being_started() {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container {}: it is being started; stop it first or use rm -f",
                    r.name
                )));
            }
            // Let the start finish (or fail), then remove what it left: never delete files
            // under a process that is about to run.
            let deadline = Instant::now() + Duration::from_secs(10);
            while r.extra.being_started() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
                r = self.container(key)?;
            }
            if r.extra.being_started() {
                return Err(EngineError::Conflict(format!(
                    "container {} is still being started by process {}; try again",
                    r.name, r.extra.holder_pid
                )));
            }
        }
        if r.state.is_alive() {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container {}: it is {}; stop it first or use rm -f",
                    r.name, r.state
                )));
            }
            // Already stopping, or marked meanwhile: another `stop` or `rm -f` is at work.
            let marked = r.state != State::Stopping
                && match self.mark_stopped_by_user(&r, State::Stopping) {
                    Ok(()) => true,
                    Err(EngineError::Conflict(_)) => false,
                    Err(e) => return Err(e),
                };
            if !marked {
                // That one may have died before its signal: `-f` kills in any case.
                self.kill_group(&r, libc::SIGKILL);
                // Another stop or removal got there first: let it finish, then remove
                // what it left (nothing, when it was a removal).
                self.wait_recorded(&r.id, Duration::from_secs(10))?;
                return match record::find(self.store()?.conn(), &r.id) {
                    Err(EngineError::NotFound(_)) => Err(record::removed_meanwhile(&r.name)),
                    Err(e) => Err(e),
                    Ok(cur) if cur.state.is_alive() => Err(EngineError::Conflict(format!(
                        "container {} changed state meanwhile; try again",
                        cur.name
                    ))),
                    Ok(_) => self.remove_with(&r.id, force, volumes),
                };
            }
            self.kill_group(&r, libc::SIGKILL);
            if r.state == State::Paused {
                let _ = self.thaw(&r);
            }
            self.wait_recorded(&r.id, Duration::from_secs(10))?;
        }
        // A supervisor waiting to restart is told to go away.
        if r.extra.holder_pid > 0
            && r.extra.holder_pid != std::process::id() as i32
            && r.extra.holder_alive()
            && procfs::cmdline(r.extra.holder_pid).contains(&r.id)
        {
            procfs::signal(r.extra.holder_pid, libc::SIGKILL);
        }
        let cur = match record::find(self.store()?.conn(), &r.id) {
            Ok(c) => c,
            // A `--rm` container removes itself when killed; any other was removed by
            // someone else meanwhile.
            Err(EngineError::NotFound(_)) if r.config.opts.rm && r.state.is_alive() => {
                return Ok(r)
            }
            Err(EngineError::NotFound(_)) => return Err(record::removed_meanwhile(&r.name)),
            Err(e) => return Err(e),
        };
        if let Ok(c) = self.cgroup(&r.id) {
            kill_strays(&c);
            let _ = c.destroy();
        }
        self.net_detach(&cur);
        self.volumes_release(&cur, volumes);
        self.remove_files(&cur);
        record::delete(self.store()?.conn(), &cur, "rm")?;
        // Directories of containers whose maker was killed before storing them go too.
        self.sweep_orphan_container_dirs();
        Ok(cur)
    }

    /// Container directories that no row names, left by killed processes (see
    /// [`super::orphans`]).
    pub fn orphan_container_dirs(&self) -> Vec<std::path::PathBuf> {
        self.store()
            .map(|s| super::orphans::find(self.root(), s.conn()))
            .unwrap_or_default()
    }

    /// Moves [`Engine::orphan_container_dirs`] to the trash; their ids.
    pub fn sweep_orphan_container_dirs(&self) -> Vec<String> {
        let gone = self
            .store()
            .map(|s| super::orphans::sweep(self.root(), s.conn()))
            .unwrap_or_default();
        if !gone.is_empty() {
            self.wake_reaper();
        }
        gone
    }

    /// `gcr restart`.
    pub fn restart(&self, key: &str, timeout: Option<u32>) -> Result<Record, EngineError> {
        let r = self.container(key)?;
        if r.state.is_alive() {
            self.stop(key, timeout)?;
        }
        self.start(&r.id)
    }

    /// `gcr wait`: blocks until the container exits and returns its exit code.
    pub fn wait(&self, key: &str) -> Result<i32, EngineError> {
        let r = self.container(key)?;
        if !r.state.is_alive() {
            return Ok(r.exit_code.unwrap_or(0));
        }
        if let Some(fd) = procfs::pidfd_open(r.pid.unwrap_or(0)) {
            while !procfs::wait_pidfd(&fd, Duration::from_secs(3600)) {}
        }
        self.wait_recorded(&r.id, Duration::from_secs(30))?;
        match record::find(self.store()?.conn(), &r.id) {
            Ok(r) => Ok(r.exit_code.unwrap_or(0)),
            Err(EngineError::NotFound(_)) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// Removes the cgroup of container `id` whose files are gone (`dir`: where they are now,
/// e.g. in the trash), killing what is left in it first; nothing happens when there is no
/// such group.
pub(crate) fn remove_stray_cgroup(
    m: &gcr_runtime::cgroups::CgroupManager,
    dir: &std::path::Path,
    id: &str,
) {
    let c = m.open_at(&super::cgroup_rel(dir, id));
    if c.paths().iter().any(|p| p.exists()) {
        kill_strays(&c);
        let _ = c.destroy();
    }
}

/// Kills what is left in the cgroup of a container being removed (a start abandoned by a
/// process killed before it recorded it) and waits up to 2 s for it to go.
fn kill_strays(c: &gcr_runtime::cgroups::Cgroup) {
    if c.procs().is_empty() {
        return;
    }
    c.kill_all(libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !c.procs().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}
