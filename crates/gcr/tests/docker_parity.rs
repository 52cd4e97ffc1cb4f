//! Docker habits the parity issue (19) lists, one assertion each: HOME set from the
//! user's passwd entry in run and exec (else /), `stop` of a stopped container succeeds,
//! `-e =x` and `--cpus` beyond the host's CPUs are refused with Docker's exit code 125;
//! `/sys/fs/cgroup` shows the container's own cgroup, read-only, with its limits (on the
//! host's layout: v1, hybrid or v2).

mod common;

use common::{need_root, stderr, Env, IMAGE};

#[test]
fn home_follows_the_user_in_run_and_exec() {
    if !need_root("home_follows_the_user_in_run_and_exec") {
        return;
    }
    let env = Env::new();
    let home = |args: &[&str]| {
        env.ok(&[
            &["run", "--rm"][..],
            args,
            &[IMAGE, "sh", "-c", "echo $HOME"],
        ]
        .concat())
    };
    assert_eq!(home(&[]), "/root\n");
    assert_eq!(home(&["-u", "1000"]), "/home/app\n");
    assert_eq!(home(&["-u", "65534"]), "/\n");
    assert_eq!(home(&["-u", "4242:4242"]), "/\n");
    assert_eq!(home(&["-e", "HOME=/x"]), "/x\n");
    env.ok(&["run", "-d", "--name", "hh", IMAGE, "sleep", "60"]);
    assert_eq!(env.ok(&["exec", "hh", "sh", "-c", "echo $HOME"]), "/root\n");
    assert_eq!(
        env.ok(&["exec", "-u", "app", "hh", "sh", "-c", "echo $HOME"]),
        "/home/app\n"
    );
    env.ok(&["rm", "-f", "hh"]);
}

#[test]
fn stop_of_a_stopped_container_succeeds_and_bad_values_are_refused() {
    if !need_root("stop_of_a_stopped_container_succeeds_and_bad_values_are_refused") {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "--name", "done", IMAGE, "true"]);
    assert_eq!(env.ok(&["stop", "done"]), "done\n");
    let o = env.gcr(&["run", "--rm", "-e", "=x", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid environment variable '=x'"),
        "{}",
        stderr(&o)
    );
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let too_many = (n + 1).to_string();
    let o = env.gcr(&["run", "--rm", "--cpus", &too_many, IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("the range is 0.01 to {n}.00")),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        env.ok(&["ps", "-aq"]).lines().count(),
        1,
        "no container left by a refusal"
    );
}

#[test]
fn the_container_sees_its_own_cgroup_read_only() {
    if !need_root("the_container_sees_its_own_cgroup_read_only") {
        return;
    }
    let env = Env::new();
    // memory.max on v2, memory/memory.limit_in_bytes on v1 and hybrid hosts.
    let script = "if [ -e /sys/fs/cgroup/memory.max ]; then \
                      cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; \
                  else \
                      cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; \
                  fi; \
                  if echo 1 > /sys/fs/cgroup/x 2>/dev/null; then echo writable; fi; \
                  grep -c ' /sys/fs/cgroup' /proc/self/mountinfo >/dev/null && echo mounted";
    let out = env.ok(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out, "67108864\n50\nmounted\n", "{out}");
    // The container's cgroup is the root of what it sees: no host groups beside it.
    let out = env.ok(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "ls /sys/fs/cgroup/pids 2>/dev/null || ls /sys/fs/cgroup",
    ]);
    assert!(
        !out.contains("gcr") && !out.contains("system.slice"),
        "{out}"
    );
}

