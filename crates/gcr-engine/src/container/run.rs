//! `create`, `run` and `start`: from flags to a container row, from a row to a running
//! process. Foreground runs are held by the calling gcr process (`foreground.rs`); detached
//! ones by a supervisor (see [`super::supervise`]).

use std::path::Path;

use gcr_runtime::{Launch, Running, Stdio};

use super::config::{ContainerConfig, RunOptions};
use super::procfs;
use super::record::{self, now_secs, Extra, Record, State, Update};
use super::rows;
use super::{imagecache, mountpoints, premount};
use crate::{names, ocispec, resolve, timing, Engine, EngineError};

impl Engine {
    /// Validates flags, resolves the image and stores a new container in state `created`.
    pub fn create(&self, opts: RunOptions) -> Result<Record, EngineError> {
        let r = self.prepare_container(opts, false)?;
        // The row first, then the directories: a process killed in between leaves a row
        // (`rm` removes it; a start of it fails and says so), never a directory that no
        // row names.
        record::insert(self.store()?.conn(), &r)?;
        if let Err(e) = premount::make_dirs(&self.container_dir(&r.id)) {
            self.remove_files(&r);
            let _ = record::delete(self.store()?.conn(), &r, "error");
            return Err(e);
        }
        Ok(r)
    }

    /// Everything `create` does but storing the row: validation, image, name, config and
    /// (for a run) the container's directories. `remember` (a run) records the image in the
    /// run directory's image cache for the next foreground run (see [`imagecache`]).
    pub(super) fn prepare_container(
        &self,
        mut opts: RunOptions,
        remember: bool,
    ) -> Result<Record, EngineError> {
        check_options(&opts)?;
        crate::secrets::grant::check(self, &opts.secrets, &opts.env)?;
        let image = self.store()?.resolve_image(&opts.image).map_err(|e| {
            if e.is_not_found() {
                EngineError::NotFound(format!(
                    "unable to find image '{}' locally; load, import, build or pull it first",
                    opts.image
                ))
            } else {
                e.into()
            }
        })?;
        let lowers: Vec<String> = self
            .store()?
            .prepare_rootfs(&image.id)?
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let config = self.store()?.image_config(&image.id)?;
        timing::mark("prepare: image resolved");
        let config = String::from_utf8(config)
            .map_err(|_| EngineError::Internal("the image config is not UTF-8".into()))?;
        let note = self.gate_container(&mut opts, &image.id, &config, &lowers)?;
        let cached = imagecache::CachedImage {
            image_ref: opts.image.clone(),
            id: image.id,
            lowers,
            config,
        };
        // The run dir gets its tmpfs before anything is written there.
        if remember && crate::rundir::ensure(self.run_dir()).is_ok() {
            imagecache::save(self.run_dir(), self.root(), &cached);
        }
        let mut r = self.describe_container(opts, cached, true, None, remember)?;
        r.config.policy = note;
        Ok(r)
    }

    /// [`Engine::prepare_container`] from an image cache entry, without the store: the
    /// name's uniqueness is checked when the row is stored.
    /// `ahead`: the id picked for a root overlay asked for ahead (the housekeeper makes
    /// its directories). `note`: the policy gate's allow (see [`Engine::gate_container`]).
    pub(super) fn prepare_container_cached(
        &self,
        opts: RunOptions,
        cached: imagecache::CachedImage,
        ahead: Option<String>,
        note: Option<String>,
    ) -> Result<Record, EngineError> {
        let mut r = self.describe_container(opts, cached, false, ahead, true)?;
        r.config.policy = note;
        Ok(r)
    }

