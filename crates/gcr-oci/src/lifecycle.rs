//! The container lifecycle behind runc's commands: create (held before execve), start,
//! run, kill, delete, pause/resume, pids and list.
//!
//! Every start holds the process right before execve ([`gcr_runtime::Extras::exec_hold`]):
//! `create` on `<root>/<id>/exec.fifo` (released by a later `start`), `run` on a pipe it
//! writes itself once the container is recorded. Between spawn and release gcr-runc moves
//! the process into its v1 devices group and writes `oomScoreAdj` (`linux.sysctl` is
//! written by the process itself before pivot_root, see gcr-runtime), so the user's
//! program never runs without them. A failure at any step kills the process and removes the
//! cgroup and the state directory.

use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::hooks::{self, Doc};
use crate::launch::{mkfifo, pipe, Report, Undo};
use crate::state::{self, State, Status};
use crate::{cgroup, OciError};

/// Where warnings go (a poststart or poststop hook that failed): the CLI logs them.
pub type Warn = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// The runc personality over one state root.
pub struct Oci {
    /// `--root`: one directory per container.
    pub root: PathBuf,
    /// `--systemd-cgroup`: `cgroupsPath` is `slice:prefix:name`.
    pub systemd_cgroup: bool,
    pub warn: Warn,
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

impl Oci {
    /// `create`: the container exists, its process held before execve until `start`.
    pub fn create(&self, c: &Create) -> Result<State, OciError> {
        state::check_id(c.id)?;
        let mut undo = Undo::new(self.state_dir(c.id)?);
        let fifo = mkfifo(&state::fifo(&self.root, c.id))?;
        let (st, _running, _) = self.launch(c, fifo, true, &mut undo, Report::Fifo)?;
        // The process outlives this command (reparented to the subreaper or init).
        undo.disarm();
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
        // Opened before the release: its writer (the process) is there, so it reads EOF
        // once the process exec'd or exited.
        let report = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(state::exec_report(&self.root, id))
        {
            Ok(f) => Some(OwnedFd::from(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(OciError::io(
                    "cannot open",
                    state::exec_report(&self.root, id),
                    e,
                ))
            }
        };
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
            .map_err(|e| OciError::io("cannot release the container through", path, e))?;
        if let Some(r) = report {
            let p = state::exec_report(&self.root, id);
            let done = hooks::await_exec(r, &p);
            let _ = std::fs::remove_file(&p);
            done?;
            self.poststart(&st);
        }
        Ok(())
    }

    /// The poststart hooks of a container whose program runs now (failures are warnings).
    fn poststart(&self, st: &State) {
        let doc = Doc::of(st).json(Status::Running.as_str(), st.pid);
        hooks::run_warn(st.hooks.as_ref(), "poststart", &doc, &*self.warn);
    }

    /// The poststop hooks of a container just removed (failures are warnings).
    fn poststop(&self, st: &State) {
        let doc = Doc::of(st).json(Status::Stopped.as_str(), 0);
        hooks::run_warn(st.hooks.as_ref(), "poststop", &doc, &*self.warn);
    }

    /// `run`: create and start; in the foreground, wait and return the exit code (then
    /// delete the container, as runc does).
    pub fn run(&self, r: &Run) -> Result<i32, OciError> {
        let c = &r.create;
        state::check_id(c.id)?;
        let mut undo = Undo::new(self.state_dir(c.id)?);
        let (hold_r, hold_w) = pipe()?;
        let (st, mut running, report) =
            self.launch(c, hold_r, r.detach, &mut undo, Report::Pipe)?;
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
        if let Some(rep) = report {
            hooks::await_exec(rep, Path::new("the exec report pipe"))?;
            self.poststart(&st);
        }
        if r.detach {
            undo.disarm();
            return Ok(0);
        }
        let relay = running.pty_master.take().map(|m| {
            std::thread::spawn(move || {
                let stdin = std::io::stdin();
                let stdout = std::io::stdout();
                let _ = gcr_runtime::pty::relay(m, Some(stdin.as_fd()), stdout.as_fd());
            })
        });
        let status = gcr_runtime::wait_exit(&running)?;
        drop(forwarder);
        undo.pid = 0;
        if let Some(t) = relay {
            let _ = t.join();
        }
        drop(st);
        drop(undo); // cgroup, devices group, state directory, then poststop hooks
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
        std::fs::remove_dir_all(&d).map_err(|e| OciError::io("cannot remove", d, e))?;
        self.poststop(&st);
        Ok(())
    }

    /// The state of a container that has not stopped; else `BadState` saying `what`.
    pub(crate) fn live(&self, id: &str, what: &'static str) -> Result<State, OciError> {
        let st = State::load(&self.root, id)?;
        let status = st.status(&self.root);
        if status == Status::Stopped {
            return Err(OciError::BadState {
                id: id.to_string(),
                status: status.as_str(),
                what,
            });
        }
        Ok(st)
    }

    /// `update`: new memory, cpu and pids limits for a live container (device rules stay
    /// as created, as with runc); anything else set in `r` is refused by name.
    pub fn update(&self, id: &str, r: &oci_spec::runtime::LinuxResources) -> Result<(), OciError> {
        let st = self.live(id, "there is nothing to update (container not running)")?;
        let extra = [
            (r.block_io().is_some(), "linux.resources.blockIO"),
            (
                r.hugepage_limits().is_some(),
                "linux.resources.hugepageLimits",
            ),
            (
                r.memory().as_ref().is_some_and(|m| {
                    m.reservation().is_some()
                        || m.swappiness().is_some()
                        || m.disable_oom_killer().is_some()
                }),
                "linux.resources.memory reservation/swappiness/disableOOMKiller",
            ),
        ];
        if let Some((_, f)) = extra.iter().find(|(set, _)| *set) {
            return Err(OciError::unsupported(&format!("{f} in update")));
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
