//! Child side of the mount plan: overlay or bind root, the spec's mounts through
//! /proc/self/fd/N of an openat2(RESOLVE_IN_ROOT) descriptor, /dev nodes and links,
//! pivot_root, masked and read-only paths. Only system calls on prepared data.

use std::os::fd::RawFd;

use super::{walk, MountPlan, MountStep, RootStep};
use crate::error::Stage;
use crate::sys::{self, child_fail, errno};

/// `MOVE_MOUNT_F_EMPTY_PATH` of linux/mount.h.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// A bind remount of `path` with `flags`. In a user namespace the flags a mount got in a
/// more privileged namespace (nosuid, nodev, noexec, ro, atime) are locked: on EPERM the
/// mount's current flags are added and the remount tried again (runc does the same). No
/// extra system call when the first attempt succeeds.
///
/// # Safety
/// `path` must be a NUL-terminated string.
unsafe fn remount(path: *const libc::c_char, flags: libc::c_ulong) -> libc::c_int {
    // SAFETY: mount/statvfs on the caller's NUL-terminated path and a zeroed stack struct.
    unsafe {
        let r = libc::mount(
            std::ptr::null(),
            path,
            std::ptr::null(),
            flags,
            std::ptr::null(),
        );
        if r == 0 || errno() != libc::EPERM {
            return r;
        }
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path, &mut st) != 0 {
            *libc::__errno_location() = libc::EPERM;
            return -1;
        }
        let keep = libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC
            | libc::MS_NOATIME
            | libc::MS_NODIRATIME;
        let locked = st.f_flag as libc::c_ulong & keep;
        libc::mount(
            std::ptr::null(),
            path,
            std::ptr::null(),
            flags | locked,
            std::ptr::null(),
        )
    }
}

