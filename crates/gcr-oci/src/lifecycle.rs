//! The container lifecycle behind runc's commands: create (held before execve), start,
//! run, kill, delete, pause/resume, pids and list.
//!
//! Every start holds the process right before execve ([`gcr_runtime::Extras::exec_hold`]):
//! `create` on `<root>/<id>/exec.fifo` (released by a later `start`), `run` on a pipe it
//! writes itself once the container is recorded. Between spawn and release gcr-runc moves
//! the process into its v1 devices group and writes `oomScoreAdj` and `linux.sysctl`, so
//! the user's program never runs without them. A failure at any step kills the process and removes the
//! cgroup and the state directory.

use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gcr_runtime::{Extras, Launch, Rootfs, Running, SeccompMode, Stdio};

use crate::state::{self, State, Status};
use crate::{bundle, cgroup, console, OciError};

/// The runc personality over one state root.
pub struct Oci {
    /// `--root`: one directory per container.
    pub root: PathBuf,
    /// `--systemd-cgroup`: `cgroupsPath` is `slice:prefix:name`.
    pub systemd_cgroup: bool,
}

/// `create` (and the creating half of `run`).
pub struct Create<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub preserve_fds: u32,
}

/// `run`.
pub struct Run<'a> {
    pub create: Create<'a>,
    pub detach: bool,
}

/// Removes a half-made container unless disarmed.
struct Undo {
    dir: Option<PathBuf>,
    pid: i32,
    cgroup: Option<gcr_runtime::cgroups::Cgroup>,
    devices: Option<PathBuf>,
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
    }
}

fn now_rfc3339() -> String {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    gcr_core::time::format_rfc3339(unix)
}

