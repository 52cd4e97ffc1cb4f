//! gcr-runc driven by containerd (Debian's containerd 1.6 and its runc v2 shim): an image
//! saved by gcr and imported with `ctr image import` runs through `ctr run --runc-binary`
//! in the foreground with its exit code, with a terminal, detached with `task exec`, `ps`,
//! `pause`/`resume`, `kill` and `delete`, a kill -9 of the shim cleaned up through
//! gcr-runc (nothing left), and a container that cannot start surfaces
//! gcr's error text through containerd. Each test starts its own containerd (private
//! root, state and sockets, CRI off) and stops it, with everything it ran, on drop.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{need_root, Env, IMAGE};

/// Where `ctr image import` puts gcr's `test/busybox:1`.
const REF: &str = "docker.io/test/busybox:1";

/// A private containerd, its namespace and a `gcr-runc` link to the gcr under test.
struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
    ns: String,
    runc: PathBuf,
}

impl Containerd {
    /// Starts containerd and imports the test image; None (the test skips) without one.
    fn start(env: &Env) -> Option<Containerd> {
        if Command::new("containerd")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipped: containerd is not installed (scripts/deps.sh installs it)");
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must have containerd"
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("gcr-ctd-")
            .tempdir()
            .unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("config.toml"),
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{0}/c.sock\"\n\
                 [ttrpc]\n  address = \"{0}/c.sock.ttrpc\"\n\
                 [debug]\n  address = \"{0}/debug.sock\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{0}/opt\"\n",
                p.display()
            ),
        )
        .unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(p.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p.join("containerd.log")).unwrap())
            .spawn()
            .expect("start containerd");
        let runc = p.join("gcr-runc");
        std::os::unix::fs::symlink(common::gcr_bin(), &runc).unwrap();
        let c = Containerd {
            dir,
            daemon,
            ns: format!("gcrtest{}", std::process::id()),
            runc,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c.ctr(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "containerd did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        let tar = c.dir.path().join("busybox.tar");
        env.ok(&["save", "-o", tar.to_str().unwrap(), IMAGE]);
        c.ok(&["images", "import", tar.to_str().unwrap()]);
        Some(c)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a")
            .arg(self.path().join("c.sock"))
            .arg("-n")
            .arg(&self.ns)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_cmd(args).output().expect("run ctr")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ctr run --rm --runc-binary RUNTIME REF ID ARGS...`
    fn run(&self, runtime: &Path, id: &str, args: &[&str]) -> Output {
        let rt = runtime.to_str().unwrap();
        let mut a = vec!["run", "--rm", "--runc-binary", rt, REF, id];
        a.extend_from_slice(args);
        self.ctr(&a)
    }

    /// The status column of `ctr task ls` for `id`.
    fn status(&self, id: &str) -> String {
        self.ok(&["task", "ls"])
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("")
            .to_string()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Whatever a failed test left: tasks, containers, then the daemon and its shims.
        let tasks = self.ctr(&["task", "ls", "-q"]);
        for id in String::from_utf8_lossy(&tasks.stdout).split_whitespace() {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
            std::thread::sleep(Duration::from_millis(100));
            let _ = self.ctr(&["task", "delete", "-f", id]);
        }
        let cs = self.ctr(&["containers", "ls", "-q"]);
        for id in String::from_utf8_lossy(&cs.stdout).split_whitespace() {
            let _ = self.ctr(&["containers", "rm", id]);
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = Command::new("pkill")
            .args([
                "-KILL",
                "-f",
                &format!("containerd-shim-runc-v2 -namespace {} ", self.ns),
            ])
            .status();
        // Mounts containerd made under our directory (snapshots, task rootfs).
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let base = self.path().to_string_lossy().into_owned();
        let mut mounts: Vec<&str> = mi
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&base))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        remove_ns_cgroups(&self.ns);
        let _ = std::fs::remove_dir_all(format!("/run/containerd/runc/{}", self.ns));
        let _ = std::fs::remove_dir_all(format!(
            "/run/containerd/io.containerd.runtime.v2.task/{}",
            self.ns
        ));
    }
}

/// ctr puts a task in the cgroup `/NAMESPACE/ID`; the runtime removes the task's group but,
/// like runc, leaves the namespace's: the groups (now empty) are removed in every cgroup
/// hierarchy mounted here, deepest first.
fn remove_ns_cgroups(ns: &str) {
    for mount in common::cgroup_mounts() {
        let top = mount.join(ns);
        let mut dirs: Vec<PathBuf> = walk_dirs(&top);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            let _ = std::fs::remove_dir(&d);
        }
    }
}

/// `top` and every directory below it.
fn walk_dirs(top: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![top.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        todo.extend(
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
        out.push(d);
    }
    out
}

fn text(o: &Output) -> (Option<i32>, String, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .replace("\r\n", "\n"),
        String::from_utf8_lossy(&o.stderr).trim().to_string(),
    )
}

#[test]
fn ctr_runs_gcr_runc_in_the_foreground_like_runc() {
    if !need_root("ctr_runs_gcr_runc_in_the_foreground_like_runc") {
        return;
    }
    let env = Env::new();
    let Some(c) = Containerd::start(&env) else {
        return;
    };
    let script = "echo hello $(id -u) $(cat /proc/1/comm); grep -c . /proc/self/uid_map; exit 3";
    let ours = text(&c.run(&c.runc, "fg-gcr", &["sh", "-c", script]));
    let theirs = text(&c.run(Path::new("runc"), "fg-runc", &["sh", "-c", script]));
    assert_eq!(
        ours.0,
        Some(3),
        "gcr-runc's exit code through ctr: {ours:?}"
    );
    assert_eq!(ours, theirs, "gcr-runc vs runc");
    assert_eq!(ours.1, "hello 0 sh\n1", "{ours:?}");
    // Nothing of the container stays in gcr-runc's state root.
    let root = PathBuf::from(format!("/run/containerd/runc/{}", c.ns));
    let left: Vec<_> = std::fs::read_dir(&root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter().all(|n| n.to_string_lossy().starts_with('.')),
        "{left:?}"
    );
    // The tasks' groups were made under the namespace's (in the memory hierarchy on v1,
    // the unified one on v2); the test's cleanup leaves neither behind.
    let groups = [
        format!("/sys/fs/cgroup/memory/{}", c.ns),
        format!("/sys/fs/cgroup/{}", c.ns),
    ];
    assert!(
        groups.iter().any(|g| Path::new(g).is_dir()),
        "no namespace group in {groups:?}"
    );
    drop(c);
    for g in &groups {
        assert!(!Path::new(g).exists(), "{g} left behind");
    }
}

#[test]
fn ctr_runs_gcr_runc_with_a_terminal() {
    if !need_root("ctr_runs_gcr_runc_with_a_terminal") {
        return;
    }
    let env = Env::new();
    let Some(c) = Containerd::start(&env) else {
        return;
    };
    // ctr -t needs a terminal of its own: `script` gives it one. (The pty comes from the
    // host's devpts, not the container's: `tty` cannot name it inside yet.)
    let ctr = format!(
        "ctr -a {} -n {} run --rm -t --runc-binary {} {REF} tty-gcr sh -c '[ -t 0 ] && [ -t 1 ] && echo both-ttys; stty size; exit 4'",
        c.path().join("c.sock").display(),
        c.ns,
        c.runc.display()
    );
    let out = Command::new("script")
        .args(["-qec", &ctr, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    let (code, stdout, _) = text(&out);
    assert_eq!(code, Some(4), "{stdout}");
    assert!(stdout.contains("both-ttys"), "{stdout}");
}

#[test]
fn ctr_task_lifecycle_on_gcr_runc() {
    if !need_root("ctr_task_lifecycle_on_gcr_runc") {
        return;
    }
    let env = Env::new();
    let Some(c) = Containerd::start(&env) else {
        return;
    };
    let rt = c.runc.to_str().unwrap();
    c.ok(&["run", "-d", "--runc-binary", rt, REF, "bg", "sleep", "300"]);
    assert_eq!(c.status("bg"), "RUNNING");
    // exec: output and exit code come back through the shim.
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "bg",
        "sh",
        "-c",
        "echo in-$(cat /proc/1/comm); exit 6",
    ]);
    assert_eq!(text(&out).0, Some(6), "{:?}", text(&out));
    assert_eq!(text(&out).1, "in-sleep");
    // ps lists the container's processes (host pids).
    let ps = c.ok(&["task", "ps", "bg"]);
    let pids: Vec<i32> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(!pids.is_empty(), "{ps}");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", pids[0])).unwrap();
    assert_eq!(comm.trim(), "sleep");
    // pause and resume freeze and thaw it.
    c.ok(&["task", "pause", "bg"]);
    assert_eq!(c.status("bg"), "PAUSED");
    let state = std::fs::read_to_string(format!("/proc/{}/status", pids[0])).unwrap();
    assert!(
        state
            .lines()
            .any(|l| l.starts_with("State:") && !l.contains("R (")),
        "{state}"
    );
    c.ok(&["task", "resume", "bg"]);
    assert_eq!(c.status("bg"), "RUNNING");
    // kill, then delete: the exit status is containerd's to report.
    c.ok(&["task", "kill", "-s", "KILL", "bg"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.status("bg") != "STOPPED" {
        assert!(Instant::now() < deadline, "not stopped: {}", c.status("bg"));
        std::thread::sleep(Duration::from_millis(20));
    }
    c.ok(&["task", "delete", "bg"]);
    c.ok(&["containers", "rm", "bg"]);
    assert!(c.status("bg").is_empty());
    assert!(
        std::fs::metadata(format!("/proc/{}", pids[0])).is_err(),
        "the container's process outlived delete"
    );
    // Its cgroup went with it (containerd's default cgroupsPath is /<namespace>/<id>).
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let g = h.path().join(&c.ns).join("bg");
        assert!(!g.exists(), "cgroup left: {}", g.display());
    }
}

#[test]
fn a_container_that_cannot_start_surfaces_gcrs_error_through_containerd() {
    if !need_root("a_container_that_cannot_start_surfaces_gcrs_error_through_containerd") {
        return;
    }
    let env = Env::new();
    let Some(c) = Containerd::start(&env) else {
        return;
    };
    let (code, _, err) = text(&c.run(&c.runc, "bad", &["/no/such/program"]));
    assert_ne!(code, Some(0));
    assert!(
        err.contains("OCI runtime create failed")
            && err.contains("\"/no/such/program\": executable file not found"),
        "containerd did not pass gcr's error on: {err}"
    );
    // Nothing is left: no task, and the container record goes with --rm.
    assert!(c.status("bad").is_empty());
}

/// The pids of processes whose command line contains every one of `words`.
fn pids_with(words: &[&str]) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if words.iter().all(|w| cmd.contains(w)) {
            out.push(pid);
        }
    }
    out
}

/// Kill -9 of the shim under a running gcr-runc container: containerd cleans up through
/// the runtime (`delete --force`), and nothing of the container is left — its processes,
/// its cgroup, gcr-runc's state directory, its rootfs mount.
#[test]
fn killing_the_shim_leaves_nothing_behind() {
    if !need_root("killing_the_shim_leaves_nothing_behind") {
        return;
    }
    let env = Env::new();
    let Some(c) = Containerd::start(&env) else {
        return;
    };
    let rt = c.runc.to_str().unwrap();
    c.ok(&[
        "run",
        "-d",
        "--runc-binary",
        rt,
        REF,
        "shimk",
        "sleep",
        "300",
    ]);
    assert_eq!(c.status("shimk"), "RUNNING");
    let ps = c.ok(&["task", "ps", "shimk"]);
    let pid: i32 = ps
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no process in {ps}"));
    let state = PathBuf::from(format!("/run/containerd/runc/{}/shimk", c.ns));
    assert!(
        state.join("state.json").exists(),
        "gcr-runc keeps its state under --root"
    );
    let shims = pids_with(&["containerd-shim-runc-v2", &format!("-namespace {}", c.ns)]);
    assert_eq!(shims.len(), 1, "one shim: {shims:?}");
    // SAFETY: kill(2) of the shim found above.
    assert_eq!(unsafe { libc::kill(shims[0], libc::SIGKILL) }, 0);
    // containerd sees the shim die and deletes the task through the runtime.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(format!("/proc/{pid}")).is_ok() || state.exists() {
        assert!(
            Instant::now() < deadline,
            "after the shim's death: process alive {}, state {} ({})",
            std::fs::metadata(format!("/proc/{pid}")).is_ok(),
            state.exists(),
            std::fs::read_to_string(c.path().join("containerd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = c.ctr(&["task", "delete", "-f", "shimk"]);
    c.ok(&["containers", "rm", "shimk"]);
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let g = h.path().join(&c.ns).join("shimk");
        assert!(!g.exists(), "cgroup left: {}", g.display());
    }
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.lines().any(|l| l.contains("/shimk/rootfs")),
        "the container's rootfs is still mounted"
    );
}
