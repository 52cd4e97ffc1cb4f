//! Detached containers end to end: supervisor, logs, ps status, stop/kill/pause/restart,
//! restart policies, events, refusals, and reconciliation after crashes.

mod common;
use common::*;

/// Says "started" once its TERM trap is in place.
const LOOP: &str =
    "trap 'echo bye; exit 0' TERM; echo started; while :; do sleep 1 & wait $!; done";

fn state(env: &Env, name: &str) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", name])).unwrap();
    doc[0]["State"].clone()
}

#[test]
fn detached_logs_stop_rm() {
    if !need_root("detached_logs_stop_rm") {
        return;
    }
    let env = Env::new();
    let id = env.ok(&["run", "-d", "--name", "web", IMAGE, "sh", "-c", LOOP]);
    assert_eq!(id.trim().len(), 64);
    assert!(eventually(5, || env
        .ok(&["logs", "web"])
        .contains("started")));
    let ps = env.ok(&["ps"]);
    assert!(ps.contains("web") && ps.contains("Up "), "{ps}");
    let json = env.ok(&["ps", "--format", "json"]);
    let row: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(row["Names"], "web");
    assert_eq!(row["State"], "running");
    // Name already in use.
    let o = env.gcr(&["run", "-d", "--name", "web", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    // rm of a running container is refused without -f.
    let o = env.gcr(&["rm", "web"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("stop it first"), "{}", stderr(&o));
    env.ok(&["stop", "web"]);
    let st = state(&env, "web");
    assert_eq!(st["Status"], "exited");
    assert_eq!(st["ExitCode"], 0);
    assert!(env.ok(&["logs", "web"]).contains("bye"));
    assert!(env.ok(&["ps", "-a"]).contains("Exited (0)"));
    // Stopping a stopped container succeeds, as in Docker, and changes nothing.
    assert_eq!(env.ok(&["stop", "web"]).trim(), "web");
    assert_eq!(state(&env, "web")["ExitCode"], 0);
    let t = env.ok(&["logs", "--timestamps", "--tail", "1", "web"]);
    assert!(t.starts_with("20") && t.contains("Z bye"), "{t}");
    env.ok(&["rm", "web"]);
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");
    let o = env.gcr(&["rm", "web"]);
    assert_eq!(o.status.code(), Some(1));
    // Events recorded every transition.
    let ev = env.ok(&[
        "events", "--since", "0", "--until", "0s", "--format", "json",
    ]);
    for cause in ["create", "start", "stop", "die", "rm"] {
        assert!(
            ev.contains(&format!("\"cause\":\"{cause}\"")),
            "missing {cause}: {ev}"
        );
    }
}

#[test]
fn stop_timeout_kills_and_kill_signals() {
    if !need_root("stop_timeout_kills_and_kill_signals") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        IMAGE,
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 1 & wait $!; done",
    ]);
    let t = std::time::Instant::now();
    env.ok(&["stop", "-t", "1", "stubborn"]);
    assert!(t.elapsed().as_secs_f64() >= 0.9);
    assert_eq!(state(&env, "stubborn")["ExitCode"], 137);
    env.ok(&["run", "-d", "--name", "kk", IMAGE, "sh", "-c", LOOP]);
    assert!(eventually(5, || env
        .ok(&["logs", "kk"])
        .contains("started")));
    env.ok(&["kill", "-s", "TERM", "kk"]);
    assert_eq!(env.ok(&["wait", "kk"]).trim(), "0");
    let o = env.gcr(&["kill", "-s", "NOTASIG", "kk"]);
    assert!(!o.status.success());
}

#[test]
fn pause_unpause_stats_top_exec() {
    if !need_root("pause_unpause_stats_top_exec") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run", "-d", "--name", "pz", "--memory", "64m", IMAGE, "sh", "-c", LOOP,
    ]);
    env.ok(&["pause", "pz"]);
    assert_eq!(state(&env, "pz")["Status"], "paused");
    assert!(env.ok(&["ps"]).contains("(Paused)"));
    let o = env.gcr(&["pause", "pz"]);
    assert!(stderr(&o).contains("already paused"), "{}", stderr(&o));
    env.ok(&["unpause", "pz"]);
    assert_eq!(state(&env, "pz")["Status"], "running");
    let s = env.ok(&["stats", "--no-stream", "pz"]);
    assert!(s.contains("pz") && s.contains("/ 64MiB"), "{s}");
    let top = env.ok(&["top", "pz"]);
    assert!(top.contains("sh -c"), "{top}");
    let out = env.ok(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "pz",
        "sh",
        "-c",
        "echo $X $(pwd) $(hostname)",
    ]);
    assert!(out.starts_with("1 /tmp "), "{out}");
    let o = env.gcr(&["exec", "pz", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    let o = env.gcr(&["exec", "pz", "nosuch"]);
    assert_eq!(o.status.code(), Some(127));
    // exec sees the same processes as the container.
    let out = env.ok(&["exec", "pz", "ps"]);
    assert!(out.contains("sh -c trap"), "{out}");
    env.ok(&["rm", "-f", "pz"]);
}

#[test]
fn restart_policy_and_restart() {
    if !need_root("restart_policy_and_restart") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        IMAGE,
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    assert!(eventually(10, || {
        let st = state(&env, "flaky");
        st["Status"] == "exited"
            && serde_json::from_str::<serde_json::Value>(&env.ok(&["inspect", "flaky"])).unwrap()[0]
                ["RestartCount"]
                == 2
    }));
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(env.ok(&["logs", "flaky"]).matches("run").count(), 3);
    env.ok(&["run", "-d", "--name", "rr", IMAGE, "sh", "-c", LOOP]);
    let pid1 = state(&env, "rr")["Pid"].clone();
    env.ok(&["restart", "-t", "2", "rr"]);
    let st = state(&env, "rr");
    assert_eq!(st["Status"], "running");
    assert_ne!(st["Pid"], pid1);
}

#[test]
fn reconciles_after_supervisor_crash_and_reboot() {
    if !need_root("reconciles_after_supervisor_crash_and_reboot") {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "-d", "--name", "orphan", IMAGE, "sh", "-c", LOOP]);
    let doc: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "orphan"])).unwrap();
    let pid = doc[0]["State"]["Pid"].as_i64().unwrap() as i32;
    // Kill the supervisor and the container as a crash would.
    let sup = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = sup[sup.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: signalling processes this test started.
    unsafe {
        libc::kill(ppid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    // Simulate a reboot wiping the run-time directory.
    let _ = std::fs::remove_dir_all(&env.run_dir);
    assert!(eventually(5, || env.ok(&["ps", "-a"]).contains("Exited")));
    assert!(!env.ok(&["ps"]).contains("orphan"));
    env.ok(&["rm", "orphan"]);
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn healthchecks_turn_healthy_and_unhealthy() {
    if !need_root("healthchecks_turn_healthy_and_unhealthy") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ok && echo fine",
        "--health-interval",
        "100ms",
        "--health-retries",
        "2",
        IMAGE,
        "sh",
        "-c",
        LOOP,
    ]);
    let status = |env: &Env| {
        state(env, "hc")["Health"]["Status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(env.ok(&["ps"]).contains("(health: starting)") || status(&env) != "starting");
    assert!(
        eventually(5, || status(&env) == "unhealthy"),
        "{}",
        status(&env)
    );
    assert!(env.ok(&["ps"]).contains("(unhealthy)"));
    env.ok(&["exec", "hc", "touch", "/tmp/ok"]);
    assert!(
        eventually(5, || status(&env) == "healthy"),
        "{}",
        status(&env)
    );
    let st = state(&env, "hc");
    let log = st["Health"]["Log"].as_array().unwrap();
    assert!(log.last().unwrap()["Output"]
        .as_str()
        .unwrap()
        .contains("fine"));
    assert!(env.ok(&["ps"]).contains("(healthy)"));
    let ev = env.ok(&[
        "events", "--since", "0", "--until", "0s", "--format", "json",
    ]);
    assert!(ev.contains("health_status: healthy"), "{ev}");
    let o = env.gcr(&["run", "--rm", "--health-interval", "soon", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125));
    // --health-start-interval: checks every 100 ms during the start period, though the
    // interval is an hour (Docker's flag); inspect shows it.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hs",
        "--health-cmd",
        "true",
        "--health-interval",
        "1h",
        "--health-start-period",
        "1m",
        "--health-start-interval",
        "100ms",
        IMAGE,
        "sleep",
        "60",
    ]);
    let hs = |env: &Env| {
        state(env, "hs")["Health"]["Status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(eventually(5, || hs(&env) == "healthy"), "{}", hs(&env));
    let si = env.ok(&[
        "inspect",
        "-f",
        "{{.Config.Healthcheck.StartInterval}}",
        "hs",
    ]);
    assert_eq!(si.trim(), "100000000");
    let o = env.gcr(&["run", "--rm", "--health-start-interval", "x", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("--health-start-interval"),
        "{}",
        stderr(&o)
    );
    env.ok(&["rm", "-f", "hs"]);
}