fn mkfifo(path: &Path) -> Result<OwnedFd, OciError> {
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
    fn state_dir(&self, id: &str) -> Result<PathBuf, OciError> {
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
    /// and the undo guard (armed).
    fn launch(
        &self,
        c: &Create,
        hold: OwnedFd,
        detached: bool,
        undo: &mut Undo,
    ) -> Result<(State, Running), OciError> {
        let b = bundle::load(c.bundle)?;
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
        let limits = cgroup::for_create(cgroup::resources(resources)?, v1);
        // Where its groups will be, before any exists: `delete --force` of a create killed
        // before it wrote its state finds them here.
        let intent = state::cgroup_intent(&self.root, c.id);
        let tmp = intent.with_extension("tmp");
        std::fs::write(&tmp, rel.as_os_str().as_bytes())
            .and_then(|()| std::fs::rename(&tmp, &intent))
            .map_err(|e| OciError::io("cannot write", &intent, e))?;
        let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
            Some(s) => SeccompMode::Custom(crate::seccomp::program(&self.root, s)?),
            None => SeccompMode::Unconfined,
        };
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
        // The devices group is ready before the process exists, which joins it with its
        // other groups in one burst (a late join on its own costs an RCU grace period).
        let devs = resources
            .and_then(|r| r.devices().as_deref())
            .unwrap_or(&[]);
        undo.devices = cgroup::devices(&rel, devs, v1)?;
        let extras = Extras {
            exec_hold: Some(hold),
            cgroup_path: Some(rel.clone()),
            preserve_fds: c.preserve_fds,
            exact_caps: true,
            join_also: undo.devices.iter().cloned().collect(),
        };
        let mut running = gcr_runtime::spawn_with(launch, extras)?;
        undo.pid = running.pid;
        undo.cgroup = running.cgroup.take();
        if let Some(adj) = process.and_then(|p| p.oom_score_adj()) {
            let p = format!("/proc/{}/oom_score_adj", running.pid);
            std::fs::write(&p, adj.to_string())
                .map_err(|e| OciError::io("cannot set process.oomScoreAdj in", p, e))?;
        }
        crate::sysctl::apply(&b.spec, running.pid)?;
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
            annotations: b.spec.annotations().clone().unwrap_or_default(),
        };
        st.save(&self.root)?;
        if let Some(p) = c.pid_file {
            write_pid_file(p, running.pid)?;
        }
        if let (true, Some(sock), Some(m)) = (detached, c.console_socket, &running.pty_master) {
            console::send_master(sock, m)?;
        }
        Ok((st, running))
    }

    /// `create`: the container exists, its process held before execve until `start`.
    pub fn create(&self, c: &Create) -> Result<State, OciError> {
        state::check_id(c.id)?;
        let dir = self.state_dir(c.id)?;
        let mut undo = Undo {
            dir: Some(dir),
            pid: 0,
            cgroup: None,
            devices: None,
        };
        let fifo = mkfifo(&state::fifo(&self.root, c.id))?;
        let (st, _running) = self.launch(c, fifo, true, &mut undo)?;
        // The process outlives this command (reparented to the subreaper or init).
        undo.pid = 0;
        undo.cgroup = None;
        undo.devices = None;
        undo.dir = None;
        Ok(st)
    }

    /// `start`: releases a created container's process.
    pub fn start(&self, id: &str) -> Result<(), OciError> {
        let st = State::load(&self.root, id)?;
        let status = st.status(&self.root);
        if status != Status::Created {
            return Err(OciError::BadState {
                id: id.to_string(),
                status: status.as_str(),
                what: "only a created container can be started",
            });
        }
        let path = state::fifo(&self.root, id);
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| OciError::Invalid("bad fifo path".into()))?;
        // SAFETY: open of a NUL-terminated path; the descriptor is owned below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(OciError::io(
                "the container's process is gone (cannot open its fifo)",
                path,
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: fd is fresh and ours.
        let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let _ = std::fs::remove_file(&path);
        f.write_all(b"0")
            .map_err(|e| OciError::io("cannot release the container through", path, e))
    }

    /// `run`: create and start; in the foreground, wait and return the exit code (then
    /// delete the container, as runc does).
    pub fn run(&self, r: &Run) -> Result<i32, OciError> {
        let c = &r.create;
        state::check_id(c.id)?;
        let dir = self.state_dir(c.id)?;
        let mut undo = Undo {
            dir: Some(dir),
            pid: 0,
            cgroup: None,
            devices: None,
        };
        let (hold_r, hold_w) = pipe()?;
        let (st, mut running) = self.launch(c, hold_r, r.detach, &mut undo)?;
        let forwarder = if r.detach {
            None
        } else {
            Some(gcr_runtime::signal_forwarder(
                running.pid,
                running.pty_master.is_some(),
            )?)
        };
        let mut w = std::fs::File::from(hold_w);
        w.write_all(b"0")
            .map_err(|e| OciError::io("cannot release the container", "pipe", e))?;
        drop(w);
        if r.detach {
            undo.pid = 0;
            undo.cgroup = None;
            undo.devices = None;
            undo.dir = None;
            return Ok(0);
        }
        let relay = running.pty_master.take().map(|m| {
            std::thread::spawn(move || {
                let stdin = std::io::stdin();
                let stdout = std::io::stdout();
                let _ = gcr_runtime::pty::relay(m, stdin.as_fd(), stdout.as_fd());
            })
        });
        let status = gcr_runtime::wait_exit(&running)?;
        drop(forwarder);
        undo.pid = 0;
        if let Some(t) = relay {
            let _ = t.join();
        }
        drop(st);
        drop(undo); // cgroup, devices group and state directory
        Ok(status.code())
    }

    /// `state`: the runtime-spec state document.
    pub fn state(&self, id: &str) -> Result<serde_json::Value, OciError> {
        let st = State::load(&self.root, id)?;
        let status = st.status(&self.root);
        Ok(st.document(status))
    }

    /// `kill`: `sig` to the first process, or with `all` to every process of the cgroup.
    pub fn kill(&self, id: &str, sig: i32, all: bool) -> Result<(), OciError> {
        let st = State::load(&self.root, id)?;
        let status = st.status(&self.root);
        if status == Status::Stopped {
            // As runc: `--all` still signals whatever is left in the cgroup and succeeds
            // (containerd's shim sends it after the exit); a plain kill fails with the words
            // the shim reads as "already finished".
            if all {
                if let Ok(cg) = cgroup::open(&st.cgroup) {
                    cg.kill_all(sig);
                }
                return Ok(());
            }
            return Err(OciError::BadState {
                id: id.to_string(),
                status: status.as_str(),
                what: "there is no process to signal (container not running)",
            });
        }
        if all {
            cgroup::open(&st.cgroup)?.kill_all(sig);
            return Ok(());
        }
        // SAFETY: kill(2) with a pid checked alive (same start time) just above.
        if unsafe { libc::kill(st.pid, sig) } != 0 {
            return Err(OciError::io(
                "cannot signal the container process",
                format!("/proc/{}", st.pid),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// `delete`: removes a stopped or created container (`force`: any), with its cgroup and
    /// state directory.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), OciError> {
        let st = match State::load(&self.root, id) {
            Ok(s) => s,
            Err(OciError::NotFound(_)) if force => {
                // A create killed before it wrote its state: the directory and perhaps its
                // groups, with a process held in them, are left.
                let d = state::dir(&self.root, id);
                if let Ok(rel) = std::fs::read(state::cgroup_intent(&self.root, id)) {
                    let rel = PathBuf::from(std::ffi::OsString::from_vec(rel));
                    cgroup::remove_leftovers(&rel);
                }
                let _ = std::fs::remove_dir_all(&d);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let status = st.status(&self.root);
        let cg = cgroup::open(&st.cgroup)?;
        match status {
            Status::Stopped => {}
            Status::Running | Status::Paused if !force => {
                return Err(OciError::BadState {
                    id: id.to_string(),
                    status: status.as_str(),
                    what: "stop it first or delete it with --force",
                })
            }
            _ => {
                cg.kill_all(libc::SIGKILL);
                // SAFETY: kill(2) of the container's pid, checked alive above.
                unsafe { libc::kill(st.pid, libc::SIGKILL) };
                let deadline = Instant::now() + Duration::from_secs(10);
                while st.alive() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        cg.destroy().map_err(|e| OciError::Cgroup(e.to_string()))?;
        if let Some(d) = &st.devices_cgroup {
            cgroup::remove_devices(d);
        }
        let d = state::dir(&self.root, id);
        std::fs::remove_dir_all(&d).map_err(|e| OciError::io("cannot remove", d, e))
    }

    /// `update`: new memory, cpu and pids limits for a live container (device rules stay
    /// as created, as with runc); anything else set in `r` is refused by name.
    pub fn update(&self, id: &str, r: &oci_spec::runtime::LinuxResources) -> Result<(), OciError> {
        let st = State::load(&self.root, id)?;
        let status = st.status(&self.root);
        if status == Status::Stopped {
            return Err(OciError::BadState {
                id: id.to_string(),
                status: status.as_str(),
                what: "there is nothing to update (container not running)",
            });
        }
        let res = cgroup::resources(Some(r))?;
        cgroup::open(&st.cgroup)?
            .update(&res)
            .map_err(|e| OciError::Cgroup(e.to_string()))
    }

    /// `pause` (`freeze = true`) and `resume`.
    pub fn freeze(&self, id: &str, freeze: bool) -> Result<(), OciError> {
        let st = State::load(&self.root, id)?;
        let status = st.status(&self.root);
        let want = if freeze {
            Status::Running
        } else {
            Status::Paused
        };
        if status != want {
            return Err(OciError::BadState {
                id: id.to_string(),
                status: status.as_str(),
                what: if freeze {
                    "only a running container can be paused"
                } else {
                    "only a paused container can be resumed"
                },
            });
        }
        let cg = cgroup::open(&st.cgroup)?;
        let r = if freeze { cg.freeze() } else { cg.thaw() };
        r.map_err(|e| OciError::Cgroup(e.to_string()))
    }

    /// `ps`: the pids in the container's cgroup.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, OciError> {
        let st = State::load(&self.root, id)?;
        Ok(cgroup::open(&st.cgroup)?.procs())
    }

    /// `list`: every container with its status.
    pub fn list(&self) -> Result<Vec<(State, Status)>, OciError> {
        let mut out = Vec::new();
        for id in state::list(&self.root)? {
            if let Ok(st) = State::load(&self.root, &id) {
                let s = st.status(&self.root);
                out.push((st, s));
            }
        }
        Ok(out)
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
