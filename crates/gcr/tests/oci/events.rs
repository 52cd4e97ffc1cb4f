//! `events` side by side with runc: `--stats` has runc's keys for what gcr-runc reads
//! (cpu, memory, pids, blkio) with plausible values; the stream gives stats each interval,
//! an `oom` event when the kernel OOM-kills in the container, and ends when it stops.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{common, Bundle};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

#[test]
fn events_stats_match_runc() {
    if !common::need_root("events_stats_match_runc") {
        return;
    }
    let mut b = Bundle::new();
    let bundle = b.path().to_str().unwrap().to_string();
    let group = format!("gcr-oci-ev-{}", std::process::id());
    let mut docs = Vec::new();
    for w in ["gcr", "runc"] {
        let id = format!("ev-{w}");
        b.edit(|c| {
            c["process"]["args"] = json!(["sleep", "30"]);
            c["linux"]["cgroupsPath"] = json!(format!("/{group}/{id}"));
            c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 64}});
        });
        b.ids.push(format!("{w}:{id}"));
        assert!(
            b.detached(w, &["run", "-d", "--bundle", &bundle, &id]),
            "{w} run -d"
        );
        let out = b.tool(w, &["events", "--stats", &id]);
        assert!(
            out.status.success(),
            "{w} events --stats: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().count(), 1, "{w}: one line: {text}");
        let v: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["type"], "stats", "{w}");
        assert_eq!(v["id"], id.as_str(), "{w}");
        docs.push(v["data"].clone());
        assert!(b.tool(w, &["kill", &id, "KILL"]).status.success());
    }
    let (g, r) = (&docs[0], &docs[1]);
    // Top level: runc's keys, less cpuset (not read by gcr-runc).
    let mut rk = keys(r);
    rk.retain(|k| k != "cpuset");
    assert_eq!(keys(g), rk, "data");
    for path in [
        &["cpu"][..],
        &["cpu", "usage"],
        &["memory", "usage"],
        &["memory", "swap"],
        &["pids"],
    ] {
        let (mut a, mut c) = (g, r);
        for p in path {
            a = &a[*p];
            c = &c[*p];
        }
        // omitempty counters may be zero on one side: runc's keys of non-zero values.
        for k in keys(c) {
            if c[&k] != json!(0) && c[&k] != json!({}) {
                assert!(a.get(&k).is_some(), "{path:?}.{k} missing: {a} vs runc {c}");
            }
        }
    }
    for k in keys(&r["memory"]) {
        if k != "cache" {
            assert!(g["memory"].get(&k).is_some(), "memory.{k} missing");
        }
    }
    assert!(g["pids"]["current"].as_u64().unwrap() >= 1, "{g}");
    assert_eq!(g["pids"]["limit"], 64);
    assert!(g["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{g}");
    assert_eq!(g["memory"]["usage"]["limit"], 67108864);
    assert!(g["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{g}");
    // A stopped container has no figures.
    let deadline = Instant::now() + Duration::from_secs(5);
    while b
        .tool("gcr", &["events", "--stats", "ev-gcr"])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "events --stats of a stopped container"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The stream: stats each 200 ms, an oom event, the end with the container.
    b.edit(|c| {
        c["process"]["args"] = json!(["sh", "-c", "sleep 1; x=aaaaaaaa; while :; do x=$x$x; done"]);
        c["linux"]["cgroupsPath"] = json!(format!("/{group}/evoom"));
        c["linux"]["resources"] = json!({"memory": {"limit": 16777216, "swap": 16777216}});
    });
    b.ids.push("gcr:evoom".into());
    assert!(b.detached("gcr", &["run", "-d", "--bundle", &bundle, "evoom"]));
    let mut child = Command::new(&b.link)
        .arg("--root")
        .arg(b.path().join("state-gcr"))
        .args(["events", "--interval", "200ms", "evoom"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let mut child = Reap(child);
    let t = Instant::now();
    let mut kinds = Vec::new();
    for l in BufReader::new(stdout).lines() {
        let v: Value = serde_json::from_str(&l.unwrap()).unwrap();
        assert_eq!(v["id"], "evoom");
        kinds.push(v["type"].as_str().unwrap().to_string());
        assert!(t.elapsed() < Duration::from_secs(30), "{kinds:?}");
    }
    let status = child.0.wait().unwrap();
    assert!(status.success(), "events exits 0 when the container stops");
    assert!(
        kinds.iter().filter(|k| *k == "stats").count() >= 2,
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "oom"), "{kinds:?}");
    drop(b);
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(h.path().join(&group));
    }
}
