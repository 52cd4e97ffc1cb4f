//! Making a container: its state directory, the spawn of its process held before execve
//! (with the config's hooks wired in, see [`crate::hooks`]), and the guard that undoes a
//! create that failed half-way.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use gcr_runtime::hooks::ContainerHooks;
use gcr_runtime::{Extras, Launch, Rootfs, Running, SeccompMode, Stdio};
use oci_spec::runtime::Hooks;

use crate::hooks::{self, Doc};
use crate::lifecycle::Warn;
use crate::state::{self, State};
use crate::{bundle, cgroup, console, Create, Oci, OciError};

/// How the exec report of a container with startContainer or poststart hooks is made.
pub(crate) enum Report {
    /// An anonymous pipe (`run`, which waits itself).
    Pipe,
    /// `<root>/<id>/exec.report` (`create`; `start` reads it).
    Fifo,
}

/// Removes a half-made container unless disarmed, then runs its poststop hooks (as runc
/// does for a create that failed).
#[derive(Default)]
pub(crate) struct Undo {
    pub(crate) dir: Option<PathBuf>,
    pub(crate) pid: i32,
    pub(crate) cgroup: Option<gcr_runtime::cgroups::Cgroup>,
    pub(crate) devices: Option<PathBuf>,
    pub(crate) poststop: Option<(Hooks, Doc, Warn)>,
}

impl Undo {
    pub(crate) fn new(dir: PathBuf) -> Undo {
        let mut u = Undo::default();
        u.dir = Some(dir);
        u
    }

    /// The container lives on: nothing to undo.
    pub(crate) fn disarm(&mut self) {
        self.dir = None;
        self.pid = 0;
        self.cgroup = None;
        self.devices = None;
        self.poststop = None;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if self.pid > 0 {
            // SAFETY: kill and waitpid of our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), libc::__WALL);
            }
        }
        if let Some(c) = self.cgroup.take() {
            let _ = c.destroy();
        }
        if let Some(d) = self.devices.take() {
            cgroup::remove_devices(&d);
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
        if let Some((h, doc, warn)) = self.poststop.take() {
            hooks::run_warn(Some(&h), "poststop", &doc.json("stopped", 0), &*warn);
        }
    }
}

pub(crate) fn now_rfc3339() -> String {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    gcr_core::time::format_rfc3339(unix)
}

pub(crate) fn mkfifo(path: &Path) -> Result<OwnedFd, OciError> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| OciError::Invalid(format!("{} contains a NUL byte", path.display())))?;
    // SAFETY: mkfifo/open on a NUL-terminated path; the descriptor is owned below.
    unsafe {
        if libc::mkfifo(c.as_ptr(), 0o600) != 0 {
            return Err(OciError::io(
                "cannot make",
                path,
                std::io::Error::last_os_error(),
            ));
        }
        // Read-write: opening does not wait for a writer, and the held process's read
        // blocks until `start` writes.
        let fd = libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(OciError::io(
                "cannot open",
                path,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), OciError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, pid.to_string()).map_err(|e| OciError::io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| OciError::io("cannot write the pid file", path, e))
}