impl MountPlan {
    /// Child side: builds the root and pivots into it. Returns with cwd = new "/".
    /// `before_pivot` runs while the host's paths are still visible.
    pub(crate) fn apply(&self, errfd: RawFd, before_pivot: &dyn Fn()) {
        // SAFETY: every call below is a plain system call on NUL-terminated strings and
        // descriptors prepared by the parent or opened here.
        unsafe {
            libc::umask(0);
            if libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                self.propagation,
                std::ptr::null(),
            ) != 0
            {
                child_fail(errfd, Stage::Propagation as u32, errno());
            }
            let target = match &self.root {
                RootStep::Overlay {
                    chdir,
                    opts,
                    fallback,
                    target,
                } => {
                    if let Some(dir) = chdir {
                        if libc::chdir(dir.as_ptr()) != 0 {
                            child_fail(errfd, Stage::RootfsMount as u32, errno());
                        }
                    }
                    // With a nodev /dev the root is nodev too: a node the container
                    // makes anywhere cannot be opened (no device cgroup needed).
                    let flags = if self.dev_nodev { libc::MS_NODEV } else { 0 };
                    let overlay = |o: &std::ffi::CStr| {
                        libc::mount(
                            c"overlay".as_ptr(),
                            target.as_ptr(),
                            c"overlay".as_ptr(),
                            flags,
                            o.as_ptr().cast(),
                        ) == 0
                    };
                    let mounted = overlay(opts)
                        || (errno() == libc::EINVAL && fallback.as_deref().is_some_and(overlay));
                    if !mounted {
                        child_fail(errfd, Stage::RootfsMount as u32, errno());
                    }
                    target
                }
                RootStep::Attach { fd, target } => {
                    // move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)
                    if libc::syscall(
                        libc::SYS_move_mount,
                        *fd,
                        c"".as_ptr(),
                        libc::AT_FDCWD,
                        target.as_ptr(),
                        MOVE_MOUNT_F_EMPTY_PATH,
                    ) != 0
                    {
                        child_fail(errfd, Stage::RootfsMount as u32, errno());
                    }
                    libc::close(*fd);
                    target
                }
                RootStep::Bind(path) => {
                    if libc::mount(
                        path.as_ptr(),
                        path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ) != 0
                    {
                        child_fail(errfd, Stage::RootfsMount as u32, errno());
                    }
                    path
                }
            };
            let rootfd = libc::open(
                target.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if rootfd < 0 {
                child_fail(errfd, Stage::RootfsMount as u32, errno());
            }
            let code = |i: usize| Stage::Mount as u32 | ((i as u32 + 1) << 8);
            for (i, step) in self.steps.iter().enumerate().filter(|(_, s)| !s.after_join) {
                step.apply(errfd, rootfd, code(i));
            }
            if self.dev_tmpfs {
                self.make_dev(errfd, rootfd);
            }
            self.secrets.apply(errfd, rootfd);
            before_pivot();
            // In its cgroup and cgroup namespace now (a v1 start joins them in
            // `before_pivot`): cgroup mounts show the container's own groups.
            for (i, step) in self.steps.iter().enumerate().filter(|(_, s)| s.after_join) {
                step.apply(errfd, rootfd, code(i));
            }
            if libc::fchdir(rootfd) != 0
                || sys::pivot_root(c".".as_ptr(), c".".as_ptr()) != 0
                || libc::mount(
                    std::ptr::null(),
                    c".".as_ptr(),
                    std::ptr::null(),
                    libc::MS_SLAVE | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                || libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0
                || libc::chdir(c"/".as_ptr()) != 0
            {
                child_fail(errfd, Stage::PivotRoot as u32, errno());
            }
            libc::close(rootfd);
            for p in &self.masked {
                // Look first: a bind of /dev/null onto a directory fails only after the
                // kernel has cloned the mount, and undoing that waits for an RCU grace
                // period (two such paths cost ~0.3 ms per start).
                let mut st: libc::stat = std::mem::zeroed();
                if libc::stat(p.as_ptr(), &mut st) != 0 {
                    match errno() {
                        libc::ENOENT => continue,
                        e => child_fail(errfd, Stage::MaskPaths as u32, e),
                    }
                }
                let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                let masked = if dir {
                    libc::mount(
                        c"tmpfs".as_ptr(),
                        p.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_RDONLY,
                        c"size=0".as_ptr().cast(),
                    )
                } else {
                    libc::mount(
                        c"/dev/null".as_ptr(),
                        p.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    )
                };
                if masked != 0 && errno() != libc::ENOENT {
                    child_fail(errfd, Stage::MaskPaths as u32, errno());
                }
            }
            for p in &self.readonly {
                if libc::mount(
                    p.as_ptr(),
                    p.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                {
                    if errno() == libc::ENOENT {
                        continue;
                    }
                    child_fail(errfd, Stage::ReadonlyPaths as u32, errno());
                }
                let fl = libc::MS_BIND
                    | libc::MS_REMOUNT
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC;
                if remount(p.as_ptr(), fl) != 0 {
                    child_fail(errfd, Stage::ReadonlyPaths as u32, errno());
                }
            }
            if self.root_readonly
                && remount(
                    c"/".as_ptr(),
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                ) != 0
            {
                child_fail(errfd, Stage::RootfsMount as u32, errno());
            }
        }
    }

    /// Child side: device nodes and the standard links in the fresh /dev tmpfs.
    fn make_dev(&self, errfd: RawFd, rootfd: RawFd) {
        let dev = sys::openat2(
            rootfd,
            c"dev".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY,
            sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
        );
        if dev < 0 {
            child_fail(errfd, Stage::Devices as u32, errno());
        }
        // SAFETY: mknodat/symlinkat on a directory descriptor with static or prepared strings.
        unsafe {
            for d in &self.devices {
                let Some(host) = &d.host else {
                    if libc::mknodat(dev, d.name.as_ptr(), d.mode, d.dev) != 0
                        && errno() != libc::EEXIST
                    {
                        child_fail(errfd, Stage::Devices as u32, errno());
                    }
                    continue;
                };
                // A bind of the host's node onto an empty file made in the fresh tmpfs
                // (nothing of the container runs yet), named relative to /dev as the
                // working directory.
                let f = libc::openat(
                    dev,
                    d.name.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    0o600,
                );
                if f < 0 {
                    child_fail(errfd, Stage::Devices as u32, errno());
                }
                libc::close(f);
                if libc::fchdir(dev) != 0
                    || libc::mount(
                        host.as_ptr(),
                        d.name.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ) != 0
                {
                    child_fail(errfd, Stage::Devices as u32, errno());
                }
            }
            for (target, name) in [
                (c"/proc/self/fd", c"fd"),
                (c"/proc/self/fd/0", c"stdin"),
                (c"/proc/self/fd/1", c"stdout"),
                (c"/proc/self/fd/2", c"stderr"),
                (c"pts/ptmx", c"ptmx"),
            ] {
                if libc::symlinkat(target.as_ptr(), dev, name.as_ptr()) != 0
                    && errno() != libc::EEXIST
                {
                    child_fail(errfd, Stage::Devices as u32, errno());
                }
            }
            libc::close(dev);
        }
    }
}

impl MountStep {
    fn open(&self, rootfd: RawFd) -> Result<RawFd, i32> {
        walk::open(rootfd, &self.rel)
    }

    /// The permission bits of the destination, if it exists.
    fn mode(&self, rootfd: RawFd) -> Option<libc::mode_t> {
        let fd = self.open(rootfd).ok()?;
        // SAFETY: fstat into a zeroed stack struct, then close, of our own descriptor.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            let ok = libc::fstat(fd, &mut st) == 0;
            libc::close(fd);
            ok.then_some(st.st_mode & 0o7777)
        }
    }

    /// Child side: creates the destination if needed and mounts through /proc/self/fd/N.
    /// `code` is [`Stage::Mount`] with the step number (from 1) in bits 8 and up.
    fn apply(&self, errfd: RawFd, rootfd: RawFd, code: u32) {
        let fail = |e| child_fail(errfd, code, e);
        let mut buf = [0u8; 32];
        if self.remount_only {
            let fd = self.open(rootfd).unwrap_or_else(&fail);
            let path = sys::proc_fd_path(&mut buf, fd);
            // SAFETY: remount of the mount at a descriptor resolved inside the root.
            let r = unsafe { remount(path, self.flags) };
            if r != 0 {
                fail(errno());
            }
            // SAFETY: closing our own descriptor.
            unsafe { libc::close(fd) };
            return;
        }
        let old_mode = if self.keep_mode {
            self.mode(rootfd)
        } else {
            None
        };
        let fd = walk::open_or_create(rootfd, &self.rel, self.file).unwrap_or_else(&fail);
        let path = sys::proc_fd_path(&mut buf, fd);
        let src = self
            .source
            .as_ref()
            .map_or(c"none".as_ptr(), |s| s.as_ptr());
        let fstype = self
            .fstype
            .as_ref()
            .map_or(std::ptr::null(), |s| s.as_ptr());
        let data = self
            .data
            .as_ref()
            .map_or(std::ptr::null(), |s| s.as_ptr().cast());
        // SAFETY: mount on a magic-link path naming the descriptor resolved inside the root.
        unsafe {
            let base = if self.bind {
                self.flags & (libc::MS_BIND | libc::MS_REC)
            } else {
                self.flags
            };
            let mut bound = self.bind;
            if libc::mount(src, path, fstype, base, data) != 0 {
                if !(self.sysfs_bind_fallback && errno() == libc::EPERM) {
                    fail(errno());
                }
                // The network namespace is not this user namespace's: the host's /sys.
                if libc::mount(
                    c"/sys".as_ptr(),
                    path,
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                {
                    fail(errno());
                }
                bound = true;
            }
            libc::close(fd);
            if let Some(mode) = old_mode {
                let fd = self.open(rootfd).unwrap_or_else(&fail);
                let path = sys::proc_fd_path(&mut buf, fd);
                // A read-only tmpfs keeps its own mode (nothing can change it).
                if libc::chmod(path, mode) != 0 && errno() != libc::EROFS {
                    fail(errno());
                }
                libc::close(fd);
            }
            let extra = self.flags & !(libc::MS_BIND | libc::MS_REC);
            if (bound && extra != 0) || self.propagation != 0 {
                // Reopen: the old descriptor names the covered directory, not the new mount.
                let fd = self.open(rootfd).unwrap_or_else(&fail);
                let path = sys::proc_fd_path(&mut buf, fd);
                if bound
                    && extra != 0
                    && remount(path, libc::MS_BIND | libc::MS_REMOUNT | extra) != 0
                {
                    fail(errno());
                }
                if self.propagation != 0
                    && libc::mount(
                        std::ptr::null(),
                        path,
                        std::ptr::null(),
                        self.propagation,
                        std::ptr::null(),
                    ) != 0
                {
                    fail(errno());
                }
                libc::close(fd);
            }
        }
    }
}