    /// The record of a new container (name, hostname, resolved configuration) and its
    /// directories (when `dirs`).
    fn describe_container(
        &self,
        mut opts: RunOptions,
        image: imagecache::CachedImage,
        check_name: bool,
        ahead: Option<String>,
        dirs: bool,
    ) -> Result<Record, EngineError> {
        let made_ahead = ahead.is_some();
        let id = ahead.unwrap_or_else(names::random_id);
        let name = match &opts.name {
            Some(n) => n.clone(),
            None => loop {
                let n = names::random_name();
                if !check_name || !record::name_taken(self.store()?.conn(), &n)? {
                    break n;
                }
            },
        };
        let hostname = opts
            .hostname
            .clone()
            .unwrap_or_else(|| id[..12].to_string());
        let image_config: serde_json::Value = serde_json::from_str(&image.config)?;
        let mut resolved = resolve::resolve(&opts, &image_config, image.lowers, hostname)?;
        super::share::check(self, &opts)?;
        self.net_validate(&mut opts, &image_config, &mut resolved)?;
        timing::mark("prepare: config resolved");
        let image_ref = opts.image.clone();
        let r = Record {
            id: id.clone(),
            name,
            image_id: image.id,
            image_ref,
            created_at: now_secs(),
            state: State::Created,
            config: Box::new(ContainerConfig {
                opts,
                resolved,
                policy: None,
            }),
            pid: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            oom_killed: false,
            restart_count: 0,
            extra: Extra::default(),
        };
        if let Some(p) = &r.config.opts.cidfile {
            std::fs::write(p, &r.id)
                .map_err(|e| EngineError::Io(format!("writing the container ID file {p}"), e))?;
        }
        // `create` makes them once its row is stored (see `Engine::create`).
        if !made_ahead && dirs {
            premount::make_dirs(&self.container_dir(&id))?;
            premount::hold_dir(&self.container_dir(&id));
        }
        Ok(r)
    }

    /// Starts the container's process with the given stdio; does not touch the database.
    pub fn launch(&self, r: &Record, stdio: Stdio) -> Result<Running, EngineError> {
        self.launch_with(r, stdio, None, false, None)
    }

    /// [`Engine::launch`], running `while_starting` in parallel with the child's setup.
    pub(super) fn launch_with(
        &self,
        r: &Record,
        stdio: Stdio,
        while_starting: Option<Box<dyn FnOnce(i32) -> bool + '_>>,
        gate: bool,
        ahead: Option<premount::Premount>,
    ) -> Result<Running, EngineError> {
        let cfg = &r.config;
        let mut mounts = self.volume_mounts(r)?;
        let att = self.net_attach(r)?;
        timing::mark("launch: volumes+network");
        mounts.extend(att.mounts);
        // Targets of the network files that the image lacks come from a shared layer.
        let stubs: Vec<&str> = ["hosts", "hostname", "resolv.conf"]
            .into_iter()
            .filter(|f| {
                mounts
                    .iter()
                    .any(|m| m.destination() == &Path::new("/etc").join(f))
            })
            .collect();
        // Asked for ahead with the same files: the same layers (no second look at them).
        let lowers = match &ahead {
            Some(p) if p.stubs == stubs => p.lowers.clone(),
            _ => mountpoints::lowers(self.root(), &cfg.resolved.lowers, &stubs),
        };
        let (mut spec, secrets) = match ocispec::build(cfg, mounts)
            .and_then(|mut spec| self.apply_sharing(r, &mut spec).map(|()| spec))
            .map(|mut spec| {
                if cfg.opts.tty {
                    set_console_size(&mut spec);
                }
                spec
            })
            .and_then(|spec| self.grant_secrets(cfg, spec))
        {
            Ok(s) => s,
            Err(e) => {
                self.net_detach(r);
                return Err(e);
            }
        };
        let res = &cfg.opts;
        let mut resources = gcr_runtime::cgroups::Resources {
            memory: res.memory,
            memory_swap: res.memory_swap,
            cpus: res.cpus,
            cpu_shares: res.cpu_shares,
            pids: res.pids_limit,
            cpuset_cpus: res.cpuset_cpus.clone(),
            cpuset_mems: res.cpuset_mems.clone(),
            cpuset_group: false,
            ..Default::default()
        };
        // A --cgroup-parent is noted in the container's directory first, so that whatever
        // finds the container by id finds its group (see `cgroup_rel`).
        let placed = res
            .tuning
            .apply(&mut resources)
            .map_err(EngineError::Usage)
            .and_then(|()| {
                res.cgroup_parent
                    .as_deref()
                    .map(|p| super::note_cgroup_parent(&self.container_dir(&r.id), &r.id, p))
                    .transpose()
            });
        let cgroup_path = match placed {
            Ok(p) => p,
            Err(e) => {
                self.net_detach(r);
                return Err(e);
            }
        };
        let rootfs = match self.rootfs(&r.id, lowers, ahead, cfg.opts.rm) {
            Ok(fs) => fs,
            Err(e) => {
                self.net_detach(r);
                return Err(e);
            }
        };
        let launch = Launch {
            id: &r.id,
            spec: &spec,
            rootfs,
            stdio,
            seccomp: cfg.resolved.seccomp_mode(),
            init: res.init,
            cgroup_resources: Some(resources),
            network: att.network,
            while_starting,
            gate,
            secrets,
        };
        timing::mark("launch: spec");
        let extras = gcr_runtime::Extras {
            cgroup_path,
            ..Default::default()
        };
        let res = gcr_runtime::spawn_with(launch, extras);
        crate::secrets::grant::wipe_spec_env(&mut spec);
        timing::mark("launch: spawn");
        res.map_err(|e| {
            self.net_detach(r);
            runtime_err(e)
        })
    }

