//! Root-only tests on the real host's cgroups (v1 hybrid here, v2 elsewhere): joining a
//! process, freeze/thaw seen in /proc, OOM-kill detection, and that destroy leaves nothing.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::testutil::is_root_or_skip;
use super::*;

/// Kills the child and destroys the group even when the test fails.
struct Guard {
    cg: Cgroup,
    child: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.cg.kill_all(libc::SIGKILL);
        let _ = self.cg.destroy();
    }
}

fn unique(tag: &str) -> String {
    format!("test-{tag}-{}", std::process::id())
}

fn proc_state(pid: u32) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("State:"))
        .unwrap_or("")
        .to_string()
}

fn utime_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    after
        .split_whitespace()
        .nth(11)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn cgroups_host_join_freeze_thaw_destroy() {
    if !is_root_or_skip() {
        return;
    }
    let m = CgroupManager::detect().unwrap();
    let id = unique("freeze");
    let cg = m
        .create(
            &id,
            &Resources {
                pids: Some(50),
                cpus: Some(1.0),
                ..Default::default()
            },
        )
        .unwrap();
    // A busy loop, so a frozen process is visible as CPU time that stops growing.
    let child = Command::new("/bin/busybox")
        .args(["sh", "-c", "while :; do :; done"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut g = Guard {
        cg: cg.clone(),
        child: Some(child),
    };
    cg.add_pid(pid as i32).unwrap();
    assert_eq!(cg.procs(), vec![pid as i32]);
    let cgfile = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cgfile.contains(&format!("/gcr/{id}")), "{cgfile}");
    let st = cg.stats().unwrap();
    assert_eq!(st.pids_current, 1);
    assert_eq!(st.pids_limit, Some(50));

    cg.freeze().unwrap();
    assert!(cg.is_frozen());
    assert!(m.open(&id).is_frozen());
    assert!(
        !proc_state(pid).contains("R (running)"),
        "{}",
        proc_state(pid)
    );
    let t0 = utime_ticks(pid);
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(utime_ticks(pid), t0, "a frozen process used CPU");

    cg.thaw().unwrap();
    assert!(!cg.is_frozen());
    std::thread::sleep(Duration::from_millis(150));
    assert!(utime_ticks(pid) > t0, "the thawed process did not run");
    assert!(cg.stats().unwrap().cpu_usage_ns > 0);

    m.open(&id).kill_all(libc::SIGKILL);
    let status = g.child.as_mut().unwrap().wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    g.child = None;
    let start = Instant::now();
    while !cg.procs().is_empty() && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    m.open(&id).destroy().unwrap();
    for p in cg.paths() {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

#[test]
fn cgroups_host_memory_limit_oom_killed() {
    if !is_root_or_skip() {
        return;
    }
    let m = CgroupManager::detect().unwrap();
    let id = unique("oom");
    let res = Resources {
        memory: Some(32 << 20),
        memory_swap: Some(32 << 20),
        ..Default::default()
    };
    let cg = m.create(&id, &res).unwrap();
    let mut g = Guard {
        cg: cg.clone(),
        child: None,
    };
    assert_eq!(cg.stats().unwrap().memory_limit, Some(32 << 20));
    assert!(!cg.oom_killed());
    // The child waits on stdin until it is in the group, then doubles a string forever.
    let mut child = Command::new("/bin/busybox")
        .args([
            "sh",
            "-c",
            "read go; x=0123456789abcdef; while :; do x=\"$x$x\"; done",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cg.add_pid(child.id() as i32).unwrap();
    drop(child.stdin.take());
    g.child = Some(child);
    let status = g.child.as_mut().unwrap().wait().unwrap();
    g.child = None;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "{status:?}"
    );
    assert!(cg.oom_killed());
    assert!(m.open(&id).oom_killed());
    cg.destroy().unwrap();
    for p in cg.paths() {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

#[test]
fn cgroups_host_create_destroy_leaves_nothing() {
    if !is_root_or_skip() {
        return;
    }
    let m = CgroupManager::detect().unwrap();
    for i in 0..20 {
        let id = unique(&format!("cycle{i}"));
        let cg = m
            .create(
                &id,
                &Resources {
                    memory: Some(64 << 20),
                    ..Default::default()
                },
            )
            .unwrap();
        let paths: Vec<_> = cg.paths().iter().map(|p| p.to_path_buf()).collect();
        assert!(paths.iter().all(|p| p.is_dir()));
        cg.destroy().unwrap();
        assert!(paths.iter().all(|p| !p.exists()));
    }
}

#[test]
fn cgroups_host_concurrent_create_destroy() {
    if !is_root_or_skip() {
        return;
    }
    let m = CgroupManager::detect().unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let m = &m;
            s.spawn(move || {
                for i in 0..10 {
                    let id = unique(&format!("conc{t}-{i}"));
                    let res = Resources {
                        memory: Some(64 << 20),
                        pids: Some(10),
                        ..Default::default()
                    };
                    let cg = m.create(&id, &res).unwrap();
                    cg.destroy().unwrap();
                    assert!(cg.paths().iter().all(|p| !p.exists()));
                }
            });
        }
    });
}

/// Timing for the report (not a test of speed): `cargo test -p gcr-runtime -- --ignored
/// cgroups_host_timing --nocapture`.
#[test]
#[ignore]
fn cgroups_host_timing() {
    if !is_root_or_skip() {
        return;
    }
    let t = Instant::now();
    let m = CgroupManager::detect().unwrap();
    println!("detect (first): {:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..100 {
        CgroupManager::detect().unwrap();
    }
    println!("detect (mean of 100): {:?}", t.elapsed() / 100);
    let n = 200;
    for (label, res) in [
        ("no limits", Resources::default()),
        (
            "memory+pids",
            Resources {
                memory: Some(256 << 20),
                pids: Some(100),
                ..Default::default()
            },
        ),
        (
            "memory+cpus+pids",
            Resources {
                memory: Some(256 << 20),
                cpus: Some(1.5),
                pids: Some(100),
                ..Default::default()
            },
        ),
    ] {
        let mut times = Vec::new();
        for i in 0..n {
            let id = unique(&format!("t{i}"));
            let t = Instant::now();
            let cg = m.create(&id, &res).unwrap();
            cg.destroy().unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "create+destroy {label}: median {:?} p90 {:?}",
            times[n / 2],
            times[n * 9 / 10]
        );
    }
}

/// The `cgroup2` mount of this host, if any (on the hybrid development machines it has no
/// controllers, but freezing, killing and CLONE_INTO_CGROUP are core v2 features).
fn v2_manager() -> Option<CgroupManager> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let line = mi.lines().find(|l| l.contains(" - cgroup2 "))?;
    CgroupManager::from_mountinfo(&format!("{line}\n")).ok()
}

/// libc 0.2's `CLONE_INTO_CGROUP` is a `c_int` that overflows to 0; the kernel's value.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

#[test]
fn cgroups_host_real_v2_clone_into_freeze_kill() {
    if !is_root_or_skip() {
        return;
    }
    let Some(m) = v2_manager() else {
        println!("skipped: no cgroup2 mount on this host");
        return;
    };
    assert_eq!(m.version(), CgroupVersion::V2);
    let id = unique("v2");
    let cg = m.create(&id, &Resources::default()).unwrap();
    let g = Guard {
        cg: cg.clone(),
        child: None,
    };
    let fd = cg.v2_dir_fd().expect("v2 dir fd");
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: std::os::fd::AsRawFd::as_raw_fd(&fd) as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM forks; the child only loops on pause(2) (no allocation)
    // until it is killed.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        loop {
            // SAFETY: pause has no arguments.
            unsafe { libc::pause() };
        }
    }
    assert!(pid > 0, "clone3: {}", std::io::Error::last_os_error());
    let pid = pid as i32;
    let cgfile = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    if !cgfile.lines().any(|l| l == format!("0::/gcr/{id}")) {
        // SAFETY: killing and reaping our own child before failing.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    assert!(
        cgfile.lines().any(|l| l == format!("0::/gcr/{id}")),
        "{cgfile}"
    );
    assert_eq!(cg.procs(), vec![pid]);
    cg.freeze().unwrap();
    assert!(cg.is_frozen());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen());
    cg.kill_all(libc::SIGKILL);
    let mut st = 0;
    // SAFETY: reaping our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    assert!(libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL);
    fs::wait_until(2000, || cg.procs().is_empty());
    cg.destroy().unwrap();
    assert!(!cg.paths()[0].exists());
    drop(g);
}
