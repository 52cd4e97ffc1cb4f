//! `gcr run` flags a Docker user reaches for (issue 19, item 7): `--mount`, `--pid`,
//! `--ipc`, `--uts`, `--network container:X`, `--sysctl`, `--device` and the memory and
//! block I/O tuning flags (the rest of the
//! run surface is in docker_run_io.rs).

mod common;

use common::{block_device, group_file, need_root, stderr, stdout, Env, IMAGE};

#[test]
fn mount_flag_binds_volumes_and_tmpfs() {
    if !need_root("mount_flag_binds_volumes_and_tmpfs") {
        return;
    }
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "from the host\n").unwrap();
    let bind = format!(
        "type=bind,source={},target=/b,readonly",
        host.path().display()
    );
    let out = env.gcr(&[
        "run",
        "--rm",
        "--mount",
        &bind,
        IMAGE,
        "sh",
        "-c",
        "cat /b/f; touch /b/g",
    ]);
    assert_eq!(stdout(&out), "from the host\n");
    assert!(!out.status.success(), "a readonly bind was writable");
    assert!(!host.path().join("g").exists());
    // A volume by --mount, seen again by a second container.
    env.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=mvol,dst=/v",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /v/x",
    ]);
    let out = env.ok(&[
        "run",
        "--rm",
        "--mount",
        "source=mvol,target=/v",
        IMAGE,
        "cat",
        "/v/x",
    ]);
    assert_eq!(out, "kept\n");
    assert!(env.ok(&["volume", "ls", "-q"]).contains("mvol"));
    // A tmpfs with its size and mode.
    let out = env.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=700",
        IMAGE,
        "sh",
        "-c",
        "grep ' /t ' /proc/mounts; stat -c %a /t",
    ]);
    assert!(out.contains("tmpfs") && out.contains("size=1024k"), "{out}");
    assert!(out.ends_with("700\n"), "{out}");
    // Propagation is kept and shown.
    let b = format!(
        "type=bind,src={},dst=/p,bind-propagation=rslave",
        host.path().display()
    );
    env.ok(&["create", "--name", "mprop", "--mount", &b, IMAGE, "true"]);
    let doc: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "mprop"])).unwrap();
    assert_eq!(doc[0]["Mounts"][0]["Propagation"], "rslave", "{doc}");
    // Docker's refusals: a missing bind source is never created, unknown keys are named.
    let missing = host.path().join("missing");
    let m = format!("type=bind,source={},target=/m", missing.display());
    let out = env.gcr(&["run", "--rm", "--mount", &m, IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!missing.exists());
    env.fails(
        &[
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,target=/t,color=red",
            IMAGE,
            "true",
        ],
        "color is not supported",
    );
    env.fails(
        &["run", "--rm", "--mount", "type=volume,src=v", IMAGE, "true"],
        "target is required",
    );
    env.fails(
        &[
            "run",
            "--rm",
            "-v",
            "aa:/same",
            "--mount",
            "type=volume,src=bb,dst=/same",
            IMAGE,
            "true",
        ],
        "two mounts on /same",
    );
}

/// `readlink /proc/self/ns/KIND` in a container run with `flags`.
fn ns_of(env: &Env, flags: &[&str], kind: &str) -> String {
    let path = format!("/proc/self/ns/{kind}");
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[IMAGE, "readlink", &path]);
    env.ok(&args).trim().to_string()
}

