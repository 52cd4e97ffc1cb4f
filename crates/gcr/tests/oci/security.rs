//! gcr-runc's security fields and exec, side by side with runc: the config's seccomp
//! profile, the five capability sets, sysctl, and exec into a running container.

use serde_json::json;

use super::{common, same, state, Bundle};

/// Syscalls busybox `sh`/`true` and both runtimes' last steps (after the filter is in,
/// before execve) need: an allow list under a default of SCMP_ACT_ERRNO.
const ALLOW: &[&str] = &[
    "access",
    "arch_prctl",
    "brk",
    "capget",
    "capset",
    "chdir",
    "close",
    "close_range",
    "dup2",
    "dup3",
    "epoll_ctl",
    "epoll_pwait",
    "execve",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fchdir",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getpid",
    "getppid",
    "getrlimit",
    "gettid",
    "getuid",
    "ioctl",
    "lseek",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "prctl",
    "pread64",
    "prlimit64",
    "read",
    "readlink",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_getaffinity",
    "sched_yield",
    "set_robust_list",
    "set_tid_address",
    "setgid",
    "setgroups",
    "setresgid",
    "setresuid",
    "setuid",
    "sigaltstack",
    "stat",
    "statx",
    "tgkill",
    "umask",
    "uname",
    "write",
    "writev",
    "getrandom",
    "fchown",
    "fchmod",
    "mknodat",
    "pipe2",
    "wait4",
    "clone",
    "vfork",
];

#[test]
fn seccomp_matches_runc() {
    if !common::need_root("seccomp_matches_runc") {
        return;
    }
    let mut b = Bundle::new();
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}
            ]
        });
    });
    let (code, out) = same(
        &mut b,
        "mkdir",
        &[
            "sh",
            "-c",
            "mkdir /x 2>&1; echo $?; touch /y && echo touched",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "mkdir: can't create directory '/x': Operation not permitted\n1\ntouched"
    );
    // Default errno, with an allow list that lets busybox run.
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "syscalls": [{"names": ALLOW, "action": "SCMP_ACT_ALLOW"}]
        });
    });
    assert_eq!(same(&mut b, "allow", &["/bin/true"]).0, 0);
    let (code, out) = same(&mut b, "denied", &["sh", "-c", "mkdir /z 2>&1; exit 4"]);
    assert_eq!(code, 4);
    assert!(out.contains("Function not implemented"), "{out}");
    // containerd's default profile shape: clone allowed only without namespace flags
    // (masked ==), socket only for families other than AF_VSOCK (!=).
    let allow: Vec<&str> = ALLOW.iter().copied().filter(|n| *n != "clone").collect();
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": allow, "action": "SCMP_ACT_ALLOW"},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]
        });
    });
    let (code, out) = same(
        &mut b,
        "containerd",
        &["sh", "-c", "echo $(echo sub); unshare -n true 2>&1; exit 0"],
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("sub\n"), "{out}");
    assert!(out.contains("not permitted"), "{out}");
    // The order operators, side by side with runc (one comparison per argument in a rule:
    // libseccomp keeps only one of two on the same argument): kill(2) is refused for
    // signal >= 10 to pid <= 1 (SIGUSR1 to the shell, pid 1) and for signal > 14 to
    // pid < 2 (SIGTERM to it); signal 0 to it, and SIGTERM to a child, pass.
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                          "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_GE"},
                                   {"index": 0, "value": 1, "op": "SCMP_CMP_LE"}]},
                         {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                          "args": [{"index": 1, "value": 14, "op": "SCMP_CMP_GT"},
                                   {"index": 0, "value": 2, "op": "SCMP_CMP_LT"}]}]
        });
    });
    let (code, out) = same(
        &mut b,
        "order",
        &[
            "sh",
            "-c",
            "kill -USR1 $$ 2>/dev/null && echo usr1-sent || echo usr1-denied; \
             kill -TERM $$ 2>/dev/null && echo term-sent || echo term-denied; \
             kill -0 $$ && echo zero-sent; \
             sleep 100 & kill -TERM $! && echo child-term-sent; wait $!; echo child=$?",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(
        out, "usr1-denied\nterm-denied\nzero-sent\nchild-term-sent\nchild=143",
        "{out}"
    );
    // SCMP_ACT_TRACE with no tracer: the syscall fails with ENOSYS, as with runc.
    let profile = |flags: serde_json::Value| {
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": flags,
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE"},
                         {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        })
    };
    let probe = "mkdir /tmp/t 2>&1; rmdir /tmp 2>&1; grep -E '^Seccomp(_filters)?:' /proc/self/status; exit 5";
    b.edit(|c| c["linux"]["seccomp"] = profile(json!([])));
    let (code, out) = same(&mut b, "trace", &["sh", "-c", probe]);
    let want = "mkdir: can't create directory '/tmp/t': Function not implemented\n\
                rmdir: '/tmp': Operation not permitted\nSeccomp:\t2\nSeccomp_filters:\t1";
    assert_eq!((code, out.as_str()), (5, want));
    // flags (LOG, SPEC_ALLOW, TSYNC): runc 1.1 refuses any ("not yet supported"), as
    // runc 1.2 gcr-runc takes them; the filter still applies.
    b.edit(|c| {
        c["linux"]["seccomp"] = profile(json!([
            "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_TSYNC"
        ]))
    });
    b.args(|c| c["process"]["args"] = json!(["sh", "-c", probe]));
    let [gcr, runc] = b.run_both("flags");
    assert_eq!(gcr, (5, want.to_string()));
    assert_ne!(runc.0, 0, "runc 1.1 refuses seccomp flags: {runc:?}");
}