    /// `r` as running as `pid`, held by `holder`.
    pub(crate) fn as_running(&self, r: &Record, pid: i32, holder: i32) -> (Record, Update) {
        let extra = Extra {
            holder_pid: holder,
            holder_start: procfs::start_time(holder).unwrap_or(0),
            pid_start: procfs::start_time(pid).unwrap_or(0),
            stopped_by_user: false,
            cgroup: true,
            starting: false,
            health: r
                .config
                .resolved
                .health
                .as_ref()
                .map(|_| super::health::HealthState::starting()),
        };
        let u = Update {
            pid: Some(Some(pid)),
            started_at: Some(now_secs()),
            extra: Some(extra.clone()),
            restart_count: Some(r.restart_count),
            ..Default::default()
        };
        let mut running = r.clone();
        running.state = State::Running;
        running.pid = Some(pid);
        running.started_at = u.started_at;
        running.extra = extra;
        (running, u)
    }

    /// Records that `r` runs as `pid`, held by `holder`.
    pub(crate) fn mark_running(
        &self,
        r: &mut Record,
        pid: i32,
        holder: i32,
        cause: &str,
    ) -> Result<(), EngineError> {
        let (running, u) = self.as_running(r, pid, holder);
        record::set_state(self.store()?.conn(), r, None, State::Running, cause, &u)?;
        *r = running;
        Ok(())
    }

    /// Records an exit, tears down the cgroup, and removes the container when `--rm`.
    /// `cg` is the container's cgroup when the caller still holds it (saves a lookup).
    pub(crate) fn record_exit(
        &self,
        r: &Record,
        code: i32,
        cg: Option<&gcr_runtime::cgroups::Cgroup>,
    ) -> Result<(), EngineError> {
        let opened;
        let cg = match cg {
            Some(c) => Some(c),
            None => {
                opened = self.cgroup(&r.id).ok();
                opened.as_ref()
            }
        };
        let oom = cg.is_some_and(|c| c.oom_killed());
        timing::mark("exit: oom check");
        if let Some(c) = cg {
            // The pid namespace died with its init, so the group is normally empty.
            if c.destroy().is_err() {
                c.kill_all(libc::SIGKILL);
                let _ = c.destroy();
            }
        }
        timing::mark("exit: cgroup destroyed");
        self.net_detach(r);
        let rm = r.config.opts.rm;
        if rm {
            // Files first: once the row is gone, nothing of the container may remain.
            self.remove_files(r);
            timing::mark("exit: files to trash");
        } else {
            // Before the exit is recorded: once the row says exited a `start` may write
            // this directory's files again, and they must not be removed under it.
            let _ = std::fs::remove_dir_all(self.container_run_dir(&r.id));
        }
        let mut exit = rows::Exit {
            row: r.clone(),
            code,
            oom,
            maybe_recorded: false,
        };
        let done = match crate::prestart::door() {
            Some(door) => rows::settle(door.store_exit(&exit), &mut exit.maybe_recorded)?,
            None => None,
        };
        match done {
            Some(()) => timing::mark("housekeeper: exit recorded"),
            None => rows::store_exit(self.store()?, &exit)?,
        }
        timing::mark("exit: recorded");
        if rm {
            self.volumes_release(r, true);
        }
        Ok(())
    }