#[test]
fn namespaces_shared_with_the_host_or_another_container() {
    if !need_root("namespaces_shared_with_the_host_or_another_container") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--hostname",
        "donorhost",
        IMAGE,
        "sh",
        "-c",
        "echo shared > /dev/shm/seg; exec sleep 1000",
    ]);
    let donor = |kind: &str| {
        env.ok(&[
            "exec",
            "donor",
            "readlink",
            &format!("/proc/self/ns/{kind}"),
        ])
        .trim()
        .to_string()
    };
    let host = |kind: &str| {
        std::fs::read_link(format!("/proc/self/ns/{kind}"))
            .unwrap()
            .display()
            .to_string()
    };
    // Private by default: neither the host's nor the donor's.
    for kind in ["pid", "ipc", "uts", "net"] {
        let own = ns_of(&env, &[], kind);
        assert_ne!(own, host(kind), "{kind}");
        assert_ne!(own, donor(kind), "{kind}");
    }
    assert_eq!(
        ns_of(&env, &["--pid", "container:donor"], "pid"),
        donor("pid")
    );
    assert_eq!(
        ns_of(&env, &["--ipc", "container:donor"], "ipc"),
        donor("ipc")
    );
    assert_eq!(
        ns_of(&env, &["--network", "container:donor"], "net"),
        donor("net")
    );
    assert_eq!(ns_of(&env, &["--pid", "host"], "pid"), host("pid"));
    assert_eq!(ns_of(&env, &["--ipc", "host"], "ipc"), host("ipc"));
    assert_eq!(ns_of(&env, &["--uts", "host"], "uts"), host("uts"));
    // --userns host: the host's user namespace (gcr remaps none, as dockerd without
    // --userns-remap), shown in inspect; any other mode is refused by name.
    assert_eq!(ns_of(&env, &["--userns", "host"], "user"), host("user"));
    env.fails(
        &["run", "--rm", "--userns", "keep-id", IMAGE, "true"],
        "invalid --userns 'keep-id'",
    );
    // What sharing means: the donor's processes, its /dev/shm, its name.
    let ps = env.ok(&["run", "--rm", "--pid", "container:donor", IMAGE, "ps"]);
    assert!(ps.contains("sleep 1000"), "{ps}");
    // /dev/shm is the host's with --ipc host; with container:X it stays the container's
    // own tmpfs (a mount of another mount namespace cannot be bound; docs/docker-compat.md).
    let seg = tempfile::Builder::new()
        .prefix("gcr-test-shm-")
        .tempfile_in("/dev/shm")
        .unwrap();
    let name = seg
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let ls = env.ok(&["run", "--rm", "--ipc", "host", IMAGE, "ls", "/dev/shm"]);
    assert!(ls.contains(&name), "{ls}");
    let name = env.ok(&[
        "run",
        "--rm",
        "--network",
        "container:donor",
        IMAGE,
        "hostname",
    ]);
    assert_eq!(name.trim(), "donorhost");
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let name = env.ok(&["run", "--rm", "--uts", "host", IMAGE, "hostname"]);
    assert_eq!(name.trim(), host_name.trim());
    // Refusals: bad modes, conflicts, a stopped or missing donor.
    env.fails(
        &["run", "--rm", "--uts", "container:donor", IMAGE, "true"],
        "invalid --uts",
    );
    env.fails(
        &["run", "--rm", "--pid", "sideways", IMAGE, "true"],
        "invalid --pid",
    );
    env.fails(
        &[
            "run",
            "--rm",
            "--uts",
            "host",
            "--hostname",
            "x",
            IMAGE,
            "true",
        ],
        "conflict",
    );
    env.fails(
        &[
            "run",
            "--rm",
            "--network",
            "container:donor",
            "-p",
            "8080:80",
            IMAGE,
            "true",
        ],
        "ports cannot be published",
    );
    env.fails(
        &["run", "--rm", "--pid", "container:nobody", IMAGE, "true"],
        "no such container",
    );
    env.ok(&["create", "--name", "idle", IMAGE, "true"]);
    env.fails(
        &["run", "--rm", "--ipc", "container:idle", IMAGE, "true"],
        "not running",
    );
    env.fails(
        &["run", "--rm", "--network", "container:idle", IMAGE, "true"],
        "not running",
    );
    env.ok(&["rm", "-f", "donor"]);
}