#[test]
fn capability_sets_match_runc() {
    if !common::need_root("capability_sets_match_runc") {
        return;
    }
    let mut b = Bundle::new();
    let caps = |v: &[&str]| json!(v.iter().map(|c| format!("CAP_{c}")).collect::<Vec<_>>());
    b.edit(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": caps(&["CHOWN", "KILL", "NET_BIND_SERVICE", "SETUID", "SETGID", "SYS_ADMIN"]),
            "permitted": caps(&["CHOWN", "KILL", "NET_BIND_SERVICE", "SYS_ADMIN"]),
            "effective": caps(&["CHOWN", "KILL"]),
            "inheritable": caps(&["KILL", "NET_BIND_SERVICE"]),
            "ambient": caps(&["NET_BIND_SERVICE"]),
        });
    });
    let (code, out) = same(&mut b, "caps", &["grep", "Cap", "/proc/self/status"]);
    assert_eq!(code, 0);
    // CHOWN=0 KILL=5 SETGID=6 SETUID=7 NET_BIND_SERVICE=10 SYS_ADMIN=21. Root's execve
    // would raise permitted to the bounding set, but runc's spec sets noNewPrivileges, so
    // permitted stays as given and effective follows it.
    assert_eq!(
        out,
        "CapInh:\t0000000000000420\nCapPrm:\t0000000000200421\nCapEff:\t0000000000200421\n\
         CapBnd:\t00000000002004e1\nCapAmb:\t0000000000000400"
    );
    // A non-root user keeps only the ambient set across execve; missing sets are empty.
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({
            "bounding": caps(&["KILL", "NET_RAW"]),
            "permitted": caps(&["KILL", "NET_RAW"]),
            "inheritable": caps(&["NET_RAW"]),
            "ambient": caps(&["NET_RAW"]),
        });
    });
    let (code, out) = same(&mut b, "caps-user", &["grep", "Cap", "/proc/self/status"]);
    assert_eq!(code, 0);
    assert!(out.contains("CapAmb:\t0000000000002000"), "{out}");
}

