//! The CLI's output and paths: every command exits quietly (status 0, nothing on stderr)
//! when the reader of its stdout has gone, reports other write errors, and a relative
//! store root or run dir is made absolute before the background processes (the trash
//! reaper, supervisors) see it.

mod common;
use common::*;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with stdout a pipe whose read end is already closed, so the first write
/// fails with EPIPE every time (no race with a reader that is still starting).
fn with_closed_stdout(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    cmd.stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run gcr")
}

/// Asserts `gcr ARGS` ended quietly: status 0, and no panic or other message on stderr.
fn assert_quiet(args: &[&str], out: &Output) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "gcr {args:?} panicked: {err}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "gcr {args:?} with a closed stdout: {err}"
    );
    assert_eq!(err, "", "gcr {args:?} wrote to stderr");
}

/// Detaches whatever is still mounted at `path`. A reaper lingering after a test can keep
/// the run dir's tmpfs busy through `network __teardown`, which then leaves it mounted and
/// the temp dir undeletable.
fn detach(path: &Path) {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: `c` is a valid NUL-terminated path; umount2 only reads it, and fails
    // harmlessly (EINVAL) once nothing is mounted there.
    while unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {}
}

/// [`Env`], plus a last cleanup of its run dir and root (see [`detach`]).
struct Store(Option<Env>);

impl Store {
    fn new() -> Store {
        Store(Some(Env::new()))
    }
}

impl std::ops::Deref for Store {
    type Target = Env;
    fn deref(&self) -> &Env {
        self.0.as_ref().expect("env")
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let Some(env) = self.0.take() else { return };
        let run = env.run_dir.clone();
        let root = env.root.path().to_path_buf();
        drop(env);
        detach(&run);
        let _ = std::fs::remove_dir_all(&root);
    }
}

/// A command that needs no store: no root, no image.
fn bare(args: &[&str]) -> Command {
    let mut c = Command::new(gcr_bin());
    c.args(args).stdin(Stdio::null());
    c
}

#[test]
fn storeless_commands_exit_quietly_on_a_closed_stdout() {
    for args in [
        &["version"][..],
        &["version", "--format", "json"],
        &["completion", "bash"],
        &["completion", "zsh"],
    ] {
        let out = with_closed_stdout(bare(args));
        assert_quiet(args, &out);
    }
}

#[test]
fn other_write_errors_are_reported_without_a_panic() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let out = bare(&["version"])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .expect("run gcr");
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("Error: cannot write to standard output: "),
        "{err}"
    );
}

#[test]
fn store_commands_exit_quietly_on_a_closed_stdout() {
    if !need_root("store_commands_exit_quietly_on_a_closed_stdout") {
        return;
    }
    let env = Store::new();
    // Something for ps, events, logs and wait to print.
    let id = env.ok(&["run", "-d", "--name", "quiet", IMAGE, "echo", "hello"]);
    let id = id.trim();
    assert!(eventually(10, || env
        .ok(&["ps", "-a"])
        .contains("Exited (0)")));
    let cases: &[&[&str]] = &[
        &["ps", "-a"],
        &["ps", "-aq"],
        &["ps", "-a", "--format", "json"],
        &["images"],
        &["images", "-q"],
        &["images", "--format", "json"],
        &["inspect", IMAGE],
        &["inspect", id],
        &["info"],
        &["info", "--format", "json"],
        &["history", IMAGE],
        &["history", "--format", "json", IMAGE],
        &["events"],
        &["events", "--format", "json"],
        &["logs", id],
        &["wait", id],
        &["system", "df"],
        &["network", "ls"],
        &["volume", "ls"],
    ];
    for args in cases {
        let out = with_closed_stdout(env.cmd(args));
        assert_quiet(args, &out);
    }
    // An action whose output nobody reads still happens for every name.
    let a = env.ok(&["create", "--name", "rm-one", IMAGE, "true"]);
    let b = env.ok(&["create", "--name", "rm-two", IMAGE, "true"]);
    let out = with_closed_stdout(env.cmd(&["rm", "rm-one", "rm-two"]));
    assert_quiet(&["rm", "rm-one", "rm-two"], &out);
    let left = env.ok(&["ps", "-aq"]);
    assert!(
        !left.contains(&a.trim()[..12]) && !left.contains(&b.trim()[..12]),
        "rm with a closed stdout left containers: {left}"
    );
}

/// `logs -f` of a container that never stops must end once its reader has gone, not
/// follow on for the container's lifetime.
#[test]
fn follow_ends_when_the_reader_goes() {
    if !need_root("follow_ends_when_the_reader_goes") {
        return;
    }
    let env = Store::new();
    let ticker = "while :; do echo tick; sleep 0.1; done";
    let id = env.ok(&["run", "-d", IMAGE, "sh", "-c", ticker]);
    let id = id.trim().to_string();
    assert!(eventually(10, || env.ok(&["logs", &id]).contains("tick")));
    for args in [&["logs", "-f", &id][..], &["attach", &id]] {
        let mut child = env
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gcr");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut one = [0u8; 1];
        stdout.read_exact(&mut one).expect("read the first byte");
        drop(stdout);
        let end = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break Some(s);
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let status =
            status.unwrap_or_else(|| panic!("gcr {args:?} still ran 10 s after its reader went"));
        assert!(!err.contains("panicked"), "gcr {args:?}: {err}");
        assert_eq!(status.code(), Some(0), "gcr {args:?}: {err}");
    }
    // The container runs on: the reader leaving is no reason to stop it.
    assert!(env.ok(&["ps", "-q"]).contains(&id[..12]));
}