#[test]
fn sysctls_and_devices() {
    if !need_root("sysctls_and_devices") {
        return;
    }
    let env = Env::new();
    let fwd = "/proc/sys/net/ipv4/ip_forward";
    let before = std::fs::read_to_string(fwd).unwrap();
    let want = if before.trim() == "1" { "0" } else { "1" };
    let set = format!("net.ipv4.ip_forward={want}");
    let out = env.ok(&[
        "run",
        "--rm",
        "--sysctl",
        &set,
        "--sysctl",
        "kernel.shmmni=1234",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
    ]);
    assert_eq!(out, format!("{want}\n1234\n"));
    assert_eq!(
        std::fs::read_to_string(fwd).unwrap(),
        before,
        "the host's value changed"
    );
    let out = env.gcr(&["run", "--rm", "--sysctl", "vm.swappiness=1", IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("vm.swappiness"), "{}", stderr(&out));
    env.fails(
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "--sysctl",
            &set,
            IMAGE,
            "true",
        ],
        "--network host",
    );
    env.fails(
        &["run", "--rm", "--sysctl", "novalue", IMAGE, "true"],
        "KEY=VALUE",
    );
    // A device node as the host has it, under another name.
    let out = env.ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull:rw",
        IMAGE,
        "sh",
        "-c",
        "stat -c '%F %t %T' /dev/mynull; echo gone > /dev/mynull && echo wrote",
    ]);
    assert_eq!(out, "character special file 1 3\nwrote\n");
    env.fails(
        &[
            "run",
            "--rm",
            "--device",
            "/etc/passwd:/dev/pw",
            IMAGE,
            "true",
        ],
        "not a device node",
    );
    env.fails(
        &["run", "--rm", "--device", "/dev/nonexistent", IMAGE, "true"],
        "--device /dev/nonexistent",
    );
    env.fails(
        &["run", "--rm", "--device", "/dev/null:/etc/x", IMAGE, "true"],
        "under /dev",
    );
}

/// The CPUs a process in container `c` may run on (its /proc/self/status).
fn allowed_cpus(env: &Env, c: &str) -> String {
    let s = env.ok(&["exec", c, "cat", "/proc/self/status"]);
    s.lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn cpusets_and_cpu_shares() {
    if !need_root("cpusets_and_cpu_shares") {
        return;
    }
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--rm",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        IMAGE,
        "cat",
        "/proc/self/status",
    ]);
    assert!(
        out.lines().any(|l| l == "Cpus_allowed_list:\t0"),
        "only CPU 0: {out}"
    );
    // A list the host cannot give, or not a list: exit 125 naming the flag, nothing made.
    let before = env.ok(&["ps", "-a", "-q"]);
    for (flag, v) in [
        ("--cpuset-cpus", "0-4095"),
        ("--cpuset-cpus", "1-0"),
        ("--cpuset-mems", "7"),
    ] {
        let out = env.gcr(&["run", "--rm", flag, v, IMAGE, "true"]);
        assert_eq!(out.status.code(), Some(125), "{flag} {v}");
        assert!(stderr(&out).contains(flag), "{}", stderr(&out));
    }
    assert_eq!(env.ok(&["ps", "-a", "-q"]), before, "no container was left");
    // Shares and a cpuset on a running container, in inspect and applied.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "cs",
        "-c",
        "512",
        "--cpuset-cpus",
        "0",
        IMAGE,
        "sleep",
        "60",
    ]);
    let hc = env.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}}",
        "cs",
    ]);
    assert_eq!(hc.trim(), "512 0");
    assert_eq!(allowed_cpus(&env, "cs"), "0");
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    if ncpu > 1 {
        env.ok(&["update", "--cpuset-cpus", "1", "cs"]);
        assert_eq!(allowed_cpus(&env, "cs"), "1", "update moved it");
        let hc = env.ok(&["inspect", "-f", "{{.HostConfig.CpusetCpus}}", "cs"]);
        assert_eq!(hc.trim(), "1");
    }
    env.ok(&["rm", "-f", "cs"]);
}

