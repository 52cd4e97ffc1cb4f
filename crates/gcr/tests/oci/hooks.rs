//! OCI hooks side by side with runc: the sequence of hooks with the status and pid of the
//! state each got on stdin, a failing createRuntime hook (create fails naming it, nothing
//! is left, poststop still runs), a hook past its timeout, and a failing startContainer
//! hook (start fails naming it).
//!
//! runc 1.1 runs poststart hooks during `create` (status "created"), before the
//! startContainer hooks; gcr-runc runs them as the runtime spec orders, once the user's
//! program runs (status "running"), as runc does since its fix of that order (runc#5186).
//! The comparison leaves poststart out and checks each runtime's own place for it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{common, state, Bundle};

/// Appends `NAME STATUS PID` (PID `none` when the state has none) to the file in $2.
const HOOK: &str = r#"#!/bin/sh
s=$(cat)
st=$(echo "$s" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
pid=$(echo "$s" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
echo "$1 $st ${pid:-none}" >> "$2"
"#;

/// A bundle whose hooks log to `<bundle>/hooklog/out-<which>` (bound at /hooklog in the
/// container, where the startContainer hook runs).
fn hook_bundle() -> Bundle {
    let b = Bundle::new();
    let log = b.path().join("hooklog");
    std::fs::create_dir(&log).unwrap();
    for p in [b.path().join("hook.sh"), log.join("hook.sh")] {
        std::fs::write(&p, HOOK).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&p, mode).unwrap();
    }
    let src = log.to_str().unwrap().to_string();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/hooklog", "type": "bind", "source": src, "options": ["rbind"]
        }));
    });
    b
}

/// Sets every hook kind to log to `out-<which>`.
fn log_hooks(b: &Bundle, which: &str) {
    let host = b.path().join("hook.sh").to_str().unwrap().to_string();
    let out = b.path().join(format!("hooklog/out-{which}"));
    let out = out.to_str().unwrap().to_string();
    let hook = |name: &str| json!([{"path": host, "args": ["hook.sh", name, out]}]);
    let inner = format!("/hooklog/out-{which}");
    b.edit(|c| {
        c["hooks"] = json!({
            "prestart": hook("prestart"),
            "createRuntime": hook("createRuntime"),
            "createContainer": hook("createContainer"),
            "startContainer": [{"path": "/hooklog/hook.sh", "args": ["hook.sh", "startContainer", inner]}],
            "poststart": hook("poststart"),
            "poststop": hook("poststop"),
        });
    });
}

fn lines(b: &Bundle, which: &str) -> Vec<String> {
    let p = b.path().join(format!("hooklog/out-{which}"));
    let text = std::fs::read_to_string(&p).unwrap_or_default();
    std::fs::remove_file(&p).ok();
    text.lines().map(str::to_string).collect()
}

fn without_poststart(l: &[String]) -> Vec<String> {
    l.iter()
        .filter(|l| !l.starts_with("poststart"))
        .map(|l| {
            // Host pids differ between the runtimes: keep "pid" or the in-container 1.
            let mut f: Vec<&str> = l.split(' ').collect();
            if f.len() == 3 && f[2] != "1" && f[2] != "none" {
                f[2] = "pid";
            }
            f.join(" ")
        })
        .collect()
}