    /// Removes a container's directories.
    /// The store directory goes to the trash (deleted by a reaper, see [`crate::trash`]);
    /// the run-time one, on tmpfs, is deleted here.
    pub(crate) fn remove_files(&self, r: &Record) {
        self.discard_dir(&self.container_dir(&r.id), &r.id);
        let _ = std::fs::remove_dir_all(self.container_run_dir(&r.id));
    }
}

/// Checks of `run`/`create` flags that need nothing but the flags.
pub(super) fn check_options(opts: &RunOptions) -> Result<(), EngineError> {
    opts.log_settings().map_err(EngineError::Usage)?;
    if let Some(n) = &opts.name {
        if !names::valid_name(n) {
            return Err(EngineError::Usage(format!(
                "invalid container name '{n}': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
    }
    if let Some(adj) = opts.oom_score_adj.filter(|a| !(-1000..=1000).contains(a)) {
        return Err(EngineError::Usage(format!(
            "invalid --oom-score-adj {adj}: use a value from -1000 to 1000"
        )));
    }
    if let Some(d) = opts
        .domainname
        .as_deref()
        .filter(|d| d.len() > 64 || d.contains('\0'))
    {
        return Err(EngineError::Usage(format!(
            "invalid --domainname '{d}': use at most 64 characters"
        )));
    }
    opts.tuning.check(opts.memory).map_err(EngineError::Usage)?;
    if let Some(p) = &opts.cgroup_parent {
        super::check_cgroup_parent(p).map_err(EngineError::Usage)?;
    }
    if opts.rm && opts.restart != super::config::RestartPolicy::No {
        return Err(EngineError::Usage(
            "conflicting options: --restart and --rm; drop one of them".into(),
        ));
    }
    Ok(())
}

/// Maps a runtime error to the engine's, keeping 126/127 for the command itself.
pub(crate) fn runtime_err(e: gcr_runtime::RuntimeError) -> EngineError {
    let code = e.exit_code();
    if code == 126 || code == 127 {
        EngineError::Exec {
            msg: e.to_string(),
            code,
        }
    } else {
        EngineError::Internal(e.to_string())
    }
}

/// The terminal size a container's pty starts with (see [`note_console_size`]).
static CONSOLE_SIZE: std::sync::Mutex<Option<(u16, u16)>> = std::sync::Mutex::new(None);

/// Notes the caller's terminal size (of stdin, else stdout) for the pty of the container
/// this process starts next: its command sees it from its first instruction (a supervised
/// start inherits it across fork). Nothing when neither is a terminal.
pub(crate) fn note_console_size() {
    let size = gcr_runtime::pty::window_size(0).or_else(|| gcr_runtime::pty::window_size(1));
    if let (Some(size), Ok(mut slot)) = (size, CONSOLE_SIZE.lock()) {
        *slot = Some(size);
    }
}

fn set_console_size(spec: &mut oci_spec::runtime::Spec) {
    if let Some(p) = spec.process_mut() {
        set_process_console_size(p);
    }
}

/// `process.consoleSize` from the noted terminal size (see [`note_console_size`]).
pub(crate) fn set_process_console_size(p: &mut oci_spec::runtime::Process) {
    let Some((rows, cols)) = CONSOLE_SIZE.lock().ok().and_then(|s| *s) else {
        return;
    };
    let size = oci_spec::runtime::BoxBuilder::default()
        .height(rows as u64)
        .width(cols as u64)
        .build()
        .ok();
    p.set_console_size(size);
}
