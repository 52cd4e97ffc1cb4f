//! Root-only tests of `spawn`: exit codes, isolation, security properties, leaks.

mod common;

use common::*;
use gcr_runtime::{ExitStatus, Network, RuntimeError, SeccompMode};
use std::os::fd::AsRawFd;

#[test]
fn true_exits_zero() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let (st, _) = run(&fx, "t", &spec(&["/bin/true"]), Opts::default()).unwrap();
    assert_eq!(st, ExitStatus::Exited(0));
}

#[test]
fn exit_code_propagates() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let (st, _) = run(&fx, "t", &sh("exit 3"), Opts::default()).unwrap();
    assert_eq!(st.code(), 3);
    let (st, _) = run(
        &fx,
        "k",
        &sh("sh -c 'kill -9 $$'; exit $?"),
        Opts::default(),
    )
    .unwrap();
    assert_eq!(st.code(), 137);
}

#[test]
fn missing_command_is_127_and_not_executable_is_126() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let e = run(
        &fx,
        "m",
        &spec(&["nosuchcmd"]),
        Opts {
            cgroup: true,
            ..Opts::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, RuntimeError::NotFound(_)), "{e}");
    assert_eq!(e.exit_code(), 127);
    assert_eq!(
        e.to_string(),
        "exec: \"nosuchcmd\": executable file not found in $PATH"
    );
    let e = run(&fx, "n", &spec(&["/notexec"]), Opts::default()).unwrap_err();
    assert_eq!(e.exit_code(), 126, "{e}");
    let e = run(&fx, "d", &spec(&["/bin/nothere"]), Opts::default()).unwrap_err();
    assert_eq!(e.exit_code(), 127, "{e}");
    fx.assert_no_mounts();
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in output:\n{out}"))
        .trim()
}

#[test]
fn isolation_inside_the_container() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let script = r#"
echo "PIDS $(ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ')"
echo "HOST $(hostname)"
mount -t tmpfs x /mnt 2>/dev/null && echo "MOUNT ok" || echo "MOUNT refused"
(echo h > /proc/sys/kernel/hostname) 2>/dev/null && echo "PROCSYS ok" || echo "PROCSYS refused"
(touch /sys/gcr_test) 2>/dev/null && echo "SYS ok" || echo "SYS refused"
(echo x > /sys/kernel/uevent_helper) 2>/dev/null && echo "SYS2 ok" || echo "SYS2 refused"
echo "DEV $(ls /dev | tr '\n' ' ')"
echo "FDS $(ls /proc/self/fd | tr '\n' ' ')"
echo "MASKED $(wc -c < /proc/keys) $(wc -c < /proc/timer_list) $(ls /sys/firmware | wc -l)"
echo "MKNOD $(mknod /tmp/sda b 8 0 2>&1 && (head -c1 /tmp/sda >/dev/null 2>&1 && echo readable || echo unreadable))"
echo "LO $(cat /sys/class/net/lo/flags) $(ls /sys/class/net | tr '\n' ' ')"
echo "CWD $(pwd)"
echo "CGDIRS $(ls /sys/fs/cgroup | tr '\n' ' ')"
echo "CGSELF $(grep -E '(^0::|memory)' /proc/self/cgroup | head -1 | cut -d: -f3)"
(mkdir /sys/fs/cgroup/gcr_x) 2>/dev/null && echo "CGW ok" || echo "CGW refused"
(mkdir /sys/fs/cgroup/memory/gcr_x) 2>/dev/null && echo "CGW2 ok" || echo "CGW2 refused"
grep -E '^(CapBnd|CapEff|Seccomp|NoNewPrivs):' /proc/self/status | tr '\t' ' '
"#;
    let (st, out) = run(
        &fx,
        "iso",
        &sh(script),
        Opts {
            cgroup: true,
            ..Opts::default()
        },
    )
    .unwrap();
    assert_eq!(st, ExitStatus::Exited(0), "{out}");
    let pids: Vec<&str> = field(&out, "PIDS").split_whitespace().collect();
    // The shell and its few helpers only: small numbers from the container's own pid ns.
    assert!(
        pids.contains(&"1") && pids.len() <= 8,
        "host pids visible: {pids:?}"
    );
    assert!(
        pids.iter().all(|p| p.parse::<u32>().unwrap() < 20),
        "host pids visible: {pids:?}"
    );
    assert_eq!(field(&out, "HOST"), "gcrtest");
    assert_eq!(field(&out, "MOUNT"), "refused");
    assert_eq!(field(&out, "PROCSYS"), "refused");
    assert_eq!(field(&out, "SYS"), "refused");
    assert_eq!(field(&out, "SYS2"), "refused");
    let mut dev: Vec<&str> = field(&out, "DEV").split_whitespace().collect();
    dev.sort_unstable();
    assert_eq!(
        dev,
        [
            "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
            "stdout", "tty", "urandom", "zero"
        ]
    );
    let fds: Vec<&str> = field(&out, "FDS").split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "inherited descriptors");
    assert_eq!(field(&out, "MASKED"), "0 0 0", "masked paths");
    assert!(
        field(&out, "MKNOD").contains("unreadable") || !field(&out, "MKNOD").contains("readable"),
        "{out}"
    );
    assert_eq!(field(&out, "LO"), "0x9 lo", "only lo, up, in a new net ns");
    assert_eq!(field(&out, "CWD"), "/");
    assert_eq!(field(&out, "CGSELF"), "/", "cgroup namespace root: {out}");
    assert_eq!(field(&out, "CGW"), "refused");
    assert_eq!(field(&out, "CGW2"), "refused");
    if std::path::Path::new("/sys/fs/cgroup/memory").is_dir() {
        // v1/hybrid host: every hierarchy is visible, read-only, from the container's view.
        let dirs = field(&out, "CGDIRS");
        assert!(dirs.contains("memory") && dirs.contains("pids"), "{dirs}");
    }
    assert_eq!(field(&out, "CapBnd:"), "00000000a80425fb");
    assert_eq!(field(&out, "CapEff:"), "00000000a80425fb");
    assert_eq!(field(&out, "Seccomp:"), "2");
}