#[test]
fn exec_matches_runc() {
    if !common::need_root("exec_matches_runc") {
        return;
    }
    let mut b = Bundle::new();
    b.edit(|c| {
        c["process"]["args"] = json!(["sleep", "30"]);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let bundle = b.path().to_str().unwrap().to_string();
    let proc_file = b.path().join("process.json");
    std::fs::write(
        &proc_file,
        json!({"args": ["sh", "-c", "echo $X; exit 7"], "cwd": "/", "env": ["PATH=/bin", "X=file"],
               "user": {"uid": 0, "gid": 0}})
        .to_string(),
    )
    .unwrap();
    let mut results = Vec::new();
    for w in ["gcr", "runc"] {
        let id = format!("exec-{w}");
        b.ids.push(format!("{w}:{id}"));
        assert!(
            b.detached(w, &["run", "-d", "--bundle", &bundle, &id]),
            "{w} run -d"
        );
        let out = b.tool(
            w,
            &[
                "exec",
                "-e",
                "FOO=bar",
                "--cwd",
                "/tmp",
                "-u",
                "1000:1001",
                "--cap",
                "CAP_NET_RAW",
                &id,
                "sh",
                "-c",
                "echo $FOO $(pwd) $(id -u) $(id -g) $(cat /proc/1/comm); mkdir /tmp/x 2>&1; \
                 grep CapBnd /proc/self/status; exit 5",
            ],
        );
        let fg = (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        );
        let out = b.tool(w, &["exec", "--process", proc_file.to_str().unwrap(), &id]);
        let file = (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        );
        // Detached, with a pid file: the process is in the container's pid namespace.
        let pidf = b.path().join(format!("{w}-exec.pid"));
        assert!(
            b.detached(
                w,
                &[
                    "exec",
                    "-d",
                    "--pid-file",
                    pidf.to_str().unwrap(),
                    &id,
                    "sleep",
                    "2"
                ]
            ),
            "{w} exec -d"
        );
        let pid = std::fs::read_to_string(&pidf).unwrap().trim().to_string();
        let init = state(&b, w, &id)["pid"].as_i64().unwrap();
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
        assert_eq!(
            ns(&pid),
            ns(&init.to_string()),
            "{w}: exec -d pid namespace"
        );
        assert!(b.tool(w, &["kill", &id, "KILL"]).status.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while state(&b, w, &id)["status"] != "stopped" {
            assert!(std::time::Instant::now() < deadline, "{w}: not stopped");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let stopped = b.tool(w, &["exec", &id, "true"]).status.code();
        if w == "gcr" {
            let log = std::fs::read_to_string(b.path().join("gcr.log")).unwrap();
            assert!(log.contains("is stopped"), "{log}");
        }
        results.push((fg, file, stopped));
    }
    assert_eq!(results[0], results[1], "gcr-runc vs runc");
    let (fg, file, stopped) = &results[0];
    assert_eq!(fg.0, Some(5));
    assert_eq!(
        fg.1,
        "bar /tmp 1000 1001 sleep\nmkdir: can't create directory '/tmp/x': Operation not permitted\n\
         CapBnd:\t0000000020002420"
    );
    assert_eq!(*file, (Some(7), "file".to_string()));
    // runc's exec exits 255 on its own errors.
    assert_eq!(*stopped, Some(255));
}

#[test]
fn sysctl_matches_runc() {
    if !common::need_root("sysctl_matches_runc") {
        return;
    }
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456",
                                      "net/ipv4/tcp_syncookies": "0"});
    });
    let (code, out) = same(
        &mut b,
        "sysctl",
        &[
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/kernel/shmmax",
            "/proc/sys/net/ipv4/tcp_syncookies",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "1\n123456\n0");
    // The host's values are untouched.
    let host = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    assert_ne!(host.trim(), "123456");
    // Not namespaced: both refuse.
    b.edit(|c| c["linux"]["sysctl"] = json!({"vm.swappiness": "10"}));
    let (code, _) = same(&mut b, "sysctl-bad", &["true"]);
    assert_ne!(code, 0);
    let log = std::fs::read_to_string(b.path().join("gcr.log")).unwrap();
    assert!(log.contains("vm.swappiness"), "{log}");
    assert!(!b.path().join("state-gcr/sysctl-bad-gcr").exists());
}

#[test]
fn device_rules_hold_for_the_process_and_for_exec_like_runc() {
    if !common::need_root("device_rules_hold_for_the_process_and_for_exec_like_runc") {
        return;
    }
    if !std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(" - cgroup ") && l.split(',').any(|o| o.starts_with("devices")))
    {
        eprintln!("skipped: no v1 devices hierarchy on this host (the field is refused on v2)");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI host without v1 devices"
        );
        return;
    }
    let mut b = Bundle::new();
    let bundle = b.path().to_str().unwrap().to_string();
    // Deny all, then the defaults both runtimes add: /dev/full (1:7) is one of them, a
    // device node made for 1:11 (kmsg) is not.
    let probe =
        "mknod /tmp/k c 1 11; cat /tmp/k >/dev/null 2>&1 && echo kmsg-open || echo kmsg-denied; \
                 head -c1 /dev/full | wc -c; grep -c devices:/oci-dev/ /proc/self/cgroup";
    let mut results = Vec::new();
    for w in ["gcr", "runc"] {
        let id = format!("dev-{w}");
        b.edit(|c| {
            c["process"]["args"] = json!(["sh", "-c", format!("{probe}; sleep 30")]);
            c["process"]["capabilities"]["bounding"]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
            c["process"]["capabilities"]["effective"]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
            c["process"]["capabilities"]["permitted"]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
            c["linux"]["cgroupsPath"] = json!(format!("/oci-dev/{id}"));
            c["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
        });
        b.ids.push(format!("{w}:{id}"));
        let out_file = b.path().join(format!("{w}.out"));
        // The container's stdout goes to a file (a pipe would stay open while it runs).
        let status = std::process::Command::new(if w == "gcr" {
            b.link.clone()
        } else {
            "runc".into()
        })
        .arg("--root")
        .arg(b.path().join(format!("state-{w}")))
        .args(["run", "-d", "--bundle", &bundle, &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
        assert!(status.success(), "{w} run -d");
        let exec = b.tool(w, &["exec", &id, "sh", "-c", probe]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut init = String::new();
        while init.lines().count() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            init = std::fs::read_to_string(&out_file).unwrap();
        }
        assert!(b.tool(w, &["kill", &id, "KILL"]).status.success());
        results.push((
            init.trim().to_string(),
            exec.status.code(),
            String::from_utf8_lossy(&exec.stdout).trim().to_string(),
        ));
    }
    assert_eq!(results[0], results[1], "gcr-runc vs runc");
    let (init, code, exec) = &results[0];
    assert_eq!(init, "kmsg-denied\n1\n1", "the container's process");
    assert_eq!(
        (*code, exec.as_str()),
        (Some(0), "kmsg-denied\n1\n1"),
        "exec"
    );
}
