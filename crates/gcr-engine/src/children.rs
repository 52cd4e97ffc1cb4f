//! Children nobody in this process waits for.
//!
//! `start` forks each detached container's guard and leaves it running; the trash reaper is
//! spawned and left alone. In the short-lived CLI they outlive us and init reaps them. A
//! long-lived process (the API service) must reap them itself, and only them: any other
//! child (a build step, an exec, a helper command) has a thread that waits for it by pid,
//! and reaping it first would leave that thread with `ECHILD`. So each such child is
//! adopted here by pid when it is forked, and [`reap`] waits (without blocking) for the
//! adopted ones only — no walk over `/proc`, no race with anyone's own `waitpid`.

use std::sync::Mutex;

static ADOPTED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Notes `pid`, a child of this process that nobody will wait for.
pub(crate) fn adopt(pid: i32) {
    if pid <= 0 {
        return;
    }
    if let Ok(mut a) = ADOPTED.lock() {
        a.push(pid);
    }
}

/// Reaps the adopted children that have exited; returns how many are still running.
pub fn reap() -> usize {
    let Ok(mut a) = ADOPTED.lock() else { return 0 };
    a.retain(|&pid| {
        let mut status = 0;
        // SAFETY: waitpid on our own child, WNOHANG; `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        // 0: still running. -1 (ECHILD): not ours any more; forget it either way.
        r == 0
    });
    a.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::zombie_processes)] // the adopted child is reaped by reap(), not wait()
    fn reaps_adopted_children_and_leaves_others_to_their_waiters() {
        let mut own = std::process::Command::new("true").spawn().unwrap();
        let adopted = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let pid = adopted.id() as i32;
        adopt(pid);
        // `own` exits at once; wait until it is a zombie, then reap the adopted ones.
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            reap() >= 1,
            "the sleeping child was dropped before it exited"
        );
        assert!(
            own.wait().unwrap().success(),
            "reap() took a child it did not adopt"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while ADOPTED.lock().unwrap().contains(&pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "the adopted child was never reaped"
            );
            reap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Reaped: the pid is no longer our child.
        // SAFETY: waitpid with a valid out pointer; expected to fail with ECHILD.
        let r = unsafe { libc::waitpid(pid, &mut 0, libc::WNOHANG) };
        assert_eq!(r, -1, "the adopted child is still waitable");
    }
}