#[test]
fn cwd_through_proc_self_fd_is_refused() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    for n in 3..12 {
        let mut s = spec(&["/bin/true"]);
        let mut p = s.process().clone().unwrap();
        p.set_cwd(format!("/proc/self/fd/{n}").into());
        s.set_process(Some(p));
        let r = run(&fx, &format!("cwd{n}"), &s, Opts::default());
        assert!(
            r.is_err(),
            "cwd /proc/self/fd/{n} was accepted: {:?}",
            r.map(|x| x.1)
        );
    }
    let mut s = sh("pwd");
    let mut p = s.process().clone().unwrap();
    p.set_cwd("/tmp/new/dir".into());
    s.set_process(Some(p));
    let (st, out) = run(&fx, "cwdmissing", &s, Opts::default()).unwrap();
    assert_eq!(
        (st.code(), out.trim()),
        (0, "/tmp/new/dir"),
        "a missing -w is created"
    );
}

#[test]
fn read_only_rootfs_refuses_writes() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let mut s = sh("touch /newfile && echo WROTE; touch /dev/shm/ok && echo SHM");
    let mut root = s.root().clone().unwrap();
    root.set_readonly(Some(true));
    s.set_root(Some(root));
    let (_, out) = run(&fx, "ro", &s, Opts::default()).unwrap();
    assert!(!out.contains("WROTE"), "{out}");
    assert!(out.contains("SHM"), "tmpfs mounts stay writable: {out}");
    // Control: the same command writes when the root is writable.
    let (_, out) = run(
        &fx,
        "rw",
        &sh("touch /newfile && echo WROTE"),
        Opts::default(),
    )
    .unwrap();
    assert!(out.contains("WROTE"), "{out}");
    assert!(
        fx.dir.path().join("rw/upper/newfile").exists(),
        "write lands in the upper dir"
    );
}