#[test]
fn hosts_dns_shm_and_groups_flags() {
    if !need_root("hosts_dns_shm_and_groups_flags") {
        return;
    }
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--rm",
        "--add-host",
        "db:10.1.2.3",
        "--add-host",
        "v6=fd00::1",
        "--dns",
        "10.0.0.53",
        "--dns-search",
        "example.test",
        "--dns-option",
        "ndots:2",
        "--shm-size",
        "128m",
        "--group-add",
        "4242",
        "--group-add",
        "app",
        IMAGE,
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf; df -k /dev/shm | tail -1; id -G",
    ]);
    assert!(
        out.contains("10.1.2.3\tdb") && out.contains("fd00::1\tv6"),
        "{out}"
    );
    assert!(out.contains("nameserver 10.0.0.53\n"), "{out}");
    assert!(
        out.contains("search example.test\n") && out.contains("options ndots:2\n"),
        "{out}"
    );
    assert!(out.contains(" 131072 "), "a 128 MiB /dev/shm: {out}");
    let groups = out.lines().last().unwrap_or("");
    assert!(
        groups.split(' ').any(|g| g == "4242") && groups.split(' ').any(|g| g == "1000"),
        "{out}"
    );
    for bad in [
        &["--add-host", "nocolon"][..],
        &["--add-host", "db:999.1.1.1"],
        &["--dns", "resolver.example"],
        &["--shm-size", "0"],
        &["--group-add", "no-such-group"],
    ] {
        let args = [&["run", "--rm"][..], bad, &[IMAGE, "true"]].concat();
        let out = env.gcr(&args);
        assert_eq!(out.status.code(), Some(125), "{bad:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(bad[0]), "{bad:?}: {}", stderr(&out));
    }
    assert_eq!(env.ok(&["ps", "-aq"]), "", "nothing made by a refused run");
}

