//! The foreground `run` start path: the run directory's image cache (a start from it is
//! held until the store confirms the image) and the shared layer of /etc mount targets.

mod common;

use common::*;
use std::process::Command;

/// A second image: the test busybox plus /marker containing "other".
fn import_other(env: &Env, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("other.tar");
    std::fs::copy(busybox_tar(), &tar).unwrap();
    std::fs::write(dir.path().join("marker"), "other\n").unwrap();
    let ok = Command::new("tar")
        .arg("-rf")
        .arg(&tar)
        .arg("-C")
        .arg(dir.path())
        .arg("./marker")
        .status()
        .unwrap()
        .success();
    assert!(ok);
    env.ok(&["import", tar.to_str().unwrap(), name]);
}

fn cache_entries(env: &Env) -> usize {
    std::fs::read_dir(env.run_dir.join("images")).map_or(0, |d| d.count())
}

#[test]
fn image_cache_follows_retag_and_removal() {
    if !need_root("image_cache_follows_retag_and_removal") {
        return;
    }
    let env = Env::new();
    import_other(&env, "test/other:1");
    let run = |cmd: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none", IMAGE];
        a.extend_from_slice(cmd);
        env.gcr(&a)
    };
    // The first run records the image; the second starts from the cache.
    let out = run(&["cat", "/etc/passwd"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(cache_entries(&env), 1);
    let out = run(&["sh", "-c", "cat /marker 2>/dev/null || echo none"]);
    assert_eq!(stdout(&out).trim(), "none");
    // The name now means another image: the cached start is discarded, the new one runs.
    env.ok(&["tag", "test/other:1", IMAGE]);
    for _ in 0..2 {
        let out = run(&["cat", "/marker"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).trim(), "other");
    }
    // Exit codes and errors are the container's own on the cached path too.
    assert_eq!(run(&["sh", "-c", "exit 7"]).status.code(), Some(7));
    assert_eq!(run(&["/nonexistent"]).status.code(), Some(127));
    // The name is gone: the proper error, not a start from the cache.
    env.ok(&["rmi", IMAGE]);
    let out = run(&["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("unable to find image"),
        "{}",
        stderr(&out)
    );
    // Nothing of the discarded starts is left.
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");
    let containers = env.root.path().join("containers");
    assert!(
        eventually(10, || std::fs::read_dir(&containers).unwrap().count() == 0),
        "container directories left behind"
    );
}

#[test]
fn cached_start_refuses_a_taken_name() {
    if !need_root("cached_start_refuses_a_taken_name") {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    assert_eq!(cache_entries(&env), 1);
    env.ok(&["run", "-d", "--name", "taken", IMAGE, "sleep", "30"]);
    let out = env.gcr(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        "taken",
        IMAGE,
        "echo",
        "ran",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("ran"),
        "the command must not have run"
    );
    env.ok(&["rm", "-f", "taken"]);
}

#[test]
fn network_files_need_no_copy_up() {
    if !need_root("network_files_need_no_copy_up") {
        return;
    }
    let env = Env::new();
    let id = env.ok(&["run", "-d", "--network", "none", IMAGE, "sleep", "30"]);
    let id = id.trim();
    let out = env.ok(&[
        "exec",
        id,
        "sh",
        "-c",
        "cat /etc/hostname; grep -c localhost /etc/hosts",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], &id[..12]);
    assert!(lines[1].parse::<u32>().unwrap() >= 1);
    // The image has no /etc/hosts or /etc/hostname, yet the upper dir stays empty.
    let upper = env.root.path().join("containers").join(id).join("upper");
    let entries: Vec<_> = std::fs::read_dir(&upper).unwrap().collect();
    assert!(entries.is_empty(), "upper has {entries:?}");
    // The image's own files stay visible and writable.
    env.ok(&[
        "exec",
        id,
        "sh",
        "-c",
        "grep -q root /etc/passwd && echo x > /etc/new",
    ]);
    env.ok(&["rm", "-f", id]);
}

/// Runs `args` with phase marks on; returns the output.
fn run_marked(env: &Env, args: &[&str]) -> std::process::Output {
    env.cmd(args)
        .env("GCR_DEBUG_TIMING", "1")
        .output()
        .expect("run gcr")
}

fn housekeeper_running(env: &Env) -> bool {
    let o = Command::new("pgrep")
        .args(["-f", &format!("__reap {}", env.root.path().display())])
        .output()
        .unwrap();
    !stdout(&o).trim().is_empty()
}

/// A store whose image cache knows IMAGE and whose housekeeper lingers (a `--rm` run
/// fills the one and leaves the other for 2 s); None when the test is skipped.
fn env_with_housekeeper(test: &str) -> Option<Env> {
    if !need_root(test) {
        return None;
    }
    let env = Env::new();
    env.ok(&["run", "--rm", IMAGE, "true"]);
    assert!(eventually(2, || housekeeper_running(&env)));
    Some(env)
}

/// The causes of the events of container `name`, in order (`events` prints time, kind,
/// cause, ...).
fn causes(env: &Env, name: &str) -> (Vec<String>, String) {
    let ev = env.ok(&["events", "--since", "1m", "--until", "0s"]);
    let causes = ev
        .lines()
        .filter(|l| l.contains(&format!("name={name}")))
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(str::to_string)
        .collect();
    (causes, ev)
}

#[test]
fn the_housekeeper_stores_rows_and_hands_out_namespaces() {
    let Some(env) = env_with_housekeeper("the_housekeeper_stores_rows_and_hands_out_namespaces")
    else {
        return;
    };

    // A loopback-only namespace from the housekeeper: lo, up, and nothing else.
    let o = run_marked(
        &env,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            IMAGE,
            "ip",
            "-o",
            "link",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let links: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(
        links[0].contains(": lo:") && links[0].contains("UP"),
        "{links:?}"
    );
    assert!(
        stderr(&o).contains("housekeeper: row stored"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("housekeeper: exit recorded"),
        "{}",
        stderr(&o)
    );

    // A named, kept container: its row and its events, in order, as without it.
    let o = run_marked(
        &env,
        &["run", "--name", "kept", IMAGE, "sh", "-c", "exit 3"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("housekeeper: row stored"),
        "{}",
        stderr(&o)
    );
    let ps = env.ok(&["ps", "-a", "--format", "json"]);
    assert!(ps.contains("\"kept\"") && ps.contains("Exited (3)"), "{ps}");
    let (causes, ev) = causes(&env, "kept");
    assert_eq!(causes, ["create", "start", "die"], "{ev}");

    // The name is taken: the housekeeper's answer is the ordinary refusal, nothing runs.
    let o = env.gcr(&["run", "--name", "kept", IMAGE, "sh", "-c", "echo ran"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("ran"));

    // A command that cannot start: 127, and the kept container stays `created`.
    let o = env.gcr(&["run", "--name", "bad", IMAGE, "/nonexistent"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let bad = env.ok(&["inspect", "bad"]);
    assert!(bad.contains("\"created\""), "{bad}");
    assert!(bad.contains("\"ExitCode\": 127"), "{bad}");
    let o = env.gcr(&["run", "--rm", IMAGE, "/nonexistent"]);
    assert_eq!(o.status.code(), Some(127));
    env.ok(&["rm", "kept", "bad"]);
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");

    // Refused after the housekeeper made the root ahead: what it made goes as well.
    assert!(housekeeper_running(&env));
    let o = env.gcr(&["run", "--rm", "--restart", "always", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let containers = env.root.path().join("containers");
    assert!(
        eventually(5, || std::fs::read_dir(&containers).unwrap().count() == 0),
        "left in containers/: {:?}",
        std::fs::read_dir(&containers).unwrap().collect::<Vec<_>>()
    );
}

#[test]
fn a_run_outlives_its_housekeeper() {
    let Some(env) = env_with_housekeeper("a_run_outlives_its_housekeeper") else {
        return;
    };
    let child = env
        .cmd(&[
            "run",
            "--rm",
            "--name",
            "orphan",
            IMAGE,
            "sh",
            "-c",
            "sleep 2; exit 4",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the container runs, the housekeeper that stored its row goes away.
    assert!(eventually(5, || env.ok(&["ps", "-q"]).trim().len() >= 12));
    let pkill = Command::new("pkill")
        .args(["-9", "-f", &format!("__reap {}", env.root.path().display())])
        .status()
        .unwrap();
    assert!(pkill.success(), "no housekeeper to kill");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    // Recorded and removed all the same.
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");
    let (causes, ev) = causes(&env, "orphan");
    assert_eq!(causes, ["create", "start", "die", "rm"], "{ev}");
}

/// The housekeeper's control socket cannot be found or reached from a container that
/// shares the host's network namespace (abstract sockets are per network namespace:
/// such a socket would be reachable from every `--network host` container).
#[test]
fn no_control_socket_is_reachable_from_host_network_containers() {
    let Some(env) =
        env_with_housekeeper("no_control_socket_is_reachable_from_host_network_containers")
    else {
        return;
    };
    let dir = env.run_dir.join("housekeeper");
    let socks: Vec<_> = std::fs::read_dir(&dir)
        .expect("the housekeeper's socket directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    assert_eq!(socks.len(), 1, "one socket in {}", dir.display());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    let sock = socks[0].display().to_string();
    for extra in [&[][..], &["--privileged"][..]] {
        let mut args = vec!["run", "--rm", "--network", "host"];
        args.extend_from_slice(extra);
        let script = format!(
            "cat /proc/net/unix; if [ -e {sock} ] || [ -e {dir} ]; then echo REACHABLE; fi",
            dir = dir.display()
        );
        args.extend([IMAGE, "sh", "-c", &script]);
        let out = env.ok(&args);
        assert!(
            out.lines().any(|l| l.contains(&sock)),
            "the host's sockets are listed in a host-network container ({extra:?}):\n{out}"
        );
        assert!(
            !out.lines().any(|l| l.contains("@gcr")),
            "an abstract gcr socket is visible ({extra:?}):\n{out}"
        );
        assert!(
            !out.contains("REACHABLE"),
            "the control socket's path exists in the container ({extra:?})"
        );
    }
}

/// A host-network build step cannot find or reach the housekeeper's socket either: the
/// step writes what it sees of the host's unix sockets and of the socket's path into the
/// image, and the test reads it back.
#[test]
fn no_control_socket_is_reachable_from_a_host_network_build_step() {
    let Some(env) =
        env_with_housekeeper("no_control_socket_is_reachable_from_a_host_network_build_step")
    else {
        return;
    };
    let dir = env.run_dir.join("housekeeper");
    assert!(dir.is_dir(), "the housekeeper listens in {}", dir.display());
    let ctx = tempfile::tempdir().unwrap();
    let spec = format!(
        "format: gcr-v1.0\nname: test/hostnet\nversion: 1.0.0\nbase: {IMAGE}\nbuild:\n  network: host\n  commands:\n    - [/bin/sh, -c, \"cat /proc/net/unix > /seen; if [ -e {d} ]; then echo REACHABLE >> /seen; fi\"]\n",
        d = dir.display()
    );
    std::fs::write(ctx.path().join("hostnet.gcr"), spec).unwrap();
    env.ok(&["build", ctx.path().to_str().unwrap()]);
    let seen = env.ok(&["run", "--rm", "test/hostnet:1.0.0", "cat", "/seen"]);
    assert!(
        seen.lines().count() > 1,
        "the step saw the host's unix sockets:\n{seen}"
    );
    assert!(
        !seen.lines().any(|l| l.contains("@gcr")),
        "an abstract gcr socket is visible to a build step:\n{seen}"
    );
    assert!(
        !seen.contains("REACHABLE"),
        "the socket's directory exists in the build step"
    );
}