#[test]
fn user_and_groups_apply() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let mut s = sh("echo ID $(id -u) $(id -g) $(id -G); grep CapEff /proc/self/status");
    let mut p = s.process().clone().unwrap();
    let mut u = p.user().clone();
    u.set_uid(1000);
    u.set_gid(1000);
    u.set_additional_gids(Some(vec![1000, 2000]));
    p.set_user(u);
    s.set_process(Some(p));
    let (st, out) = run(&fx, "user", &s, Opts::default()).unwrap();
    assert_eq!(st.code(), 0, "{out}");
    assert_eq!(field(&out, "ID"), "1000 1000 1000 2000");
    assert_eq!(field(&out, "CapEff:"), "0000000000000000");
}

#[test]
fn rlimits_inherited_and_clamped() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) };
    let mut s = sh("echo NOFILE $(ulimit -Sn) $(ulimit -Hn); echo STACK $(ulimit -s)");
    let mut p = s.process().clone().unwrap();
    p.set_rlimits(None);
    s.set_process(Some(p.clone()));
    let (_, out) = run(&fx, "rl1", &s, Opts::default()).unwrap();
    assert_eq!(
        field(&out, "NOFILE"),
        format!("{} {}", cur.rlim_cur, cur.rlim_max)
    );
    let huge = oci_spec::runtime::PosixRlimitBuilder::default()
        .typ(oci_spec::runtime::PosixRlimitType::RlimitNofile)
        .soft(u64::MAX - 1)
        .hard(u64::MAX - 1)
        .build()
        .unwrap();
    p.set_rlimits(Some(vec![huge]));
    s.set_process(Some(p));
    let (_, out) = run(&fx, "rl2", &s, Opts::default()).unwrap();
    assert_eq!(
        field(&out, "NOFILE"),
        format!("{} {}", cur.rlim_max, cur.rlim_max),
        "never above the hard limit"
    );
}

#[test]
fn no_new_privs_and_unconfined() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let mut s = sh("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr '\t' ' '");
    let mut p = s.process().clone().unwrap();
    p.set_no_new_privileges(Some(true));
    s.set_process(Some(p));
    let (_, out) = run(&fx, "nnp", &s, Opts::default()).unwrap();
    assert_eq!(field(&out, "NoNewPrivs:"), "1");
    assert_eq!(field(&out, "Seccomp:"), "2");
    let (_, out) = run(
        &fx,
        "unc",
        &s,
        Opts {
            seccomp: SeccompMode::Unconfined,
            ..Opts::default()
        },
    )
    .unwrap();
    assert_eq!(field(&out, "Seccomp:"), "0");
}

#[test]
fn init_reaps_orphans_and_propagates_status() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let script = "(sh -c 'exit 0' &); (sleep 0.05 &); sleep 0.3; \
                  echo ZOMBIES $(grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l); \
                  echo PID1 $(cat /proc/1/comm); exit 5";
    let (st, out) = run(
        &fx,
        "init",
        &sh(script),
        Opts {
            init: true,
            ..Opts::default()
        },
    )
    .unwrap();
    assert_eq!(st.code(), 5, "{out}");
    assert_eq!(field(&out, "ZOMBIES"), "0", "{out}");
    assert_ne!(field(&out, "PID1"), "sh");
    let e = run(
        &fx,
        "init2",
        &spec(&["nosuch"]),
        Opts {
            init: true,
            ..Opts::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 127);
}

#[test]
fn two_hundred_cycles_leave_nothing_behind() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let fds_before = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let s = spec(&["/bin/true"]);
    for i in 0..200 {
        let (st, _) = run(
            &fx,
            &format!("loop{}", i % 4),
            &s,
            Opts {
                cgroup: i % 2 == 0,
                ..Opts::default()
            },
        )
        .unwrap();
        assert_eq!(st.code(), 0);
    }
    let fds_after = std::fs::read_dir("/proc/self/fd").unwrap().count();
    assert_eq!(fds_before, fds_after, "descriptor leak");
    let mut st = 0;
    // SAFETY: non-blocking probe for unreaped children.
    let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
    assert!(r <= 0, "an unreaped child {r} remained");
}

