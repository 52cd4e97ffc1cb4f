//! `gcr run` end to end: exit codes and what a process inside a container can and cannot do.

mod common;
use common::*;

fn sh(env: &Env, script: &str) -> std::process::Output {
    env.gcr(&["run", "--rm", IMAGE, "sh", "-c", script])
}

#[test]
fn exit_codes_follow_docker() {
    if !need_root("exit_codes_follow_docker") {
        return;
    }
    let env = Env::new();
    assert_eq!(
        env.gcr(&["run", "--rm", IMAGE, "/bin/true"]).status.code(),
        Some(0)
    );
    assert_eq!(sh(&env, "exit 3").status.code(), Some(3));
    let o = env.gcr(&["run", "--rm", IMAGE, "/no/such/binary"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stderr(&o).contains("/no/such/binary"), "{}", stderr(&o));
    let o = env.gcr(&["run", "--rm", IMAGE, "nosuchcommand"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let o = env.gcr(&["run", "--rm", IMAGE, "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    let o = env.gcr(&["run", "--rm", "nosuch/image:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("nosuch/image:1"), "{}", stderr(&o));
    let o = env.gcr(&["run", "--rm", "--memory", "12XB", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--memory"), "{}", stderr(&o));
    let o = env.gcr(&["run", "--rm", "--restart", "sometimes", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125));
    // A process killed by a signal reports 128 + signal.
    assert_eq!(
        sh(&env, "sh -c 'kill -9 $$'; exit $?").status.code(),
        Some(137)
    );
    // Failed runs leave no container behind.
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn output_env_workdir_user_hostname() {
    if !need_root("output_env_workdir_user_hostname") {
        return;
    }
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "app",
        "--hostname",
        "box",
        IMAGE,
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u):$(id -g) $(hostname)",
    ]);
    assert_eq!(out.trim(), "bar /tmp 1000:1000 box");
    let out = env.ok(&["run", "--rm", "-u", "5:7", IMAGE, "id"]);
    assert!(out.starts_with("uid=5 gid=7"), "{out}");
    let o = env.gcr(&["run", "--rm", "-u", "nobodyhere", IMAGE, "id"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("nobodyhere"), "{}", stderr(&o));
}

#[test]
fn cannot_see_or_touch_the_host() {
    if !need_root("cannot_see_or_touch_the_host") {
        return;
    }
    let env = Env::new();
    // Only the container's own processes are visible.
    let out = env.ok(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "ls /proc | grep -c '^[0-9]'",
    ]);
    assert!(
        out.trim().parse::<u32>().unwrap() <= 3,
        "saw host pids: {out}"
    );
    // No mounting, no module loading, no writes to /proc/sys or /sys.
    assert!(!sh(&env, "mount -t tmpfs x /mnt").status.success());
    assert!(!sh(&env, "echo x > /proc/sys/kernel/hostname")
        .status
        .success());
    assert!(!sh(&env, "echo 1 > /sys/kernel/profiling").status.success());
    assert!(!sh(&env, "insmod /nonexistent.ko || modprobe dummy")
        .status
        .success());
    // Only the allowed device nodes.
    let out = env.ok(&["run", "--rm", IMAGE, "ls", "/dev"]);
    for dev in out.split_whitespace() {
        assert!(
            [
                "null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "mqueue",
                "fd", "stdin", "stdout", "stderr", "console"
            ]
            .contains(&dev),
            "unexpected /dev entry {dev}"
        );
    }
    assert!(!sh(&env, "mknod /tmp/sda b 8 0 && cat /tmp/sda")
        .status
        .success());
    // A node the container makes (CAP_MKNOD is Docker's default) cannot be opened: not on
    // the root, in /dev, in a volume or in a bind; not the host's real block devices.
    // Only the host's own nodes bound in /dev work. (Fails with a dev-enabled mount.)
    let disk = std::fs::read_dir("/sys/class/block")
        .unwrap()
        .flatten()
        .find_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .expect("a block device on the host");
    let (major, minor) = disk.trim().split_once(':').unwrap();
    let bind = tempfile::tempdir().unwrap();
    let vol_bind = format!("{}:/b", bind.path().display());
    for dir in ["/tmp", "/dev", "/v", "/b"] {
        let script = format!(
            "mknod {dir}/n c 1 3 && mknod {dir}/d b {major} {minor} && \
             for n in {dir}/n {dir}/d; do (exec 3<$n) 2>&1; done; echo x > /dev/null && echo ok"
        );
        let out = env.ok(&[
            "run", "--rm", "-v", "vol:/v", "-v", &vol_bind, IMAGE, "sh", "-c", &script,
        ]);
        assert_eq!(
            out.matches("Permission denied").count(),
            2,
            "{dir}: a node made there could be opened: {out}"
        );
        assert!(out.ends_with("ok\n"), "{out}");
    }
    // No inherited host descriptors: only 0, 1, 2 (and ls's own directory fd).
    let out = env.ok(&["run", "--rm", IMAGE, "ls", "/proc/self/fd"]);
    let fds: Vec<u32> = out
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    assert!(fds.iter().all(|&f| f <= 3), "leaked fds: {fds:?}");
    // Docker's default capabilities and an active seccomp filter.
    let out = env.ok(&[
        "run",
        "--rm",
        IMAGE,
        "grep",
        "-E",
        "CapEff|Seccomp:",
        "/proc/self/status",
    ]);
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    // Masked paths are empty.
    let masked = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
    ];
    let present: Vec<&str> = masked
        .iter()
        .copied()
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    assert!(
        !present.is_empty(),
        "none of {masked:?} exists on this host"
    );
    let script = present
        .iter()
        .map(|p| format!("wc -c < {p};"))
        .collect::<String>();
    let out = env.ok(&["run", "--rm", IMAGE, "sh", "-c", &script]);
    assert!(
        out.split_whitespace().all(|n| n == "0"),
        "masked paths readable: {out}"
    );
}

#[test]
fn capability_and_security_flags() {
    if !need_root("capability_and_security_flags") {
        return;
    }
    let env = Env::new();
    let eff = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[
            IMAGE,
            "grep",
            "-E",
            "CapEff|NoNewPrivs|Seccomp:",
            "/proc/self/status",
        ]);
        env.ok(&a)
    };
    // Dropping CHOWN (bit 0) clears the lowest bit.
    assert!(eff(&["--cap-drop", "CHOWN"]).contains("CapEff:\t00000000a80425fa"));
    // NET_ADMIN is bit 12.
    assert!(eff(&["--cap-add", "NET_ADMIN"]).contains("CapEff:\t00000000a80435fb"));
    assert!(eff(&["--security-opt", "no-new-privileges"]).contains("NoNewPrivs:\t1"));
    let p = eff(&["--privileged"]);
    assert!(p.contains("Seccomp:\t0"), "{p}");
    assert!(!p.contains("CapEff:\t00000000a80425fb"), "{p}");
    // --read-only refuses writes to the root filesystem.
    assert!(!env
        .gcr(&["run", "--rm", "--read-only", IMAGE, "touch", "/x"])
        .status
        .success());
    assert!(env
        .gcr(&["run", "--rm", IMAGE, "touch", "/x"])
        .status
        .success());
}

#[test]
fn leaked_cwd_cve_2024_21626_fails() {
    if !need_root("leaked_cwd_cve_2024_21626_fails") {
        return;
    }
    let env = Env::new();
    for fd in 3..10 {
        let dir = format!("/proc/self/fd/{fd}");
        let o = env.gcr(&[
            "run",
            "--rm",
            "-w",
            &dir,
            IMAGE,
            "sh",
            "-c",
            "ls ../../../../etc/shadow 2>/dev/null && cat /proc/1/cwd/../../../etc/hostname; pwd",
        ]);
        let out = stdout(&o);
        assert!(
            !out.contains("shadow"),
            "-w {dir} reached a host directory: {out}"
        );
    }
}

#[test]
fn init_reaps_and_forwards() {
    if !need_root("init_reaps_and_forwards") {
        return;
    }
    let env = Env::new();
    // The reaper shows itself as gcr-init, not as the copy of the caller it is (whose
    // command line names the store).
    let out = env.ok(&[
        "run",
        "--rm",
        "--init",
        IMAGE,
        "sh",
        "-c",
        "echo $$; cat /proc/1/comm; tr '\\0' ' ' < /proc/1/cmdline; echo; \
         (sleep 0.1 &); sleep 0.2; ps -o stat | grep -c Z || true",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "2",
        "the command must not be pid 1 with --init: {out}"
    );
    assert_eq!(lines[1], "gcr-init", "{out}");
    assert_eq!(lines[2].trim_end(), "gcr-init", "{out}");
    assert_eq!(lines.last().unwrap().trim(), "0", "zombies left: {out}");
    assert_eq!(
        env.gcr(&["run", "--rm", "--init", IMAGE, "sh", "-c", "exit 4"])
            .status
            .code(),
        Some(4)
    );
}

#[test]
fn resources_and_oom() {
    if !need_root("resources_and_oom") {
        return;
    }
    let env = Env::new();
    let out = env.gcr(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        IMAGE,
        "sh",
        "-c",
        "x=a; while :; do x=$x$x$x$x; done",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let doc = env.ok(&["inspect", "hog"]);
    assert!(doc.contains("\"OOMKilled\": true"), "{doc}");
    env.ok(&["rm", "hog"]);
    // pids limit: forking beyond it fails.
    let o = env.gcr(&[
        "run",
        "--rm",
        "--pids-limit",
        "5",
        IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait",
    ]);
    assert!(
        stderr(&o).contains("fork") || !o.status.success(),
        "{}",
        stderr(&o)
    );
}

#[test]
fn runtime_binary_cannot_be_overwritten_cve_2019_5736() {
    if !need_root("runtime_binary_cannot_be_overwritten_cve_2019_5736") {
        return;
    }
    let env = Env::new();
    let bin = gcr_bin();
    let before = std::fs::read(&bin).unwrap();
    // The attacker opens /proc/PID/exe of every process that is not its own busybox, keeps
    // an O_PATH-like handle via /proc/self/fd, and tries to write through it.
    let attack = r#"while :; do for p in /proc/[0-9]*; do
        t=$(readlink $p/exe 2>/dev/null) || t=unreadable
        case "$t" in /bin/busybox) continue;; esac
        if (echo pwned >> $p/exe) 2>/dev/null; then echo "WROTE $p $t"; fi
        (exec 9<$p/exe && f=$(readlink /proc/self/fd/9) && [ "$f" != /bin/busybox ] && echo "OPENED $p $f" && echo pwned >> /proc/self/fd/9 && echo "WROTE-FD $p") 2>/dev/null
    done; done"#;
    env.ok(&["run", "-d", "--name", "attacker", IMAGE, "sh", "-c", attack]);
    for _ in 0..30 {
        let o = env.gcr(&["exec", "attacker", "/bin/true"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let logs = env.ok(&["logs", "attacker"]);
    env.ok(&["rm", "-f", "attacker"]);
    assert!(
        !logs.contains("WROTE"),
        "the container wrote through a runtime exe link: {logs}"
    );
    assert!(
        !logs.contains("OPENED"),
        "the container opened the runtime binary: {logs}"
    );
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        before,
        "the gcr binary changed"
    );
}

#[test]
fn foreground_run_forwards_signals_to_the_container() {
    if !need_root("foreground_run_forwards_signals_to_the_container") {
        return;
    }
    let env = Env::new();
    let mut child = env
        .cmd(&[
            "run",
            "--rm",
            "--name",
            "fg",
            IMAGE,
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start gcr run");
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut buf).expect("the container printed ready");
    assert_eq!(&buf, b"ready\n");
    assert!(eventually(5, || env.ok(&["ps"]).contains("fg")));
    // SAFETY: signalling the gcr process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(42), "the container's own exit code");
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "", "--rm removed it");
}