impl Oci {
    pub(crate) fn state_dir(&self, id: &str) -> Result<PathBuf, OciError> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| OciError::io("cannot create the state root", &self.root, e))?;
        let d = state::dir(&self.root, id);
        match std::fs::create_dir(&d) {
            Ok(()) => Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(OciError::Exists(id.to_string()))
            }
            Err(e) => Err(OciError::io("cannot create", d, e)),
        }
    }

    /// Spawns the container held before execve on `hold`; returns its state, the process
    /// and, for a container with startContainer or poststart hooks, what tells when it
    /// exec'd (see [`hooks::await_exec`]). `report` makes that channel: a pipe (run) or the
    /// container's exec.report fifo (create).
    pub(crate) fn launch(
        &self,
        c: &Create,
        hold: OwnedFd,
        detached: bool,
        undo: &mut Undo,
        report: Report,
    ) -> Result<(State, Running, Option<OwnedFd>), OciError> {
        let b = bundle::load(c.bundle)?;
        let spec_hooks = b.spec.hooks().clone();
        let doc = Doc {
            id: c.id.to_string(),
            bundle: b.dir.clone(),
            annotations: b.spec.annotations().clone().unwrap_or_default(),
        };
        if let Some(h) = &spec_hooks {
            undo.poststop = Some((h.clone(), doc.clone(), self.warn.clone()));
        }
        let process = b.spec.process().as_ref();
        let terminal = process.and_then(|p| p.terminal()).unwrap_or(false);
        if terminal && detached && c.console_socket.is_none() {
            return Err(OciError::Invalid(
                "process.terminal is true but no --console-socket was given for a detached container; pass one or set terminal to false".into(),
            ));
        }
        let linux = b.spec.linux().as_ref();
        let rel = cgroup::path_for(
            linux.and_then(|l| l.cgroups_path().as_deref()),
            c.id,
            self.systemd_cgroup,
        )?;
        let resources = linux.and_then(|l| l.resources().as_ref());
        let v1 = cgroup::is_v1()?;
        let mut limits = cgroup::for_create(cgroup::resources(resources)?, v1);
        let devs = resources
            .and_then(|r| r.devices().as_deref())
            .unwrap_or(&[]);
        if !v1 && !devs.is_empty() {
            // v2: the group gets its device program before the process joins it.
            limits.devices = Some(cgroup::device_rules(devs)?);
        }
        // Where its groups will be, before any exists: `delete --force` of a create killed
        // before it wrote its state finds them here.
        let intent = state::cgroup_intent(&self.root, c.id);
        let tmp = intent.with_extension("tmp");
        std::fs::write(&tmp, rel.as_os_str().as_bytes())
            .and_then(|()| std::fs::rename(&tmp, &intent))
            .map_err(|e| OciError::io("cannot write", &intent, e))?;
        let profile = linux.and_then(|l| l.seccomp().as_ref());
        let seccomp = match profile {
            Some(s) => SeccompMode::Custom(crate::seccomp::program(&self.root, s)?),
            None => SeccompMode::Unconfined,
        };
        // SCMP_ACT_NOTIFY: where the listener goes, and the agent's metadata.
        let listener = profile
            .filter(|s| crate::seccomp::notifies(s))
            .and_then(|s| {
                let path = s.listener_path().clone()?;
                Some((path, s.listener_metadata().clone()))
            });
        let launch = Launch {
            id: c.id,
            spec: &b.spec,
            rootfs: Rootfs::Path(b.rootfs.clone()),
            stdio: if terminal { Stdio::Pty } else { Stdio::Inherit },
            seccomp,
            init: false,
            cgroup_resources: Some(limits),
            network: bundle::network(&b.spec),
            while_starting: None,
            gate: false,
            secrets: Vec::new(),
        };
        // The v1 devices group is ready before the process exists, which joins it with its
        // other groups in one burst (a late join on its own costs an RCU grace period).
        undo.devices = cgroup::devices(&rel, devs, v1)?;
        let (container_hooks, exec_report) =
            self.container_hooks(c.id, spec_hooks.as_ref(), &doc, report)?;
        let extras = Extras {
            exec_hold: Some(hold),
            cgroup_path: Some(rel.clone()),
            preserve_fds: c.preserve_fds,
            exact_caps: true,
            join_also: undo.devices.iter().cloned().collect(),
            hooks: container_hooks,
            tmpfs_keep_mode: true,
            seccomp_notify: listener.is_some(),
        };
        let mut running = gcr_runtime::spawn_with(launch, extras)?;
        undo.pid = running.pid;
        undo.cgroup = running.cgroup.take();
        let start_time = state::proc_stat(running.pid)
            .map(|(_, t)| t)
            .ok_or_else(|| OciError::Invalid("the container process died during setup".into()))?;
        let st = State {
            id: c.id.to_string(),
            pid: running.pid,
            start_time,
            bundle: b.dir.clone(),
            rootfs: b.rootfs.clone(),
            created: now_rfc3339(),
            cgroup: rel,
            devices_cgroup: undo.devices.clone(),
            annotations: doc.annotations.clone(),
            hooks: spec_hooks,
        };
        st.save(&self.root)?;
        if let Some((path, meta)) = &listener {
            let fd = running.seccomp_listener.take().ok_or_else(|| {
                OciError::Invalid("the container process sent no seccomp listener".into())
            })?;
            let msg = crate::notify::state_json(&doc, "creating", running.pid, meta.as_deref());
            crate::notify::send(path, &msg, &fd)?;
        }
        if let Some(p) = c.pid_file {
            write_pid_file(p, running.pid)?;
        }
        if let (true, Some(sock), Some(m)) = (detached, c.console_socket, &running.pty_master) {
            console::send_master(sock, m)?;
        }
        Ok((st, running, exec_report))
    }

    /// The hooks gcr-runtime runs or calls back (createRuntime, createContainer,
    /// startContainer), and the read end of the exec report when one is needed.
    fn container_hooks(
        &self,
        id: &str,
        h: Option<&Hooks>,
        doc: &Doc,
        report: Report,
    ) -> Result<(Option<ContainerHooks>, Option<OwnedFd>), OciError> {
        let Some(h) = h else { return Ok((None, None)) };
        let start_container = hooks::for_runtime(Some(h), "startContainer");
        let needs_report =
            !start_container.is_empty() || !hooks::of(Some(h), "poststart").is_empty();
        let (r, w) = match (needs_report, report) {
            (false, _) => (None, None),
            (true, Report::Pipe) => {
                let (r, w) = pipe()?;
                (Some(r), Some(w))
            }
            // The process keeps it open read-write until execve; `start` opens it to read.
            (true, Report::Fifo) => (None, Some(mkfifo(&state::exec_report(&self.root, id))?)),
        };
        let (d1, d2, hk) = (doc.clone(), doc.clone(), h.clone());
        Ok((
            Some(ContainerHooks {
                create_container: hooks::for_runtime(Some(h), "createContainer"),
                start_container,
                create_runtime: Box::new(move |pid| {
                    hooks::run(Some(&hk), "createRuntime", &d1.json("creating", pid))
                }),
                state: Box::new(move |pid, status| d2.json(status, pid)),
                start_report: w,
            }),
            r,
        ))
    }
}

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), OciError> {
    let mut fds = [0; 2];
    // SAFETY: fds is a two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(OciError::io(
            "cannot make a pipe",
            "pipe",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: pipe2 returned two fresh descriptors.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