#[test]
fn memory_and_block_io_tuning() {
    if !need_root("memory_and_block_io_tuning") {
        return;
    }
    let env = Env::new();
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let (dev, numbers) = block_device().expect("a block device in /sys/block");
    let weights = common::blkio_weights();
    let out = env.gcr(&[
        "run",
        "-d",
        "--name",
        "tu",
        "-m",
        "128m",
        "--memory-reservation",
        "64m",
        "--memory-swappiness",
        "10",
        "--oom-kill-disable",
        "--blkio-weight",
        "300",
        "--device-read-bps",
        &format!("{dev}:1mb"),
        "--device-write-iops",
        &format!("{dev}:100"),
        IMAGE,
        "sleep",
        "60",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let warned = stderr(&out);
    // What the host cannot apply is discarded with Docker's warning, the rest applied.
    assert_eq!(
        warned.contains("WARNING: Your kernel does not support Block I/O weight"),
        v2 || !weights,
        "{warned}"
    );
    if v2 {
        assert_eq!(group_file(&id, "memory", "memory.low"), "67108864");
        assert!(warned.contains("memory swappiness"), "{warned}");
        let io = group_file(&id, "blkio", "io.max");
        assert!(io.contains(&format!("{numbers} rbps=1048576")), "{io}");
    } else {
        let f = |h: &str, file: &str| group_file(&id, h, file);
        assert_eq!(f("memory", "memory.soft_limit_in_bytes"), "67108864");
        assert_eq!(f("memory", "memory.swappiness"), "10");
        assert!(f("memory", "memory.oom_control").contains("oom_kill_disable 1"));
        let rbps = f("blkio", "blkio.throttle.read_bps_device");
        assert_eq!(rbps, format!("{numbers} 1048576"));
        let wiops = f("blkio", "blkio.throttle.write_iops_device");
        assert_eq!(wiops, format!("{numbers} 100"));
        assert!(!warned.contains("WARNING: Your kernel does not support memory"));
    }
    let hc = env.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.MemoryReservation}} {{json .HostConfig.BlkioDeviceReadBps}} {{.HostConfig.MemorySwap}}",
        "tu",
    ]);
    assert_eq!(
        hc.trim(),
        format!("67108864 [{{\"Path\":\"{dev}\",\"Rate\":1048576}}] 268435456")
    );
    // update: a new reservation holds at once; one above the memory limit is refused.
    env.ok(&["update", "--memory-reservation", "32m", "tu"]);
    let file = if v2 {
        "memory.low"
    } else {
        "memory.soft_limit_in_bytes"
    };
    assert_eq!(group_file(&id, "memory", file), "33554432");
    env.fails(
        &["update", "--memory-reservation", "256m", "tu"],
        "--memory",
    );
    let hc = env.ok(&["inspect", "-f", "{{.HostConfig.MemoryReservation}}", "tu"]);
    assert_eq!(hc.trim(), "33554432", "the refused update changed nothing");
    env.ok(&["rm", "-f", "tu"]);
    // A rate of 0 is no limit (nothing written; v2's io.max would refuse it).
    env.ok(&[
        "run",
        "--rm",
        "--device-write-bps",
        &format!("{dev}:0"),
        IMAGE,
        "true",
    ]);
    // Bad values: exit 125 naming the flag, no container made.
    let before = env.ok(&["ps", "-a", "-q"]);
    for (flag, v, says) in [
        ("--memory-swappiness", "101", "0 to 100"),
        ("--blkio-weight", "5", "10 to 1000"),
        ("--device-read-bps", "/dev/null:1mb", "not a block device"),
        ("--device-write-bps", "sda:1mb", "/dev/"),
        ("--device-read-iops", "/dev/sda:fast", "integer"),
        ("--memory-reservation", "1k", "6MB"),
    ] {
        let out = env.gcr(&["run", "--rm", flag, v, IMAGE, "true"]);
        assert_eq!(out.status.code(), Some(125), "{flag} {v}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(e.contains(flag) && e.contains(says), "{flag} {v}: {e}");
    }
    assert_eq!(env.ok(&["ps", "-a", "-q"]), before, "no container was left");
}

