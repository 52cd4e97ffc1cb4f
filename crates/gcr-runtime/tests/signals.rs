//! Root-only test of `signal_forwarder`: a SIGTERM sent to the runtime process reaches the
//! container. The runtime side runs in a forked, single-threaded copy of the test process,
//! so that no other thread could take the signal with its default action.

mod common;

use common::*;
use gcr_runtime::{signal_forwarder, Stdio};

fn runtime_side(fx: &Fixture) -> i32 {
    let (mut r, w, w2) = out_pipe();
    let c = start(
        fx,
        "fwd",
        &sh("trap 'exit 7' TERM; echo READY; i=0; while [ $i -lt 300 ]; do sleep 0.01; i=$((i+1)); done"),
        Stdio::Fds {
            stdin: None,
            stdout: w,
            stderr: w2,
        },
        false,
    );
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut r, &mut buf).unwrap();
    let fwd = signal_forwarder(c.pid(), false).unwrap();
    // SAFETY: signalling ourselves; SIGTERM is blocked here and taken by the forwarder.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    let st = c.wait();
    drop(fwd);
    st.code()
}

#[test]
fn sigterm_to_the_runtime_reaches_the_container() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    // SAFETY: the forked child is single-threaded; it runs the runtime side and _exits
    // with the container's code without returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = std::panic::catch_unwind(|| runtime_side(&fx)).unwrap_or(99);
        // SAFETY: leaving the forked child without running the harness's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status),
        "runtime side died: status {status:#x}"
    );
    assert_eq!(
        libc::WEXITSTATUS(status),
        7,
        "the container did not get SIGTERM"
    );
    fx.assert_no_mounts();
}
