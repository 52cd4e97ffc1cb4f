//! gcr-runc (runc's command line over gcr's executor) side by side with runc on the same
//! bundle: exit codes, hostname, env, cwd, uid/gid, read-only root, bind mounts, masked
//! paths, joining a netns by path, the create/start/state/delete lifecycle, kill by signal
//! name, and bad bundles (seccomp, capabilities, sysctl and exec in `oci/security.rs`, user
//! namespaces in `oci/userns.rs`).
//! Root only; every test removes its containers and directories.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

/// A bundle (busybox root) plus private state roots for gcr-runc and runc; removes the
/// containers it made and everything else on drop.
struct Bundle {
    dir: tempfile::TempDir,
    link: PathBuf,
    ids: Vec<String>,
}

impl Bundle {
    fn new() -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("gcr-oci-")
            .tempdir()
            .expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-xf")
            .arg(common::busybox_tar())
            .status()
            .unwrap()
            .success();
        assert!(ok, "untar busybox");
        let link = dir.path().join("gcr-runc");
        std::os::unix::fs::symlink(common::gcr_bin(), &link).unwrap();
        let b = Bundle {
            dir,
            link,
            ids: Vec::new(),
        };
        let out = b.tool("gcr", &["spec", "--bundle", b.path().to_str().unwrap()]);
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        b.edit(|c| {
            c["process"]["terminal"] = json!(false);
        });
        b
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        edit_config(self.path(), f)
    }

    fn args(&self, c: impl FnOnce(&mut Value)) {
        self.edit(c)
    }

    /// Runs `gcr` (gcr-runc) or `runc` with its own state root.
    fn tool(&self, which: &str, args: &[&str]) -> Output {
        let (bin, root) = match which {
            "gcr" => (self.link.clone(), self.path().join("state-gcr")),
            _ => (PathBuf::from("runc"), self.path().join("state-runc")),
        };
        Command::new(bin)
            .arg("--root")
            .arg(root)
            .arg("--log")
            .arg(self.path().join(format!("{which}.log")))
            .arg("--log-format")
            .arg("json")
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .output()
            .expect("run the runtime")
    }

    /// Like [`Bundle::tool`] with stdout and stderr to /dev/null: a created container's
    /// process inherits them, so a pipe would stay open until it exits.
    fn detached(&self, which: &str, args: &[&str]) -> bool {
        let (bin, root) = match which {
            "gcr" => (self.link.clone(), self.path().join("state-gcr")),
            _ => (PathBuf::from("runc"), self.path().join("state-runc")),
        };
        Command::new(bin)
            .arg("--root")
            .arg(root)
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run the runtime")
            .success()
    }

    /// `run` in the foreground with both runtimes: (exit code, stdout) of each.
    fn run_both(&mut self, name: &str) -> [(i32, String); 2] {
        ["gcr", "runc"].map(|w| self.run_one(w, &format!("{name}-{w}")))
    }

    /// `run` in the foreground with one runtime: (exit code, stdout).
    fn run_one(&mut self, w: &str, id: &str) -> (i32, String) {
        self.ids.push(format!("{w}:{id}"));
        let b = self.path().to_str().unwrap().to_string();
        let out = self.tool(w, &["run", "--bundle", &b, id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    }
}

/// Changes the config.json of the bundle at `dir` as JSON.
fn edit_config(dir: &Path, f: impl FnOnce(&mut Value)) {
    let p = dir.join("config.json");
    let mut c: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut c);
    std::fs::write(&p, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for e in std::mem::take(&mut self.ids) {
            let (w, id) = e.split_once(':').unwrap();
            let _ = self.tool(w, &["delete", "--force", id]);
        }
    }
}

fn same(b: &mut Bundle, name: &str, args: &[&str]) -> (i32, String) {
    let a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    b.args(|c| c["process"]["args"] = json!(a));
    let [g, r] = b.run_both(name);
    assert_eq!(g, r, "{name}: gcr-runc vs runc");
    g
}

