//! User namespaces (`linux.uidMappings`/`gidMappings`, runc's model for root).
//!
//! A new user namespace is made by the container's clone3 (CLONE_NEWUSER with the other
//! CLONE_NEW* flags, so every new namespace is owned by it). The child then waits on a
//! pipe of its own while the runtime side (the parent, root on the host) writes its
//! `uid_map` and `gid_map`; `setgroups` keeps its default `allow`, as runc run by root.
//! The child then becomes root of the namespace (setresgid, setgroups, setresuid to 0, as
//! runc's nsexec), so what it creates afterwards (the /dev tmpfs, missing mount points) is
//! owned by the mapped root, and goes on with the usual setup. Nothing here runs for a
//! container without a user namespace.
//!
//! A user namespace given by path is joined by a short-lived helper (forked, so
//! single-threaded, as setns of a user namespace requires) that clones the container's
//! process from inside it with CLONE_PARENT: its new namespaces then belong to that user
//! namespace and it is still the runtime's own child. The process becomes root there too.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::error::Stage;
use crate::sys::{self, child_fail, errno, CloneArgs};
use crate::RuntimeError;

/// The kernel's limit on lines of one id map.
const MAX_LINES: usize = 340;

/// The mapping work of one start with a new user namespace, prepared before clone.
pub(crate) struct UsernsPlan {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    /// Child end: one byte once the maps are written (EOF: the runtime side failed).
    sync_r: OwnedFd,
    sync_w: OwnedFd,
}

/// The id map file text of `maps` ("containerID hostID size" lines), checked.
fn map_text(maps: Option<&Vec<LinuxIdMapping>>, field: &str) -> Result<Vec<u8>, RuntimeError> {
    let maps = maps.map(|v| v.as_slice()).unwrap_or(&[]);
    if maps.is_empty() {
        return Err(RuntimeError::InvalidSpec(format!(
            "the user namespace has no {field}; add at least one mapping such as {{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}}"
        )));
    }
    if maps.len() > MAX_LINES {
        return Err(RuntimeError::InvalidSpec(format!(
            "{field} has {} entries, more than the kernel's {MAX_LINES}; merge adjacent ranges",
            maps.len()
        )));
    }
    let mut text = String::new();
    for m in maps {
        let fits = |start: u32| u64::from(start) + u64::from(m.size()) <= u64::from(u32::MAX);
        if m.size() == 0 || !fits(m.container_id()) || !fits(m.host_id()) {
            return Err(RuntimeError::InvalidSpec(format!(
                "{field} entry {{containerID {}, hostID {}, size {}}} is empty or runs past the last id; give a size from 1 that fits",
                m.container_id(),
                m.host_id(),
                m.size()
            )));
        }
        text.push_str(&format!(
            "{} {} {}\n",
            m.container_id(),
            m.host_id(),
            m.size()
        ));
    }
    Ok(text.into_bytes())
}

impl UsernsPlan {
    /// The plan of a spec whose namespaces include a new user namespace (None otherwise).
    /// Also refuses mappings given without any user namespace.
    pub(crate) fn prepare(
        spec: &Spec,
        new_userns: bool,
    ) -> Result<Option<UsernsPlan>, RuntimeError> {
        let linux = spec.linux().as_ref();
        if !new_userns {
            let mapped = linux.is_some_and(|l| {
                l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
                    || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            });
            if mapped && !wanted(spec) {
                return Err(RuntimeError::InvalidSpec(
                    "linux.uidMappings/gidMappings are set but linux.namespaces has no user namespace; add {\"type\": \"user\"} or remove the mappings".into(),
                ));
            }
            return Ok(None);
        }
        let uid_map = map_text(
            linux.and_then(|l| l.uid_mappings().as_ref()),
            "linux.uidMappings",
        )?;
        let gid_map = map_text(
            linux.and_then(|l| l.gid_mappings().as_ref()),
            "linux.gidMappings",
        )?;
        let (sync_r, sync_w) = sys::pipe()?;
        Ok(Some(UsernsPlan {
            uid_map,
            gid_map,
            sync_r,
            sync_w,
        }))
    }

    /// The descriptor the child keeps.
    pub(crate) fn keep_fd(&self) -> RawFd {
        self.sync_r.as_raw_fd()
    }

    /// Runtime side, right after clone: writes the child's maps, then releases it. On an
    /// error the child sees EOF and exits; the caller kills and reaps it.
    pub(crate) fn map_child(self, pid: i32) -> Result<(), RuntimeError> {
        drop(self.sync_r);
        for (file, text, field) in [
            ("uid_map", &self.uid_map, "linux.uidMappings"),
            ("gid_map", &self.gid_map, "linux.gidMappings"),
        ] {
            let path = format!("/proc/{pid}/{file}");
            // One write: the kernel takes a map in a single write only.
            std::fs::write(&path, text).map_err(|e| {
                RuntimeError::InvalidSpec(format!(
                    "cannot write {field} to {path} ({e}); check that the ranges do not overlap"
                ))
            })?;
        }
        // SAFETY: a one-byte write from a static buffer to our own pipe.
        if unsafe { libc::write(self.sync_w.as_raw_fd(), c"u".as_ptr().cast(), 1) } != 1 {
            return Err(RuntimeError::sys(
                "releasing the container after its id maps",
            ));
        }
        Ok(())
    }
}