/// Removes cgroup `rel` (and what is below it, empty groups) in every hierarchy.
struct ParentGuard(String);

impl Drop for ParentGuard {
    fn drop(&mut self) {
        for m in common::cgroup_mounts() {
            let top = m.join(&self.0);
            let mut dirs = vec![];
            let mut todo = vec![top];
            while let Some(d) = todo.pop() {
                if let Ok(rd) = std::fs::read_dir(&d) {
                    todo.extend(
                        rd.flatten()
                            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                            .map(|e| e.path()),
                    );
                    dirs.push(d);
                }
            }
            for d in dirs.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

#[test]
fn cgroup_parent_places_the_group_and_everything_finds_it() {
    if !need_root("cgroup_parent_places_the_group_and_everything_finds_it") {
        return;
    }
    let env = Env::new();
    let top = format!("gcrparent{}", std::process::id());
    let _g = ParentGuard(top.clone());
    let parent = format!("/{top}/sub");
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let group = |id: &str, h: &str| {
        if v2 {
            format!("/sys/fs/cgroup/{top}/sub/{id}")
        } else {
            format!("/sys/fs/cgroup/{h}/{top}/sub/{id}")
        }
    };
    let id = env.ok(&[
        "run",
        "-d",
        "--cgroup-parent",
        &parent,
        "-m",
        "64m",
        IMAGE,
        "sleep",
        "60",
    ]);
    let id = id.trim().to_string();
    let mem = if v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let limit = std::fs::read_to_string(format!("{}/{mem}", group(&id, "memory"))).unwrap();
    assert_eq!(limit.trim(), "67108864");
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/memory/gcr/{id}")).exists(),
        "not in gcr's own parent"
    );
    // inspect, stats, top, exec and update find the group by the container.
    let p = env.ok(&["inspect", "-f", "{{.HostConfig.CgroupParent}}", &id]);
    assert_eq!(p.trim(), parent);
    let stats = env.ok(&["stats", "--no-stream", &id]);
    assert!(stats.contains("64MiB"), "{stats}");
    assert!(env.ok(&["top", &id]).contains("sleep 60"));
    env.ok(&["update", "--cpus", "0.5", &id]);
    let quota = if v2 {
        std::fs::read_to_string(format!("{}/cpu.max", group(&id, "cpu"))).unwrap()
    } else {
        std::fs::read_to_string(format!("{}/cpu.cfs_quota_us", group(&id, "cpu"))).unwrap()
    };
    assert!(quota.starts_with("50000"), "{quota}");
    env.ok(&["exec", &id, "true"]);
    // rm takes the container's group; the parent stays (Docker's too).
    env.ok(&["rm", "-f", &id]);
    assert!(!std::path::Path::new(&group(&id, "memory")).exists());
    // A foreground run in it.
    let out = env.ok(&[
        "run", "--rm", "--cgroup-parent", &parent, "-m", "32m", IMAGE, "sh", "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(out.trim(), "33554432");
    let before = env.ok(&["ps", "-aq"]);
    for bad in ["../up", "a//b", "a/./b", "x y"] {
        let o = env.gcr(&["run", "--rm", "--cgroup-parent", bad, IMAGE, "true"]);
        assert_eq!(o.status.code(), Some(125), "{bad}");
        assert!(stderr(&o).contains("--cgroup-parent"), "{}", stderr(&o));
    }
    assert_eq!(env.ok(&["ps", "-aq"]), before, "no container was made");
}