#[test]
fn run_matches_runc() {
    if !common::need_root("run_matches_runc") {
        return;
    }
    let mut b = Bundle::new();
    assert_eq!(same(&mut b, "true", &["/bin/true"]).0, 0);
    assert_eq!(same(&mut b, "exit3", &["sh", "-c", "exit 3"]).0, 3);
    b.edit(|c| {
        c["hostname"] = json!("oci-host");
        c["process"]["env"] = json!(["PATH=/bin:/usr/bin", "FOO=bar"]);
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [1002]});
    });
    let (_, out) = same(
        &mut b,
        "ident",
        &[
            "sh",
            "-c",
            "echo $(hostname) $FOO $(pwd) $(id -u) $(id -g) $(id -G)",
        ],
    );
    assert_eq!(out, "oci-host bar /tmp 1000 1001 1001 1002");
    b.edit(|c| c["process"]["user"] = json!({"uid": 0, "gid": 0}));
    // The root is read-only in runc's default config.
    let (code, _) = same(&mut b, "ro", &["sh", "-c", "touch /x"]);
    assert_ne!(code, 0);
    // A bind mount (relative source, read-only) and a masked path.
    std::fs::create_dir(b.path().join("data")).unwrap();
    std::fs::write(b.path().join("data/f"), "bound").unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data", "type": "bind", "source": "data",
            "options": ["rbind", "ro", "nosuid"]
        }));
        c["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/etc/passwd"));
    });
    let (code, out) = same(
        &mut b,
        "mounts",
        &[
            "sh",
            "-c",
            "cat /data/f; wc -c < /etc/passwd; touch /data/g || echo rofail",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "bound0\nrofail");
}

#[test]
fn join_netns_by_path() {
    if !common::need_root("join_netns_by_path") {
        return;
    }
    struct Netns(String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let ns = Netns(format!("gcr-oci-{}", std::process::id()));
    assert!(Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap()
        .success());
    assert!(Command::new("ip")
        .args(["-n", &ns.0, "link", "set", "lo", "mtu", "1234"])
        .status()
        .unwrap()
        .success());
    let mut b = Bundle::new();
    let p = format!("/var/run/netns/{}", ns.0);
    b.edit(|c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(p);
            }
        }
    });
    let (code, out) = same(&mut b, "netns", &["cat", "/sys/class/net/lo/mtu"]);
    assert_eq!(code, 0);
    assert_eq!(out, "1234");
}