/// Child side of a new user namespace: waits until the runtime side has written the maps
/// (exits quietly on EOF, the runtime side reports), then becomes the namespace's root.
pub(crate) fn child_wait(errfd: RawFd, sync: RawFd) {
    let mut b = [0u8; 1];
    // SAFETY: read into a stack byte, close of our own descriptor, _exit.
    unsafe {
        loop {
            let n = libc::read(sync, b.as_mut_ptr().cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            libc::_exit(125);
        }
        libc::close(sync);
    }
    become_root(errfd);
}

/// Child side: uid and gid 0 of the (new or joined) user namespace, no supplementary
/// groups. Raw system calls (see `ProcessPlan::finish`).
pub(crate) fn become_root(errfd: RawFd) {
    // SAFETY: set*id system calls with integer arguments and an empty group list.
    unsafe {
        if libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0
            || libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
            || libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0
        {
            child_fail(errfd, Stage::User as u32, errno());
        }
    }
}

/// Whether the spec asks for a user namespace (new or joined).
pub(crate) fn wanted(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        })
}

/// Clones the container process (`args`, whose CLONE_PIDFD is dropped: the caller opens a
/// pidfd itself) inside the user namespace `user` through a helper, see the module notes.
/// The new process runs `child`. Returns its pid, or -1 with errno set.
///
/// # Safety
/// As [`sys::clone3`]: `child` only makes system calls and ends in execve or _exit.
pub(crate) unsafe fn clone_joined(user: &OwnedFd, args: &CloneArgs, child: &dyn Fn()) -> i32 {
    let mut fds = [0; 2];
    // SAFETY: pipe2 into a two-element array; clone3 of a helper that only makes system
    // calls (setns, clone3, write) and ends in _exit; the container process runs `child`.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return -1;
        }
        let mut helper_args = CloneArgs {
            exit_signal: libc::SIGCHLD as u64,
            ..Default::default()
        };
        let helper = sys::clone3(&mut helper_args) as i32;
        if helper == 0 {
            // Not dumpable before it enters the container's user namespace, whose root
            // could otherwise ptrace it (and its copy, the container process, until that
            // says the same in child_main).
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
            libc::close(fds[0]);
            let mut inner = CloneArgs {
                flags: (args.flags & !sys::CLONE_PIDFD) | libc::CLONE_PARENT as u64,
                cgroup: args.cgroup,
                ..Default::default()
            };
            let pid = if libc::setns(user.as_raw_fd(), libc::CLONE_NEWUSER) != 0 {
                -errno()
            } else {
                match sys::clone3(&mut inner) as i32 {
                    0 => {
                        child();
                        libc::_exit(125)
                    }
                    p if p < 0 => -errno(),
                    p => p,
                }
            };
            let b = pid.to_ne_bytes();
            libc::write(fds[1], b.as_ptr().cast(), 4);
            libc::_exit(0);
        }
        libc::close(fds[1]);
        if helper < 0 {
            let e = errno();
            libc::close(fds[0]);
            *libc::__errno_location() = e;
            return -1;
        }
        let mut b = [0u8; 4];
        let n = libc::read(fds[0], b.as_mut_ptr().cast(), 4);
        libc::close(fds[0]);
        let _ = sys::waitpid(helper);
        let pid = if n == 4 {
            i32::from_ne_bytes(b)
        } else {
            -libc::ECHILD
        };
        if pid < 0 {
            *libc::__errno_location() = -pid;
            return -1;
        }
        pid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        let mut base = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        });
        base["linux"] = v;
        serde_json::from_value(base).unwrap()
    }

    fn err(r: Result<Option<UsernsPlan>, RuntimeError>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn maps_are_written_as_the_kernel_reads_them() {
        let m = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536},
                                   {"containerID": 65536, "hostID": 5, "size": 1}]);
        let s = spec(serde_json::json!({
            "namespaces": [{"type": "user"}], "uidMappings": m, "gidMappings": m
        }));
        let p = UsernsPlan::prepare(&s, true).unwrap().unwrap();
        assert_eq!(p.uid_map, b"0 100000 65536\n65536 5 1\n");
        assert_eq!(p.gid_map, p.uid_map);
        assert!(wanted(&s));
        // No user namespace asked for: nothing prepared, no pipe.
        let none = spec(serde_json::json!({"namespaces": [{"type": "pid"}]}));
        assert!(UsernsPlan::prepare(&none, false).unwrap().is_none());
        assert!(!wanted(&none));
    }

    #[test]
    fn bad_maps_are_refused_by_field() {
        let one = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 10}]);
        let no_gid = spec(serde_json::json!({
            "namespaces": [{"type": "user"}], "uidMappings": one
        }));
        assert!(err(UsernsPlan::prepare(&no_gid, true)).contains("no linux.gidMappings"));
        let empty = spec(serde_json::json!({
            "namespaces": [{"type": "user"}], "uidMappings": [], "gidMappings": one
        }));
        assert!(err(UsernsPlan::prepare(&empty, true)).contains("no linux.uidMappings"));
        let past = serde_json::json!([{"containerID": 0, "hostID": 4294967290u32, "size": 10}]);
        let over = spec(serde_json::json!({
            "namespaces": [{"type": "user"}], "uidMappings": past, "gidMappings": one
        }));
        assert!(err(UsernsPlan::prepare(&over, true)).contains("linux.uidMappings entry"));
        let zero = serde_json::json!([{"containerID": 0, "hostID": 1, "size": 0}]);
        let z = spec(serde_json::json!({
            "namespaces": [{"type": "user"}], "uidMappings": one, "gidMappings": zero
        }));
        assert!(err(UsernsPlan::prepare(&z, true)).contains("linux.gidMappings entry"));
        let stray = spec(serde_json::json!({"namespaces": [], "gidMappings": one}));
        assert!(err(UsernsPlan::prepare(&stray, false)).contains("no user namespace"));
    }
}
