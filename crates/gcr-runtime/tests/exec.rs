//! Root-only tests of `exec_in`, pty runs, host-side signals and the CVE-2019-5736 pattern.

mod common;

use std::io::Read;

use common::*;
use gcr_runtime::{exec_in, wait_exit, ExitStatus, SeccompMode, Stdio};

fn process(args: &[&str]) -> oci_spec::runtime::Process {
    spec(args).process().clone().unwrap()
}

#[test]
fn exec_joins_the_container_namespaces_and_cgroup() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let c = start(&fx, "ex", &spec(&["sleep", "30"]), Stdio::Inherit, true);
    let script = "echo HOST $(hostname); echo COMM $(cat /proc/1/comm); \
                  for n in mnt pid net uts ipc cgroup; do echo NS_$n $(readlink /proc/self/ns/$n); done; \
                  [ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" ] && echo CGROUP same";
    let (mut r, w, w2) = out_pipe();
    let cg = c.running.as_ref().unwrap().cgroup.as_ref();
    let e = exec_in(
        c.pid(),
        &process(&["sh", "-c", script]),
        cg,
        SeccompMode::DockerDefault,
        Stdio::Fds {
            stdin: None,
            stdout: w,
            stderr: w2,
        },
    )
    .unwrap();
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    assert_eq!(wait_exit(&e).unwrap(), ExitStatus::Exited(0), "{out}");
    assert!(out.contains("HOST gcrtest"), "{out}");
    assert!(out.contains("COMM sleep"), "{out}");
    assert!(out.contains("CGROUP same"), "{out}");
    for n in ["mnt", "pid", "net", "uts", "ipc", "cgroup"] {
        let host = std::fs::read_link(format!("/proc/{}/ns/{n}", c.pid())).unwrap();
        let want = format!("NS_{n} {}", host.display());
        assert!(out.contains(&want), "{want} missing in:\n{out}");
    }
    let err = exec_in(
        c.pid(),
        &process(&["nosuch"]),
        None,
        SeccompMode::DockerDefault,
        Stdio::Inherit,
    )
    .err()
    .unwrap();
    assert_eq!(err.exit_code(), 127);
    // A host-side SIGKILL shows as 128 + 9.
    // SAFETY: killing our own child container.
    unsafe { libc::kill(c.pid(), libc::SIGKILL) };
    assert_eq!(c.wait().code(), 137);
    fx.assert_no_mounts();
}

#[test]
fn pty_run_and_pty_exec_see_a_terminal() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let mut c = start(
        &fx,
        "pty",
        &sh("[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo IS_A_TTY; sleep 30"),
        Stdio::Pty,
        false,
    );
    let master = c
        .running
        .as_mut()
        .unwrap()
        .pty_master
        .take()
        .expect("pty master");
    let mut m = std::fs::File::from(master);
    let mut buf = [0u8; 256];
    let n = m.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("IS_A_TTY"));
    let mut e = exec_in(
        c.pid(),
        &process(&["sh", "-c", "[ -t 0 ] && echo EXEC_TTY"]),
        None,
        SeccompMode::DockerDefault,
        Stdio::Pty,
    )
    .unwrap();
    let out = read_master(e.pty_master.take().unwrap());
    assert_eq!(wait_exit(&e).unwrap().code(), 0);
    assert!(out.contains("EXEC_TTY"), "{out}");
    drop(c);
    fx.assert_no_mounts();
}

/// CVE-2019-5736: while `exec` joins the container, a container process must not reach the
/// runtime binary through /proc/PID/exe (the joining process is not dumpable until execve).
#[test]
fn container_cannot_reach_runtime_binary_during_exec() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let script = r#"
end=$(( $(date +%s) + 3 ))
while [ $(date +%s) -lt $end ]; do
  for p in /proc/[0-9]*; do
    t=$(readlink $p/exe 2>/dev/null) && [ -n "$t" ] && [ "$t" != /bin/busybox ] && echo "HIT $p $t"
    (: >> $p/exe) 2>/dev/null && echo "WRITE $p"
    (cat $p/exe > /dev/null) 2>/dev/null || true
  done
done
echo DONE
"#;
    let (mut r, w, w2) = out_pipe();
    let c = start(
        &fx,
        "cve",
        &sh(script),
        Stdio::Fds {
            stdin: None,
            stdout: w,
            stderr: w2,
        },
        false,
    );
    let pid = c.pid();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let execs = std::thread::spawn(move || {
        let mut n = 0;
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            match exec_in(
                pid,
                &process(&["/bin/true"]),
                None,
                SeccompMode::DockerDefault,
                Stdio::Inherit,
            ) {
                Ok(e) => {
                    let _ = wait_exit(&e);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        n
    });
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let n = execs.join().unwrap();
    assert!(n > 20, "only {n} execs ran");
    assert!(out.contains("DONE"), "{out}");
    assert!(
        !out.contains("HIT") && !out.contains("WRITE"),
        "runtime binary reachable:\n{out}"
    );
    drop(c);
}

#[test]
fn pty_relay_copies_both_ways() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let mut c = start(&fx, "relay", &sh("read x; echo got-$x"), Stdio::Pty, false);
    let master = c.running.as_mut().unwrap().pty_master.take().unwrap();
    let (in_r, in_w) = std::io::pipe().unwrap();
    let (mut out_r, out_w) = std::io::pipe().unwrap();
    let relay = std::thread::spawn(move || {
        use std::os::fd::AsFd;
        gcr_runtime::pty::relay(master, Some(in_r.as_fd()), out_w.as_fd())
    });
    let mut in_w = std::fs::File::from(std::os::fd::OwnedFd::from(in_w));
    std::io::Write::write_all(&mut in_w, b"abc\n").unwrap();
    relay.join().unwrap().unwrap();
    let mut out = String::new();
    out_r.read_to_string(&mut out).unwrap();
    assert!(out.contains("got-abc"), "{out:?}");
    assert_eq!(c.wait().code(), 0);
}