fn state(b: &Bundle, w: &str, id: &str) -> Value {
    let out = b.tool(w, &["state", id]);
    assert!(
        out.status.success(),
        "{w} state: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn lifecycle_matches_runc() {
    if !common::need_root("lifecycle_matches_runc") {
        return;
    }
    let mut b = Bundle::new();
    b.args(|c| c["process"]["args"] = json!(["sleep", "30"]));
    let bundle = b.path().to_str().unwrap().to_string();
    for w in ["gcr", "runc"] {
        let id = format!("life-{w}");
        b.ids.push(format!("{w}:{id}"));
        let pidf = b.path().join(format!("{w}.pid"));
        assert!(
            b.detached(
                w,
                &[
                    "create",
                    "--bundle",
                    &bundle,
                    "--pid-file",
                    pidf.to_str().unwrap(),
                    &id,
                ]
            ),
            "{w} create"
        );
        let s = state(&b, w, &id);
        assert_eq!(s["status"], "created", "{w}");
        let pid = s["pid"].as_i64().unwrap();
        assert!(pid > 0);
        let file: i64 = std::fs::read_to_string(&pidf)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(file, pid, "{w} pid file");
        // Not yet the user's program.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_ne!(comm.trim(), "sleep", "{w}: the process ran before start");
        assert!(b.tool(w, &["start", &id]).status.success());
        let s = state(&b, w, &id);
        assert_eq!(s["status"], "running", "{w}");
        let out = b.tool(w, &["delete", &id]);
        assert!(
            !out.status.success(),
            "{w}: delete of a running container must fail"
        );
        assert!(b.tool(w, &["pause", &id]).status.success());
        assert_eq!(state(&b, w, &id)["status"], "paused", "{w}");
        assert!(b.tool(w, &["resume", &id]).status.success());
        let out = b.tool(w, &["kill", &id, "KILL"]);
        assert!(
            out.status.success(),
            "{w} kill: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while state(&b, w, &id)["status"] != "stopped" {
            assert!(
                std::time::Instant::now() < deadline,
                "{w}: still not stopped"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Stopped: `kill --all` succeeds (containerd's shim sends it after the exit), a
        // plain kill fails with "container not running", which the shim takes as done.
        assert!(
            b.tool(w, &["kill", "--all", &id, "KILL"]).status.success(),
            "{w}: kill --all of a stopped container"
        );
        let out = b.tool(w, &["kill", &id, "KILL"]);
        assert!(!out.status.success(), "{w}: kill of a stopped container");
        let log = std::fs::read_to_string(b.path().join(format!("{w}.log"))).unwrap();
        assert!(log.contains("container not running"), "{w}: {log}");
        assert!(b.tool(w, &["delete", &id]).status.success());
        assert!(
            !b.tool(w, &["state", &id]).status.success(),
            "{w}: state after delete"
        );
    }
    assert!(!b.path().join("state-gcr/life-gcr").exists());
}

#[test]
fn bad_bundles_are_refused_cleanly() {
    if !common::need_root("bad_bundles_are_refused_cleanly") {
        return;
    }
    let b = Bundle::new();
    let bundle = b.path().to_str().unwrap().to_string();
    type Breaker = Box<dyn Fn(&Path)>;
    // A breaker that changes the config as JSON.
    fn edit(f: impl Fn(&mut Value) + 'static) -> Breaker {
        Box::new(move |p: &Path| edit_config(p, &f))
    }
    let cases: Vec<(&str, Breaker)> = vec![
        (
            "cannot read the bundle's config",
            Box::new(|p: &Path| std::fs::remove_file(p.join("config.json")).unwrap()),
        ),
        (
            "not valid JSON",
            Box::new(|p: &Path| std::fs::write(p.join("config.json"), "{nope").unwrap()),
        ),
        (
            "not valid JSON",
            edit(|c: &mut Value| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "bogus"}));
            }),
        ),
        (
            "outside the bundle",
            edit(|c: &mut Value| {
                c["root"]["path"] = json!("/");
            }),
        ),
        (
            "contains \\\"..\\\"",
            edit(|c: &mut Value| {
                c["root"]["path"] = json!("rootfs/../rootfs");
            }),
        ),
        (
            "process.apparmorProfile is not supported",
            edit(|c: &mut Value| {
                c["process"]["apparmorProfile"] = json!("docker-default");
            }),
        ),
        (
            "prestart hook #0 (bin/true): the path is not absolute",
            edit(|c: &mut Value| {
                c["hooks"] = json!({"prestart": [{"path": "bin/true"}]});
            }),
        ),
    ];
    let orig = std::fs::read(b.path().join("config.json")).unwrap();
    for (i, (want, f)) in cases.iter().enumerate() {
        std::fs::write(b.path().join("config.json"), &orig).unwrap();
        f(b.path());
        let _ = std::fs::remove_file(b.path().join("gcr.log"));
        let id = format!("bad{i}");
        let out = b.tool("gcr", &["create", "--bundle", &bundle, &id]);
        assert_eq!(out.status.code(), Some(1), "case {i}");
        let log = std::fs::read_to_string(b.path().join("gcr.log")).unwrap();
        let line: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
        assert_eq!(line["level"], "error");
        assert!(line["msg"].to_string().contains(want), "case {i}: {log}");
        assert!(
            !b.path().join("state-gcr").join(&id).exists(),
            "case {i} left state"
        );
    }
    std::fs::write(b.path().join("config.json"), &orig).unwrap();
    // "unconfined" asks for no profile: it runs (CRI-O sends it on AppArmor hosts).
    b.edit(|c| {
        c["process"]["apparmorProfile"] = json!("unconfined");
        c["process"]["args"] = json!(["/bin/true"]);
    });
    let out = b.tool("gcr", &["run", "--bundle", &bundle, "unconfined"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(b.path().join("config.json"), &orig).unwrap();
    let out = b.tool("gcr", &["--rootless", "true", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let out = b.tool("gcr", &["--version"]);
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(
        v.starts_with("runc version ") && v.contains("\nspec: 1."),
        "{v}"
    );
}

#[path = "oci/security.rs"]
mod security;

#[path = "oci/hooks.rs"]
mod hooks;

#[path = "oci/events.rs"]
mod events;

#[path = "oci/conformance.rs"]
mod conformance;

#[path = "oci/conformance_rows.rs"]
mod conformance_rows;

#[path = "oci/conformance_resources.rs"]
mod conformance_resources;

#[path = "oci/userns.rs"]
mod userns;

#[path = "oci/notify.rs"]
mod notify;

#[path = "oci/devices_v2.rs"]
mod devices_v2;

#[test]
fn kill_9_mid_create_then_delete_force_leaves_nothing() {
    if !common::need_root("kill_9_mid_create_then_delete_force_leaves_nothing") {
        return;
    }
    let b = Bundle::new();
    let bundle = b.path().to_str().unwrap().to_string();
    let v1_devices = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(" - cgroup ") && l.split(',').any(|o| o.starts_with("devices")));
    let state_root = b.path().join("state-gcr");
    let mut seen_states = [0usize; 3]; // killed before its state, created, gone (failed)
    for i in 0..24u64 {
        let id = format!("k9-{i}");
        let group = format!("gcr-oci-k9-{}/{id}", std::process::id());
        b.edit(|c| {
            c["process"]["args"] = json!(["sleep", "30"]);
            c["linux"]["cgroupsPath"] = json!(format!("/{group}"));
            if v1_devices {
                c["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
            }
        });
        let mut child = Command::new(&b.link)
            .arg("--root")
            .arg(&state_root)
            .args(["create", "--bundle", &bundle, &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Somewhere between nothing done and done (a create takes a few ms here).
        std::thread::sleep(std::time::Duration::from_micros((i * 1277) % 30000));
        // SAFETY: kill(2) of our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        let st = state_root.join(&id);
        seen_states[if !st.exists() {
            2
        } else if st.join("state.json").exists() {
            1
        } else {
            0
        }] += 1;
        let out = b.tool("gcr", &["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "delete --force {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!st.exists(), "{id}: state left");
        let mut left = Vec::new();
        for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let g = h.path().join(&group);
            if g.exists() {
                left.push(g);
            }
        }
        for g in &left {
            let _ = std::fs::remove_dir(g);
        }
        assert!(left.is_empty(), "{id}: cgroups left: {left:?}");
    }
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(h.path().join(format!("gcr-oci-k9-{}", std::process::id())));
    }
    eprintln!("killed before state / after / failed early: {seen_states:?}");
    assert!(
        seen_states[0] + seen_states[1] > 0,
        "no kill landed mid-create"
    );
}

#[test]
fn update_changes_limits_like_runc() {
    if !common::need_root("update_changes_limits_like_runc") {
        return;
    }
    let mut b = Bundle::new();
    let bundle = b.path().to_str().unwrap().to_string();
    // A cgroup file of `group` in whichever layout the host has (v1 hierarchy or v2).
    let read = |group: &str, v1: &str, file: &str| -> String {
        let p1 = Path::new("/sys/fs/cgroup").join(v1).join(group).join(file);
        let p2 = Path::new("/sys/fs/cgroup").join(group).join(file);
        std::fs::read_to_string(&p1)
            .or_else(|_| std::fs::read_to_string(&p2))
            .unwrap_or_else(|e| panic!("{}: {e}", p1.display()))
            .trim()
            .to_string()
    };
    let v2 = !Path::new("/sys/fs/cgroup/memory").exists();
    let mut seen = Vec::new();
    for w in ["gcr", "runc"] {
        let id = format!("upd-{w}");
        let group = format!("gcr-oci-upd-{}/{id}", std::process::id());
        b.edit(|c| {
            c["process"]["args"] = json!(["sleep", "30"]);
            c["linux"]["cgroupsPath"] = json!(format!("/{group}"));
            c["linux"]["resources"] =
                json!({"memory": {"limit": 67108864}, "pids": {"limit": 100}});
        });
        b.ids.push(format!("{w}:{id}"));
        assert!(
            b.detached(w, &["run", "-d", "--bundle", &bundle, &id]),
            "{w} run -d"
        );
        let out = b.tool(
            w,
            &["update", "--memory", "128m", "--pids-limit", "50", &id],
        );
        assert!(
            out.status.success(),
            "{w} update: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // containerd's shim sends linux.resources on stdin.
        let res = b.path().join("res.json");
        std::fs::write(
            &res,
            r#"{"cpu": {"quota": 50000, "period": 100000, "cpus": "0"}}"#,
        )
        .unwrap();
        let out = Command::new(if w == "gcr" {
            b.link.clone()
        } else {
            PathBuf::from("runc")
        })
        .arg("--root")
        .arg(b.path().join(format!("state-{w}")))
        .args(["update", "--resources", "-", &id])
        .stdin(std::fs::File::open(&res).unwrap())
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{w} update -r -: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (mem, cpu, cpuset) = if v2 {
            (
                read(&group, "", "memory.max"),
                read(&group, "", "cpu.max"),
                read(&group, "", "cpuset.cpus"),
            )
        } else {
            (
                read(&group, "memory", "memory.limit_in_bytes"),
                read(&group, "cpu", "cpu.cfs_quota_us"),
                read(&group, "cpuset", "cpuset.cpus"),
            )
        };
        seen.push((mem, read(&group, "pids", "pids.max"), cpu, cpuset));
        assert!(b.tool(w, &["kill", &id, "KILL"]).status.success());
    }
    assert_eq!(seen[0], seen[1], "gcr-runc vs runc");
    assert_eq!(seen[0].0, "134217728");
    assert_eq!(seen[0].1, "50");
    assert!(seen[0].2.starts_with("50000"), "{:?}", seen[0]);
    assert_eq!(seen[0].3.trim(), "0", "the cpuset moved to CPU 0");
    // A stopped container has nothing to update; what gcr-runc cannot set is refused by
    // name.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while state(&b, "gcr", "upd-gcr")["status"] != "stopped" {
        assert!(std::time::Instant::now() < deadline, "not stopped");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = b.tool("gcr", &["update", "--pids-limit", "10", "upd-gcr"]);
    assert_eq!(out.status.code(), Some(1));
    let res = b.path().join("cpus.json");
    std::fs::write(&res, r#"{"cpu": {"realtimeRuntime": 1000}}"#).unwrap();
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("/gcr-oci-upd-{}/upd2", std::process::id()))
    });
    b.ids.push("gcr:upd2".into());
    assert!(b.detached("gcr", &["run", "-d", "--bundle", &bundle, "upd2"]));
    let out = b.tool(
        "gcr",
        &["update", "--resources", res.to_str().unwrap(), "upd2"],
    );
    assert_eq!(out.status.code(), Some(1));
    let log = std::fs::read_to_string(b.path().join("gcr.log")).unwrap();
    assert!(log.contains("container not running"), "{log}");
    assert!(log.contains("linux.resources.cpu"), "{log}");
    drop(b);
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(h.path().join(format!("gcr-oci-upd-{}", std::process::id())));
    }
}
