//! The v1 cgroup join of a container start, made while the parent creates the groups
//! (the child waits for it before pivot_root): the child writes "0" to each group's
//! `tasks` (no global lock, unlike a pid written to cgroup.procs), or, for a child in a
//! user namespace (which may not write the host's files), the parent moves it.

use std::os::fd::RawFd;

use crate::error::Stage;
use crate::sys::{child_fail, errno};
use crate::RuntimeError;

/// Child side of a v1 join made while the parent created the groups: reads the `tasks`
/// paths (one per line) and writes "0" to each, which moves this single-threaded process
/// without the global lock a pid write to cgroup.procs takes.
pub(crate) fn child(errfd: RawFd, fd: RawFd) {
    let mut buf = [0u8; 4096];
    let mut len = 0;
    // SAFETY: reads into the unused tail of a stack buffer; open/write/close on paths
    // NUL-terminated in that buffer.
    unsafe {
        while len < buf.len() {
            let n = libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len);
            if n <= 0 {
                break;
            }
            len += n as usize;
        }
        libc::close(fd);
        if len == 0 {
            libc::_exit(125); // the parent failed and reports it
        }
        if buf[len - 1] != b'\n' {
            child_fail(errfd, Stage::Cgroup as u32, libc::E2BIG);
        }
        let mut start = 0;
        for i in 0..len {
            if buf[i] != b'\n' {
                continue;
            }
            buf[i] = 0;
            if i == start {
                start = i + 1; // an empty line: the release of a gated start, no group
                continue;
            }
            let t = libc::open(
                buf[start..].as_ptr().cast(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
            if t < 0 || libc::write(t, c"0".as_ptr().cast(), 1) != 1 {
                child_fail(errfd, Stage::Cgroup as u32, errno());
            }
            libc::close(t);
            start = i + 1;
        }
    }
}

/// Moves the process `pid` into each v1 group directory of `dirs` (a start with a new user
/// namespace, see [`crate::userns`]).
pub(crate) fn from_parent<'p>(
    pid: i32,
    dirs: impl Iterator<Item = &'p std::path::Path>,
) -> Result<(), RuntimeError> {
    for d in dirs {
        let f = d.join("cgroup.procs");
        std::fs::write(&f, pid.to_string()).map_err(|e| {
            RuntimeError::Cgroup(format!(
                "cannot move the container into {}: {e}",
                f.display()
            ))
        })?;
    }
    Ok(())
}