#[test]
fn bind_mounts_apply_in_order_with_their_flags() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let host = fx.dir.path().join("hostdata");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("hello"), "from-host\n").unwrap();
    let file = fx.dir.path().join("single");
    std::fs::write(&file, "one-file\n").unwrap();
    let mut s = sh("cat /data/hello /etc/single; touch /data/x 2>/dev/null && echo DATA_RW; \
                    touch /rw/y && echo RW_OK; grep -E ' /(data|rw|etc/single) ' /proc/self/mountinfo | cut -d' ' -f5,6");
    let mut mounts = s.mounts().clone().unwrap();
    let bind = |src: &std::path::Path, dst: &str, opts: &[&str]| {
        oci_spec::runtime::MountBuilder::default()
            .destination(dst)
            .typ("bind")
            .source(src)
            .options(opts.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    };
    mounts.push(bind(&host, "/data", &["rbind", "ro"]));
    mounts.push(bind(&host, "/rw/deep/er/..", &["rbind"]));
    s.set_mounts(Some(mounts.clone()));
    assert!(
        run(&fx, "bind0", &s, Opts::default()).is_err(),
        "a destination with .. is refused"
    );
    mounts.pop();
    mounts.push(bind(&fx.dir.path().join("absent"), "/gone", &["rbind"]));
    s.set_mounts(Some(mounts.clone()));
    let e = run(&fx, "bind1", &s, Opts::default()).unwrap_err();
    assert_eq!(e.exit_code(), 125);
    assert!(
        e.to_string().contains("/gone"),
        "the error names the mount: {e}"
    );
    mounts.pop();
    mounts.push(bind(&host, "/rw", &["rbind", "rw"]));
    mounts.push(bind(&file, "/etc/single", &["bind", "ro"]));
    s.set_mounts(Some(mounts));
    let (st, out) = run(&fx, "bind", &s, Opts::default()).unwrap();
    assert_eq!(st.code(), 0, "{out}");
    assert!(
        out.contains("from-host") && out.contains("one-file"),
        "{out}"
    );
    assert!(
        !out.contains("DATA_RW"),
        "ro bind mount was writable: {out}"
    );
    assert!(out.contains("RW_OK") && host.join("y").exists(), "{out}");
    assert!(out.contains("/data ro,"), "{out}");
}

#[test]
fn host_and_joined_network_namespaces() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let s = sh("readlink /proc/self/ns/net");
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let (_, out) = run(
        &fx,
        "hostnet",
        &s,
        Opts {
            network: Network::Host,
            ..Opts::default()
        },
    )
    .unwrap();
    assert_eq!(out.trim(), host_ns.to_string_lossy());
    let c = start(
        &fx,
        "netowner",
        &spec(&["sleep", "30"]),
        gcr_runtime::Stdio::Inherit,
        false,
    );
    let owner_ns = std::fs::read_link(format!("/proc/{}/ns/net", c.pid())).unwrap();
    assert_ne!(owner_ns, host_ns);
    let join = Network::Join(format!("/proc/{}/ns/net", c.pid()).into());
    let (_, out) = run(
        &fx,
        "joiner",
        &s,
        Opts {
            network: join,
            ..Opts::default()
        },
    )
    .unwrap();
    assert_eq!(out.trim(), owner_ns.to_string_lossy());
    drop(c);
    fx.assert_no_mounts();
}

#[test]
fn network_namespace_made_ahead_is_joined_with_lo_up() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let pending = gcr_runtime::LoopbackNetns::start();
    let fd = pending.wait().unwrap();
    let made = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(
        made, host_ns,
        "the helper thread's namespace must be a new one"
    );
    let s = sh("readlink /proc/self/ns/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags; ls /sys/class/net");
    let (_, out) = run(
        &fx,
        "aheadnet",
        &s,
        Opts {
            network: Network::JoinFd(fd),
            ..Opts::default()
        },
    )
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], made.to_string_lossy(), "{out}");
    // lo is up (IFF_UP = 0x1) and is the only interface.
    let flags = u32::from_str_radix(lines[2].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "{out}");
    assert_eq!(lines[3], "lo", "{out}");
    // The calling thread stayed in the host's namespace.
    assert_eq!(std::fs::read_link("/proc/self/ns/net").unwrap(), host_ns);
    fx.assert_no_mounts();
}

