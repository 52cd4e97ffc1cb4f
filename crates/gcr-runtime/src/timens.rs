//! A new time namespace with the spec's `linux.timeOffsets`. The process that unshares
//! CLONE_NEWTIME stays in its own; only its later children (`time_for_children`) start in
//! the new one, and the offsets can be written only while no process is in it. So the
//! container process, single-threaded between clone and exec, unshares, writes
//! `/proc/self/timens_offsets`, then enters the namespace itself with setns on
//! `/proc/self/ns/time_for_children` — before anything of the container runs.

use std::os::fd::RawFd;

use oci_spec::runtime::Spec;

use crate::error::Stage;
use crate::sys::{child_fail, errno};
use crate::RuntimeError;

/// The clocks a time namespace can shift.
const CLOCKS: [&str; 2] = ["monotonic", "boottime"];

/// A time namespace to make in the child, prepared before clone.
pub(crate) struct TimeNs {
    /// What goes to `timens_offsets` (`<clock> <secs> <nanosecs>` lines), may be empty.
    offsets: Vec<u8>,
}

impl TimeNs {
    /// The offsets of `spec` (none: the new namespace shows the host's clocks).
    pub(crate) fn prepare(spec: &Spec) -> Result<TimeNs, RuntimeError> {
        let mut offsets = Vec::new();
        let given = spec
            .linux()
            .as_ref()
            .and_then(|l| l.time_offsets().as_ref());
        let mut clocks: Vec<_> = given.into_iter().flatten().collect();
        clocks.sort_by(|a, b| a.0.cmp(b.0));
        for (clock, off) in clocks {
            if !CLOCKS.contains(&clock.as_str()) {
                return Err(RuntimeError::InvalidSpec(format!(
                    "linux.timeOffsets has clock {clock:?}; only \"monotonic\" and \"boottime\" can be offset"
                )));
            }
            let nanos = off.nanosecs().unwrap_or(0);
            if nanos >= 1_000_000_000 {
                return Err(RuntimeError::InvalidSpec(format!(
                    "linux.timeOffsets.{clock}.nanosecs {nanos} must be below 1000000000"
                )));
            }
            let line = format!("{clock} {} {nanos}\n", off.secs().unwrap_or(0));
            offsets.extend_from_slice(line.as_bytes());
        }
        Ok(TimeNs { offsets })
    }

    /// Child side: makes the namespace, sets its offsets and enters it.
    pub(crate) fn enter(&self, errfd: RawFd) {
        let fail = || child_fail(errfd, Stage::Namespace as u32, errno());
        // SAFETY: unshare/open/write/setns/close on static paths, a buffer prepared by the
        // parent and descriptors opened here.
        unsafe {
            if libc::unshare(libc::CLONE_NEWTIME) != 0 {
                fail();
            }
            if !self.offsets.is_empty() {
                let fd = libc::open(
                    c"/proc/self/timens_offsets".as_ptr(),
                    libc::O_WRONLY | libc::O_CLOEXEC,
                );
                if fd < 0 {
                    fail();
                }
                let n = libc::write(fd, self.offsets.as_ptr().cast(), self.offsets.len());
                if n != self.offsets.len() as isize {
                    fail();
                }
                libc::close(fd);
            }
            let fd = libc::open(
                c"/proc/self/ns/time_for_children".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            );
            if fd < 0 || libc::setns(fd, libc::CLONE_NEWTIME) != 0 {
                fail();
            }
            libc::close(fd);
        }
    }
}