fn wait_stopped(b: &Bundle, w: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(b, w, id)["status"] != "stopped" {
        assert!(Instant::now() < deadline, "{w} {id}: not stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn hooks_sequence_matches_runc() {
    if !common::need_root("hooks_sequence_matches_runc") {
        return;
    }
    let mut b = hook_bundle();
    let bundle = b.path().to_str().unwrap().to_string();
    b.args(|c| c["process"]["args"] = json!(["true"]));
    let mut seen = Vec::new();
    // `run` in the foreground: the whole lifecycle in one command.
    for w in ["gcr", "runc"] {
        log_hooks(&b, w);
        let id = format!("hrun-{w}");
        b.ids.push(format!("{w}:{id}"));
        let out = b.tool(w, &["run", "--bundle", &bundle, &id]);
        assert!(
            out.status.success(),
            "{w} run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        seen.push(lines(&b, w));
    }
    let want = [
        "prestart creating pid",
        "createRuntime creating pid",
        "createContainer creating 1",
        "startContainer created 1",
        "poststop stopped none",
    ];
    for (w, l) in ["gcr", "runc"].iter().zip(&seen) {
        assert_eq!(without_poststart(l), want, "{w} run: {l:?}");
    }
    // gcr-runc: poststart once the program runs; runc 1.1: at create (see above).
    assert_eq!(
        seen[0][4].split(' ').nth(1),
        Some("running"),
        "{:?}",
        seen[0]
    );
    assert!(seen[0][4].starts_with("poststart "), "{:?}", seen[0]);
    assert!(
        seen[1].iter().any(|l| l.starts_with("poststart created")),
        "{:?}",
        seen[1]
    );
    // create, start, kill, delete: the hooks across four commands.
    b.args(|c| c["process"]["args"] = json!(["sleep", "30"]));
    let mut seen = Vec::new();
    for w in ["gcr", "runc"] {
        log_hooks(&b, w);
        let id = format!("hcs-{w}");
        b.ids.push(format!("{w}:{id}"));
        assert!(
            b.detached(w, &["create", "--bundle", &bundle, &id]),
            "{w} create"
        );
        let pid = state(&b, w, &id)["pid"].as_i64().unwrap();
        let created = lines(&b, w);
        let out = b.tool(w, &["start", &id]);
        assert!(
            out.status.success(),
            "{w} start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(state(&b, w, &id)["status"], "running", "{w}");
        assert!(b.tool(w, &["kill", &id, "KILL"]).status.success());
        wait_stopped(&b, w, &id);
        assert!(b.tool(w, &["delete", &id]).status.success(), "{w} delete");
        let mut all = created.clone();
        all.extend(lines(&b, w));
        // The runtime's hooks got the host pid of the container process.
        assert_eq!(all[0], format!("prestart creating {pid}"), "{w}: {all:?}");
        seen.push(all);
    }
    for (w, l) in ["gcr", "runc"].iter().zip(&seen) {
        assert_eq!(without_poststart(l), want, "{w} create/start: {l:?}");
    }
    assert!(
        seen[0][4].starts_with("poststart running "),
        "{:?}",
        seen[0]
    );
}

#[test]
fn failing_and_slow_hooks_fail_like_runc() {
    if !common::need_root("failing_and_slow_hooks_fail_like_runc") {
        return;
    }
    let mut b = hook_bundle();
    let bundle = b.path().to_str().unwrap().to_string();
    b.args(|c| c["process"]["args"] = json!(["sleep", "30"]));
    let group = format!("gcr-oci-hooks-{}", std::process::id());
    let host = b.path().join("hook.sh").to_str().unwrap().to_string();
    for w in ["gcr", "runc"] {
        let id = format!("hfail-{w}");
        let out = b.path().join(format!("hooklog/out-{w}"));
        let out = out.to_str().unwrap().to_string();
        b.edit(|c| {
            c["linux"]["cgroupsPath"] = json!(format!("/{group}/{id}"));
            c["hooks"] = json!({
                "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo bad >&2; exit 3"]}],
                "poststop": [{"path": host, "args": ["hook.sh", "poststop", out]}],
            });
        });
        b.ids.push(format!("{w}:{id}"));
        let _ = std::fs::remove_file(b.path().join(format!("{w}.log")));
        let r = b.tool(w, &["create", "--bundle", &bundle, &id]);
        assert_eq!(
            r.status.code(),
            Some(1),
            "{w}: a failing createRuntime hook"
        );
        let log = std::fs::read_to_string(b.path().join(format!("{w}.log"))).unwrap();
        assert!(
            log.contains("hook #0") && log.contains("exit status 3") && log.contains("bad"),
            "{w}: {log}"
        );
        assert!(
            !b.tool(w, &["state", &id]).status.success(),
            "{w}: the container is gone"
        );
        // As runc: the poststop hooks still run for the container that was not made.
        assert_eq!(lines(&b, w), ["poststop stopped none"], "{w}");
        if w == "gcr" {
            assert!(log.contains("createRuntime hook #0 (/bin/sh)"), "{log}");
            assert!(!b.path().join("state-gcr").join(&id).exists());
        }
    }
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for w in ["gcr", "runc"] {
            let g = h.path().join(&group).join(format!("hfail-{w}"));
            assert!(!g.exists(), "cgroup left: {}", g.display());
        }
    }
    // A hook past its 1 s timeout is killed and fails the create (both run it from the
    // container process).
    for w in ["gcr", "runc"] {
        b.edit(|c| {
            c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
            c["hooks"] = json!({
                "createContainer": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}],
            });
        });
        let id = format!("hslow-{w}");
        b.ids.push(format!("{w}:{id}"));
        let t = Instant::now();
        let r = b.tool(w, &["create", "--bundle", &bundle, &id]);
        assert_eq!(r.status.code(), Some(1), "{w}: a hook past its timeout");
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "{w}: {:?}",
            t.elapsed()
        );
        assert!(!b.tool(w, &["state", &id]).status.success(), "{w}");
    }
    let log = std::fs::read_to_string(b.path().join("gcr.log")).unwrap();
    assert!(
        log.contains("createContainer hook #0 (/bin/sleep): timed out after 1 s"),
        "{log}"
    );
    // The same in the runtime's own process (createRuntime).
    b.edit(|c| {
        c["hooks"] = json!({
            "createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}],
        });
    });
    b.ids.push("gcr:hslow2".into());
    let t = Instant::now();
    let r = b.tool("gcr", &["create", "--bundle", &bundle, "hslow2"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    let log = std::fs::read_to_string(b.path().join("gcr.log")).unwrap();
    assert!(
        log.contains("createRuntime hook #0 (/bin/sleep): timed out after 1 s"),
        "{log}"
    );
    // A failing startContainer hook fails start (runc 1.1's start does not wait for it).
    b.edit(|c| {
        c["hooks"] = json!({
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope; exit 4"]}],
        });
    });
    b.ids.push("gcr:hstart".into());
    assert!(b.detached("gcr", &["create", "--bundle", &bundle, "hstart"]));
    let r = b.tool("gcr", &["start", "hstart"]);
    assert_eq!(r.status.code(), Some(1));
    let log = std::fs::read_to_string(b.path().join("gcr.log")).unwrap();
    assert!(
        log.contains("startContainer hook #0 (/bin/sh): exit status 4, output: nope"),
        "{log}"
    );
    wait_stopped(&b, "gcr", "hstart");
    assert!(b.tool("gcr", &["delete", "hstart"]).status.success());
    // A relative hook path is refused at create.
    b.edit(|c| c["hooks"] = json!({"poststart": [{"path": "bin/true"}]}));
    let r = b.tool("gcr", &["create", "--bundle", &bundle, "hrel"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(!Path::new(&b.path().join("state-gcr/hrel")).exists());
    drop(b);
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(h.path().join(&group));
    }
}

/// The features document lists every hook kind gcr-runc runs.
#[test]
fn features_lists_hooks() {
    let out = std::process::Command::new(common::gcr_bin())
        .args(["oci", "features"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["hooks"],
        json!([
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ])
    );
}
