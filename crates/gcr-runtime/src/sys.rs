//! Thin wrappers over the raw system calls the executor needs and `libc` does not wrap
//! (clone3, openat2, pivot_root, close_range, pidfd_open), plus the child's error report.
//!
//! Everything here is safe to call between clone and execve: no allocation, no locks.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use libc::{c_char, c_int, c_long};

pub(crate) const CLONE_PIDFD: u64 = 0x1000;
pub(crate) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
pub(crate) const RESOLVE_IN_ROOT: u64 = 0x10;
pub(crate) const RESOLVE_NO_MAGICLINKS: u64 = 0x02;

/// `struct clone_args` of clone3(2), version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
pub(crate) struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// clone3 without a new stack: fork semantics. Returns 0 in the child, the pid in the parent.
///
/// # Safety
/// The child must only make async-signal-safe calls and must never return into code that
/// expects the parent's state (it must end in execve or `_exit`).
pub(crate) unsafe fn clone3(args: &mut CloneArgs) -> c_long {
    // SAFETY: args points to a valid clone_args of the size passed; the caller upholds the
    // fork-like contract documented above.
    unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    }
}

/// openat2(2) returning an `O_PATH` fd resolved with `resolve`, or -1. EAGAIN (a `..`
/// resolved beneath a root while a rename or mount elsewhere on the host moved things:
/// the kernel cannot rule out an escape) is retried, as openat2(2) advises.
pub(crate) fn openat2(dirfd: RawFd, path: *const c_char, flags: c_int, resolve: u64) -> RawFd {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    let mut tries = 0;
    loop {
        // SAFETY: path is a NUL-terminated string owned by the caller; how lives on the
        // stack.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                path,
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            ) as RawFd
        };
        tries += 1;
        if fd >= 0 || errno() != libc::EAGAIN || tries >= OPENAT2_TRIES {
            return fd;
        }
    }
}

/// How many times an openat2 that meets a concurrent rename or mount is tried.
pub(crate) const OPENAT2_TRIES: u32 = 128;

pub(crate) fn pivot_root(new_root: *const c_char, put_old: *const c_char) -> c_int {
    // SAFETY: both arguments are NUL-terminated strings owned by the caller.
    unsafe { libc::syscall(libc::SYS_pivot_root, new_root, put_old) as c_int }
}

pub(crate) fn close_range(first: u32, last: u32, flags: u32) -> c_int {
    // SAFETY: close_range only acts on this process's descriptor table.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) as c_int }
}

pub(crate) fn pidfd_open(pid: i32) -> RawFd {
    // SAFETY: pidfd_open takes plain integers.
    unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) as RawFd }
}

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Writes `fd` as `/proc/self/fd/N\0` into `buf` and returns a pointer to it.
pub(crate) fn proc_fd_path(buf: &mut [u8; 32], fd: RawFd) -> *const c_char {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 12];
    let mut n = fd.max(0) as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut pos = PREFIX.len();
    while len > 0 {
        len -= 1;
        buf[pos] = digits[len];
        pos += 1;
    }
    buf[pos] = 0;
    buf.as_ptr() as *const c_char
}

/// Reports (stage, errno) through the error pipe and exits. Never returns.
pub(crate) fn child_fail(errfd: RawFd, stage: u32, err: i32) -> ! {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&stage.to_ne_bytes());
    msg[4..].copy_from_slice(&err.to_ne_bytes());
    // SAFETY: write and _exit are async-signal-safe; msg lives on the stack.
    unsafe {
        libc::write(errfd, msg.as_ptr().cast(), msg.len());
        libc::_exit(if stage == crate::error::Stage::Exec as u32 {
            127
        } else {
            125
        });
    }
}

/// The report code of a process held before execve (see [`hold`]): not an error.
pub(crate) const HELD: u32 = u32::MAX;

/// The report code of a child waiting at the hooks' sync point (see [`crate::hooks`]).
pub(crate) const HOOKS: u32 = u32::MAX - 1;

/// Child side of a held start (runc's `create`): tells the parent over `errfd` that setup is
/// done, then blocks until one byte arrives on `fd` (a fifo opened read-write, written by a
/// later `start`). Never allocates; exits if the fifo is closed without a byte.
pub(crate) fn hold(errfd: RawFd, fd: RawFd) {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&HELD.to_ne_bytes());
    // SAFETY: a write from a stack buffer (async-signal-safe).
    unsafe { libc::write(errfd, msg.as_ptr().cast(), msg.len()) };
    wait_release(fd);
}

/// Child side of [`crate::process::ProcessPlan::release`] and of [`hold`]: blocks until
/// one byte arrives on `fd`, then closes it; exits (the command never runs) when the other
/// end was closed without one.
pub(crate) fn wait_release(fd: RawFd) {
    let mut b = [0u8; 1];
    // SAFETY: read on a stack buffer; close and _exit are async-signal-safe.
    unsafe {
        loop {
            let n = libc::read(fd, b.as_mut_ptr().cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            libc::_exit(125);
        }
        libc::close(fd);
    }
}

/// Creates a pipe with both ends close-on-exec.
pub(crate) fn pipe() -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd), crate::RuntimeError> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds is a valid two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(crate::RuntimeError::sys("pipe2"));
    }
    // SAFETY: pipe2 returned two fresh descriptors that we now own.
    unsafe {
        Ok((
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        ))
    }
}

/// Reads the child's error report: None when the pipe closed without data (exec succeeded).
pub(crate) fn read_report(fd: RawFd) -> Option<(u32, i32)> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        // SAFETY: reading into the unfilled tail of a stack buffer.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), 8 - got) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    if got < 8 {
        return None;
    }
    let stage = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let err = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    Some((stage, err))
}

/// waitpid with EINTR retry; returns the raw status.
pub(crate) fn waitpid(pid: i32) -> Result<i32, crate::RuntimeError> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid {
            return Ok(status);
        }
        if r < 0 && errno() != libc::EINTR {
            return Err(crate::RuntimeError::sys("waitpid"));
        }
    }
}

/// Sends `fd` over the unix socket `sock` with SCM_RIGHTS (one byte of payload). No
/// allocation: safe in a child after clone. True when sent.
pub(crate) fn send_fd(sock: RawFd, fd: RawFd) -> bool {
    let mut byte = [b'F'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 4]; // CMSG_SPACE(sizeof(int)), 8-byte aligned
                              // SAFETY: msghdr is plain data; its pointers refer to the stack buffers above, which
                              // outlive the sendmsg; the control buffer holds one cmsg with one int.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), fd);
        libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) == 1
    }
}

/// Receives one descriptor sent with [`send_fd`] on `sock` (`flags`: e.g. MSG_DONTWAIT);
/// it is close-on-exec.
pub(crate) fn recv_fd(sock: RawFd, flags: libc::c_int) -> Option<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: recvmsg into the stack buffers above; a descriptor received is owned once,
    // below.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        let n = loop {
            let n = libc::recvmsg(sock, &mut msg, flags | libc::MSG_CMSG_CLOEXEC);
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            break n;
        };
        if n != 1 {
            return None;
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd))
    }
}