/// A store addressed by relative paths from its own working directory; removes its
/// containers, takes its run dir off the host and deletes everything on drop.
struct RelativeStore {
    cwd: tempfile::TempDir,
    /// Unique names, so the test can check nothing appeared under `/` (the reaper's cwd).
    root: String,
    run: String,
}

impl RelativeStore {
    fn new() -> RelativeStore {
        let cwd = tempfile::Builder::new()
            .prefix("gcr-test-rel-")
            .tempdir()
            .expect("tempdir");
        let tag = cwd
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("tempdir name")
            .to_string();
        RelativeStore {
            cwd,
            root: format!("store-{tag}"),
            run: format!("run-{tag}"),
        }
    }

    fn abs_root(&self) -> PathBuf {
        self.cwd.path().join(&self.root)
    }

    fn abs_run(&self) -> PathBuf {
        self.cwd.path().join(&self.run)
    }

    /// `gcr SUB --root ./store ARGS...` (after the subcommand, so `run` takes its fast
    /// parser) with `GCR_RUN_DIR=./run`, in the store's working directory.
    fn cmd(&self, sub: &str, args: &[&str]) -> Command {
        let mut c = Command::new(gcr_bin());
        c.current_dir(self.cwd.path())
            .env_remove("GCR_ROOT")
            .env("GCR_RUN_DIR", format!("./{}", self.run))
            .arg(sub)
            .arg("--root")
            .arg(format!("./{}", self.root))
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn ok(&self, sub: &str, args: &[&str]) -> String {
        let out = self.cmd(sub, args).output().expect("run gcr");
        assert!(
            out.status.success(),
            "gcr {sub} {args:?} failed ({:?}): {}{}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Entries waiting in the store's trash for the reaper.
    fn trash(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.abs_root().join("trash")) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }
}

impl Drop for RelativeStore {
    fn drop(&mut self) {
        if let Ok(out) = self.cmd("ps", &["-aq"]).output() {
            for id in stdout(&out).split_whitespace() {
                let _ = self.cmd("rm", &["-f", id]).output();
            }
        }
        let _ = self.cmd("network", &["__teardown"]).output();
        detach(&self.abs_run());
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_relative_root_and_run_dir_work_for_background_processes() {
    if !need_root("a_relative_root_and_run_dir_work_for_background_processes") {
        return;
    }
    let s = RelativeStore::new();
    s.ok("import", &[busybox_tar().to_str().unwrap(), IMAGE]);
    assert!(
        s.abs_root().join("blobs").is_dir(),
        "no store at {:?}",
        s.abs_root()
    );

    // The engine sees absolute paths.
    let info: serde_json::Value =
        serde_json::from_str(&s.ok("info", &["--format", "json"])).expect("info json");
    assert_eq!(info["DockerRootDir"], s.abs_root().to_str().unwrap());
    assert_eq!(info["RunDir"], s.abs_run().to_str().unwrap());
    // GCR_ROOT given relative is made absolute too.
    let out = Command::new(gcr_bin())
        .current_dir(s.cwd.path())
        .env("GCR_ROOT", format!("./{}", s.root))
        .env("GCR_RUN_DIR", format!("./{}", s.run))
        .args(["info", "--format", "json"])
        .output()
        .expect("run gcr");
    let info: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("info json");
    assert_eq!(info["DockerRootDir"], s.abs_root().to_str().unwrap());

    // A foreground run that removes its container: the reaper empties the trash.
    s.ok("run", &["--rm", IMAGE, "true"]);
    assert_eq!(s.ok("ps", &["-aq"]).trim(), "");
    assert!(
        eventually(10, || s.trash().is_empty()),
        "the reaper left {:?} in the trash",
        s.trash()
    );

    // A detached container: its supervisor records the exit, rm hands it to the reaper.
    let id = s.ok("run", &["-d", IMAGE, "sleep", "100"]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    assert!(s.ok("ps", &[]).contains(&id[..12]));
    s.ok("stop", &["-t", "1", id]);
    let ps = s.ok("ps", &["-a"]);
    assert!(ps.contains(&id[..12]) && ps.contains("Exited ("), "{ps}");
    let code = s.ok("wait", &[id]);
    assert_eq!(code.trim(), "137", "stop -t 1 of a sleep kills it");
    assert_eq!(s.ok("rm", &[id]).trim(), id);
    assert_eq!(s.ok("ps", &["-aq"]).trim(), "");
    assert!(
        eventually(10, || s.trash().is_empty()),
        "the reaper left {:?} in the trash",
        s.trash()
    );
    assert_eq!(
        names_in(&s.abs_root().join("containers")),
        Vec::<String>::new()
    );

    // Nothing landed relative to another working directory (the reaper runs in /).
    for name in [&s.root, &s.run] {
        assert!(!Path::new("/").join(name).exists(), "/{name} was created");
    }
}