#[test]
fn plain_directory_root_is_bind_mounted() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    let mut s = sh("echo HOST $(hostname); ls /notexec; touch /x 2>/dev/null || echo RO");
    let mut root = s.root().clone().unwrap();
    root.set_readonly(Some(true));
    s.set_root(Some(root));
    let (w_r, w, w2) = out_pipe();
    let running = gcr_runtime::spawn(gcr_runtime::Launch {
        id: "unused",
        spec: &s,
        rootfs: gcr_runtime::Rootfs::Path(fx.lower.clone()),
        stdio: gcr_runtime::Stdio::Fds {
            stdin: None,
            stdout: w,
            stderr: w2,
        },
        seccomp: SeccompMode::DockerDefault,
        init: false,
        cgroup_resources: None,
        network: Network::NewLoopback,
        while_starting: None,
        gate: false,
        secrets: Vec::new(),
    })
    .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut { w_r }, &mut out).unwrap();
    assert_eq!(gcr_runtime::wait_exit(&running).unwrap().code(), 0, "{out}");
    assert!(
        out.contains("HOST gcrtest") && out.contains("/notexec") && out.contains("RO"),
        "{out}"
    );
    assert!(!fx.lower.join("x").exists());
    fx.assert_no_mounts();
}

/// Starts `sh -c 'echo ran'` with `while_starting` = `work`; returns spawn's result, what
/// the command printed, and whether it had printed anything before `work` returned.
fn start_with_work(
    fx: &Fixture,
    name: &str,
    answer: bool,
) -> (Result<(), RuntimeError>, String, bool) {
    let s = sh("echo ran");
    let (mut out_r, w, w2) = out_pipe();
    let early = std::cell::Cell::new(false);
    let fd = out_r.as_raw_fd();
    let work = Box::new(|_pid: i32| {
        // The child's setup takes a few ms: a command let through would print by now.
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd on the stack.
        early.set(unsafe { libc::poll(&mut p, 1, 400) } > 0);
        answer
    });
    let res = gcr_runtime::spawn(gcr_runtime::Launch {
        id: &format!("gcrtest-{}-{name}", std::process::id()),
        spec: &s,
        rootfs: fx.rootfs(name),
        stdio: gcr_runtime::Stdio::Fds {
            stdin: None,
            stdout: w,
            stderr: w2,
        },
        seccomp: SeccompMode::DockerDefault,
        init: false,
        cgroup_resources: None,
        network: Network::NewLoopback,
        while_starting: Some(work),
        gate: false,
        secrets: Vec::new(),
    });
    let res = res.map(|running| {
        assert_eq!(gcr_runtime::wait_exit(&running).unwrap().code(), 0);
    });
    let mut out = String::new();
    std::io::Read::read_to_string(&mut out_r, &mut out).unwrap();
    (res, out, early.get())
}

#[test]
fn the_command_waits_for_the_callers_work() {
    if !need_root() {
        return;
    }
    let fx = Fixture::new();
    // The engine records the container meanwhile: the command runs only after that.
    let (res, out, early) = start_with_work(&fx, "waits", true);
    assert!(res.is_ok(), "{res:?}");
    assert!(!early, "the command ran before the caller's work was done");
    assert_eq!(out, "ran\n");
    // Work that fails: the command never runs.
    let (res, out, early) = start_with_work(&fx, "cancelled", false);
    assert!(matches!(res, Err(RuntimeError::Cancelled)), "{res:?}");
    assert!(!early);
    assert_eq!(out, "");
    fx.assert_no_mounts();
}
