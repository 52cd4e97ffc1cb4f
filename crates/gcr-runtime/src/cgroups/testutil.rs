//! Test helpers shared by the cgroups, seccomp and caps tests: the root check and running a
//! closure in a forked child that reports through a pipe without allocating.

use std::io::Read;
use std::os::fd::FromRawFd;

/// True when root. Otherwise prints "skipped: needs root" and returns false, or panics when
/// `CI=true` (skipping is a failure in CI).
pub(crate) fn is_root_or_skip() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("this test needs root and CI=true forbids skipping it");
    }
    println!("skipped: needs root");
    false
}

/// Forks; the child runs `f(write_fd)` and `_exit`s with its return value. Returns the exit
/// code (or 128+signal) and everything the child wrote to the fd. `f` must not allocate.
pub(crate) fn run_in_child(f: impl FnOnce(i32) -> i32) -> (i32, Vec<u8>) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills a two-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child only runs `f` (which must be async-signal-safe) and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: closing the read end in the child.
        unsafe { libc::close(fds[0]) };
        // A panic must never unwind into the test harness's copy in the child.
        let code =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(fds[1]))).unwrap_or(101);
        // SAFETY: terminate the child without running destructors or atexit handlers.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: closing the write end in the parent.
    unsafe { libc::close(fds[1]) };
    // SAFETY: fds[0] is a fresh pipe fd owned by us from here on.
    let mut file = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let mut out = Vec::new();
    let _ = file.read_to_end(&mut out);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    (code, out)
}

/// Copies a file to `fd` with a stack buffer (no allocation). Returns 0 or 9 on error.
pub(crate) fn copy_file_to_fd(path: &std::ffi::CStr, fd: i32) -> i32 {
    // SAFETY: NUL-terminated path; fd closed below.
    let src = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if src < 0 {
        return 9;
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a stack buffer of the given length.
        let n = unsafe { libc::read(src, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        // SAFETY: writing the bytes just read.
        unsafe { libc::write(fd, buf.as_ptr().cast(), n as usize) };
    }
    // SAFETY: closing our fd.
    unsafe { libc::close(src) };
    0
}