#[test]
fn unknown_flags_and_commands_read_as_docker_says_them() {
    if !need_root("unknown_flags_and_commands_read_as_docker_says_them") {
        return;
    }
    let env = Env::new();
    let out = env.gcr(&["run", "--formt", "x", IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(
        err.contains("unknown flag: --formt") && err.contains("See 'gcr run --help'."),
        "{err}"
    );
    assert!(!err.contains("tip:"), "{err}");
    let out = env.gcr(&["ps", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("unknown flag: --no-such-flag"),
        "{}",
        stderr(&out)
    );
    let out = env.gcr(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("'frobnicate' is not a gcr command"),
        "{}",
        stderr(&out)
    );
    let out = env.gcr(&["imagess"]);
    assert!(
        stderr(&out).contains("Did you mean 'gcr images'"),
        "{}",
        stderr(&out)
    );
    // Help still works and exits 0.
    assert!(env.gcr(&["run", "--help"]).status.success());
}

#[test]
fn ulimits_hold_in_run_and_exec() {
    if !need_root("ulimits_hold_in_run_and_exec") {
        return;
    }
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=512:1024",
        "--ulimit",
        "nproc=300",
        IMAGE,
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; ulimit -u",
    ]);
    assert_eq!(out, "512\n1024\n300\n");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "ul",
        "--ulimit",
        "nofile=256",
        IMAGE,
        "sleep",
        "60",
    ]);
    assert_eq!(env.ok(&["exec", "ul", "sh", "-c", "ulimit -n"]), "256\n");
    env.ok(&["rm", "-f", "ul"]);
    for bad in ["nofile", "nofiles=10", "nofile=10:5", "nofile=lots"] {
        let out = env.gcr(&["run", "--rm", "--ulimit", bad, IMAGE, "true"]);
        assert_eq!(out.status.code(), Some(125), "{bad}");
        assert!(
            stderr(&out).contains("invalid --ulimit"),
            "{bad}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn run_pulls_only_when_asked_and_checks_the_platform() {
    if !need_root("run_pulls_only_when_asked_and_checks_the_platform") {
        return;
    }
    let env = Env::new();
    let registry = common::servers::Server::gcr(&[], &[]);
    let remote = format!("{}/parity/pulled:1", registry.host());
    env.ok(&["push", IMAGE, &remote]);
    env.ok(&["rmi", IMAGE]);
    // gcr's default: nothing is fetched unless asked.
    let out = env.gcr(&["run", "--rm", &remote, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("unable to find image"),
        "{}",
        stderr(&out)
    );
    let out = env.gcr(&[
        "run", "--rm", "--pull", "missing", &remote, "echo", "pulled",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(common::stdout(&out), "pulled\n");
    assert!(
        stderr(&out).contains("Unable to find image"),
        "{}",
        stderr(&out)
    );
    let out = env.gcr(&["run", "--rm", "--pull", "always", &remote, "true"]);
    assert!(
        stderr(&out).contains("Image is up to date"),
        "{}",
        stderr(&out)
    );
    let out = env.gcr(&["run", "--rm", "--pull", "sometimes", &remote, "true"]);
    assert_eq!(out.status.code(), Some(125));
    // The platform must be the image's.
    let host = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    env.ok(&[
        "run",
        "--rm",
        "--platform",
        &format!("linux/{host}"),
        &remote,
        "true",
    ]);
    let out = env.gcr(&["run", "--rm", "--platform", "linux/s390x", &remote, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("without emulation"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn update_changes_limits_of_a_running_container_and_its_restart_policy() {
    if !need_root("update_changes_limits_of_a_running_container_and_its_restart_policy") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run", "-d", "--name", "up1", "-m", "64m", IMAGE, "sleep", "60",
    ]);
    let mem = || {
        env.ok(&[
            "exec", "up1", "sh", "-c",
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        ])
    };
    assert_eq!(mem(), "67108864\n");
    env.ok(&[
        "update",
        "-m",
        "128m",
        "--pids-limit",
        "40",
        "--restart",
        "on-failure:2",
        "up1",
    ]);
    assert_eq!(mem(), "134217728\n");
    let pids = env.ok(&[
        "exec",
        "up1",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(pids, "40\n");
    let doc = env.ok(&["inspect", "-f", "{{json .HostConfig}}", "up1"]);
    assert!(
        doc.contains("134217728") && doc.contains("on-failure"),
        "{doc}"
    );
    let ev = env.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        "event=update",
    ]);
    assert_eq!(ev.lines().count(), 1, "{ev}");
    // Bad values are refused as run refuses them; nothing changes.
    let out = env.gcr(&["update", "--cpus", "9999", "up1"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(mem(), "134217728\n");
    env.ok(&["rm", "-f", "up1"]);
}

#[test]
fn cpu_quota_and_label_file_flags() {
    if !need_root("cpu_quota_and_label_file_flags") {
        return;
    }
    let env = Env::new();
    // --cpu-quota over --cpu-period is the CFS limit the container sees (v2 cpu.max, v1
    // cpu/cpu.cfs_quota_us), and inspect's NanoCpus.
    let script = "if [ -e /sys/fs/cgroup/cpu.max ]; then cat /sys/fs/cgroup/cpu.max; \
                  else echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); fi";
    let out = env.ok(&[
        "run",
        "--rm",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    let q: Vec<f64> = out
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        q.len() == 2 && (q[0] / q[1] - 0.5).abs() < 1e-6,
        "half a CPU: {out}"
    );
    // update takes them too (Docker's update flags), also for a container that started
    // without a CPU limit (on v1 its cpu group is made then and its processes moved in):
    // a quarter of a CPU from now on, seen from the host.
    let id = env.ok(&["run", "-d", "--name", "cq", IMAGE, "sleep", "60"]);
    let id = id.trim();
    env.ok(&[
        "update",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "25000",
        "cq",
    ]);
    let nano = env.ok(&["inspect", "-f", "{{.HostConfig.NanoCpus}}", "cq"]);
    assert_eq!(nano.trim(), "250000000");
    let pid = env.ok(&["inspect", "-f", "{{.State.Pid}}", "cq"]);
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(common::group_file(id, "cpu", "cpu.max"), "25000 100000");
    } else {
        assert_eq!(common::group_file(id, "cpu", "cpu.cfs_quota_us"), "25000");
        let procs = common::group_file(id, "cpu", "cgroup.procs");
        assert!(procs.lines().any(|p| p == pid.trim()), "{procs}");
    }
    env.ok(&["rm", "-f", "cq"]);
    for (args, says) in [
        (
            vec!["--cpus", "1", "--cpu-quota", "50000"],
            "cannot both be set",
        ),
        (vec!["--cpu-quota", "10"], "at least 1000"),
        (
            vec!["--cpu-period", "5", "--cpu-quota", "5000"],
            "1000 to 1000000",
        ),
        (
            vec!["--label-file", "/nonexistent/labels"],
            "cannot read --label-file",
        ),
    ] {
        let mut a = vec!["create"];
        a.extend(args);
        a.extend([IMAGE, "true"]);
        let o = env.gcr(&a);
        assert_eq!(o.status.code(), Some(125), "{a:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{a:?}: {}", stderr(&o));
    }
    // Labels from a file, then from --label (which wins for the same key).
    let f = env.root.path().join("labels");
    std::fs::write(&f, "# team labels\ntier=web\n\nowner=ops\n").unwrap();
    let f = f.to_string_lossy().into_owned();
    env.ok(&[
        "create",
        "--name",
        "lf",
        "--label-file",
        &f,
        "--label",
        "owner=dev",
        IMAGE,
        "true",
    ]);
    let labels = env.ok(&["inspect", "-f", "{{json .Config.Labels}}", "lf"]);
    let v: serde_json::Value = serde_json::from_str(labels.trim()).unwrap();
    assert_eq!(
        (v["tier"].as_str(), v["owner"].as_str()),
        (Some("web"), Some("dev")),
        "{v}"
    );
    env.ok(&["rm", "lf"]);
}

#[test]
fn domainname_and_oom_score_adj_flags() {
    if !need_root("domainname_and_oom_score_adj_flags") {
        return;
    }
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--rm",
        "--domainname",
        "corp.test",
        "--oom-score-adj",
        "300",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/sys/kernel/domainname /proc/self/oom_score_adj",
    ]);
    assert_eq!(out, "corp.test\n300\n");
    // Lowering it needs CAP_SYS_RESOURCE: where gcr has it the value is set, else the
    // start is refused by name (this machine's sandbox withholds it).
    let o = env.gcr(&[
        "run",
        "--rm",
        "--oom-score-adj",
        "-200",
        IMAGE,
        "cat",
        "/proc/self/oom_score_adj",
    ]);
    assert!(
        (o.status.success() && common::stdout(&o) == "-200\n")
            || (!o.status.success() && stderr(&o).contains("CAP_SYS_RESOURCE")),
        "{}{}",
        common::stdout(&o),
        stderr(&o)
    );
    env.ok(&[
        "create",
        "--name",
        "oo",
        "--domainname",
        "corp.test",
        "--oom-score-adj",
        "500",
        IMAGE,
        "true",
    ]);
    assert_eq!(
        env.ok(&[
            "inspect",
            "-f",
            "{{.Config.Domainname}} {{.HostConfig.OomScoreAdj}}",
            "oo"
        ])
        .trim(),
        "corp.test 500"
    );
    let o = env.gcr(&["create", "--oom-score-adj", "1001", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("-1000 to 1000"), "{}", stderr(&o));
    env.ok(&["rm", "oo"]);
}

#[test]
fn expose_adds_ports_that_publish_all_publishes() {
    if !need_root("expose_adds_ports_that_publish_all_publishes") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "create",
        "--name",
        "ex",
        "--expose",
        "7000-7001/udp",
        "--expose",
        "9000",
        "-p",
        "127.0.0.1::8080",
        IMAGE,
        "true",
    ]);
    let ports = env.ok(&["inspect", "-f", "{{json .Config.ExposedPorts}}", "ex"]);
    let v: serde_json::Value = serde_json::from_str(ports.trim()).unwrap();
    for k in ["7000/udp", "7001/udp", "9000/tcp", "8080/tcp"] {
        assert!(v.get(k).is_some(), "{k} missing: {v}");
    }
    assert_eq!(
        env.ok(&[
            "ps",
            "-a",
            "--filter",
            "expose=9000",
            "--format",
            "{{.Names}}"
        ])
        .trim(),
        "ex"
    );
    // -P publishes what --expose adds, each on a free host port.
    env.ok(&[
        "run", "-d", "--name", "pub", "--expose", "9000", "-P", IMAGE, "sleep", "30",
    ]);
    let port = env.ok(&["port", "pub"]);
    assert!(port.starts_with("9000/tcp -> 0.0.0.0:"), "{port}");
    let o = env.gcr(&["create", "--expose", "1:2", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("container ports only"),
        "{}",
        stderr(&o)
    );
    env.ok(&["rm", "-f", "ex", "pub"]);
}

#[test]
fn mac_address_sets_the_first_interface() {
    if !need_root("mac_address_sets_the_first_interface") {
        return;
    }
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--rm",
        "--mac-address",
        "02:aa:bb:cc:dd:01",
        IMAGE,
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_eq!(out, "02:aa:bb:cc:dd:01\n");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "mac",
        "--mac-address",
        "02:aa:bb:cc:dd:02",
        IMAGE,
        "sleep",
        "30",
    ]);
    assert_eq!(
        env.ok(&[
            "inspect",
            "-f",
            "{{.Config.MacAddress}} {{.NetworkSettings.MacAddress}}",
            "mac"
        ])
        .trim(),
        "02:aa:bb:cc:dd:02 02:aa:bb:cc:dd:02"
    );
    for (bad, says) in [("01:00:5e:00:00:01", "unicast"), ("zz", "unicast")] {
        let o = env.gcr(&["create", "--mac-address", bad, IMAGE, "true"]);
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
    let o = env.gcr(&[
        "create",
        "--network",
        "none",
        "--mac-address",
        "02:00:00:00:00:01",
        IMAGE,
        "true",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("--network none"),
        "{}",
        stderr(&o)
    );
    env.ok(&["rm", "-f", "mac"]);
}
