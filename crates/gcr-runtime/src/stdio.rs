//! Standard streams of a container process: inherit, given descriptors, or a new pty whose
//! master goes back to the caller. Prepared in the parent, wired up in the child.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::Stage;
use crate::sys::{child_fail, errno};
use crate::{RuntimeError, Stdio};

/// Prepared stdio: the descriptors the child puts on 0, 1 and 2.
pub(crate) struct StdioPlan {
    fds: Option<[OwnedFd; 3]>,
    tty: bool,
    pub(crate) master: Option<OwnedFd>,
}

fn devnull() -> Result<OwnedFd, RuntimeError> {
    // SAFETY: open of a static path; the descriptor is checked and then owned.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(RuntimeError::sys("opening /dev/null"));
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl StdioPlan {
    pub(crate) fn prepare(stdio: Stdio) -> Result<StdioPlan, RuntimeError> {
        Ok(match stdio {
            Stdio::Inherit => StdioPlan {
                fds: None,
                tty: false,
                master: None,
            },
            Stdio::Fds {
                stdin,
                stdout,
                stderr,
            } => {
                let stdin = match stdin {
                    Some(f) => f,
                    None => devnull()?,
                };
                StdioPlan {
                    fds: Some([stdin, stdout, stderr]),
                    tty: false,
                    master: None,
                }
            }
            Stdio::Pty => {
                let (master, slave) = crate::pty::open_pty()?;
                let a = slave.try_clone().map_err(|e| RuntimeError::Sys {
                    what: "dup of the pty",
                    source: e,
                })?;
                let b = slave.try_clone().map_err(|e| RuntimeError::Sys {
                    what: "dup of the pty",
                    source: e,
                })?;
                StdioPlan {
                    fds: Some([slave, a, b]),
                    tty: true,
                    master: Some(master),
                }
            }
        })
    }

    /// Child side: new session, controlling terminal, descriptors onto 0, 1, 2.
    pub(crate) fn apply(&self, errfd: RawFd) {
        // SAFETY: setsid/ioctl/dup2 on descriptors the parent prepared.
        unsafe {
            libc::setsid();
            let Some(fds) = &self.fds else { return };
            // Move sources above 2 first so dup2 cannot clobber a source we still need.
            let mut raw = [0; 3];
            for (i, f) in fds.iter().enumerate() {
                raw[i] = libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3);
                if raw[i] < 0 {
                    child_fail(errfd, Stage::Stdio as u32, errno());
                }
            }
            if self.tty && libc::ioctl(raw[0], libc::TIOCSCTTY, 0) != 0 {
                child_fail(errfd, Stage::Stdio as u32, errno());
            }
            for (i, r) in raw.iter().enumerate() {
                if libc::dup2(*r, i as i32) < 0 {
                    child_fail(errfd, Stage::Stdio as u32, errno());
                }
            }
        }
    }
}

impl StdioPlan {
    /// Descriptors a helper process must keep open until the final process takes them.
    pub(crate) fn raw_fds(&self) -> Vec<RawFd> {
        self.fds
            .as_ref()
            .map(|f| f.iter().map(|f| f.as_raw_fd()).collect())
            .unwrap_or_default()
    }
}
