//! Store integrity through the CLI: `rmi` + a new import of the same name + `run` (the run
//! dir's image cache must not point at removed snapshots), what another local user can see
//! of a store, and `doctor --snapshots` catching a flipped byte in an unpacked layer.

mod common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The snapshot directories of a store.
fn snapshots(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[test]
fn rmi_then_import_then_run_works() {
    if !need_root("rmi_then_import_then_run_works") {
        return;
    }
    let env = Env::new();
    // Twice: the second run may start from the run dir's image cache.
    for _ in 0..2 {
        assert_eq!(env.ok(&["run", "--rm", IMAGE, "echo", "one"]).trim(), "one");
    }
    env.ok(&["rmi", IMAGE]);
    assert!(
        snapshots(env.root.path()).is_empty(),
        "rmi removed the snapshot"
    );
    env.ok(&["import", busybox_tar().to_str().unwrap(), IMAGE]);
    for _ in 0..2 {
        assert_eq!(env.ok(&["run", "--rm", IMAGE, "echo", "two"]).trim(), "two");
    }
}

/// A store whose parent every user can pass through, so that only the store's own
/// permissions keep other users out; its containers go on drop.
struct OpenParent {
    parent: tempfile::TempDir,
    root: PathBuf,
    run_dir: PathBuf,
}

impl OpenParent {
    fn new() -> OpenParent {
        let parent = tempfile::Builder::new()
            .prefix("gcr-test-perm-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = parent.path().join("store");
        let run_dir = parent.path().join("run");
        OpenParent {
            parent,
            root,
            run_dir,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(gcr_bin());
        c.env("GCR_ROOT", &self.root)
            .env("GCR_RUN_DIR", &self.run_dir)
            .args(args)
            .stdin(std::process::Stdio::null());
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "gcr {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }
}

impl Drop for OpenParent {
    fn drop(&mut self) {
        if let Ok(out) = self.cmd(&["ps", "-aq"]).output() {
            for id in stdout(&out).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        let _ = self.cmd(&["network", "__teardown"]).output();
        // gcr mounted its own tmpfs on the run dir: unmount it, or the temp dir cannot be
        // removed and the mount outlives the test.
        if let Ok(c) = std::ffi::CString::new(self.run_dir.as_os_str().as_encoded_bytes()) {
            // SAFETY: umount2 on a NUL-terminated path; failure (not mounted) is fine.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Runs `sh -c script` as `nobody`; true when it succeeded.
fn as_nobody(script: &str) -> bool {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(script)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run setpriv")
        .success()
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display())
}

#[test]
fn other_users_can_neither_read_nor_write_the_store() {
    if !need_root("other_users_can_neither_read_nor_write_the_store") {
        return;
    }
    let s = OpenParent::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), IMAGE]);
    let id = s
        .ok(&["run", "-d", "-e", "SECRET=hunter2", IMAGE, "sleep", "60"])
        .trim()
        .to_string();
    assert!(!id.is_empty());
    // The probe itself works: nobody can read what is open to all.
    assert!(as_nobody(&format!("cat {} >/dev/null", q(busybox_tar()))));
    assert!(as_nobody(&format!("ls {} >/dev/null", q(s.parent.path()))));

    let snap = snapshots(&s.root).remove(0);
    let container = s.root.join("containers").join(&id);
    assert!(container.is_dir(), "{}", container.display());
    for (what, script) in [
        ("the database", format!("cat {}", q(&s.root.join("gcr.db")))),
        ("the WAL", format!("cat {}", q(&s.root.join("gcr.db-wal")))),
        ("the store root", format!("ls {}", q(&s.root))),
        ("snapshots", format!("ls {}", q(&s.root.join("snapshots")))),
        (
            "a snapshot's files",
            format!("cat {}", q(&snap.join("etc/passwd"))),
        ),
        ("the container's files", format!("ls {}", q(&container))),
        (
            "an image's /tmp",
            format!("touch {}", q(&snap.join("tmp/planted"))),
        ),
        (
            "the store root (write)",
            format!("touch {}", q(&s.root.join("planted"))),
        ),
        (
            "the blob store",
            format!("touch {}", q(&s.root.join("blobs/sha256/planted"))),
        ),
        (
            "the run dir's container files",
            format!("cat {}", q(&s.run_dir.join(&id).join("hosts"))),
        ),
        ("the run dir", format!("ls {}", q(&s.run_dir))),
    ] {
        assert!(!as_nobody(&script), "nobody could reach {what}: {script}");
    }
    assert!(!snap.join("tmp/planted").exists());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.root), 0o700);
    assert_eq!(mode(&s.root.join("gcr.db")), 0o600);

    // A store left open by an older gcr is closed up by the next command.
    s.ok(&["rm", "-f", &id]);
    // The housekeeper that rm woke opens the store too (and would close it up at once).
    let reaper = format!("__reap {}", s.root.display());
    assert!(
        common::eventually(10, || !std::process::Command::new("pgrep")
            .args(["-f", &reaper])
            .status()
            .unwrap()
            .success()),
        "the housekeeper did not exit"
    );
    std::fs::set_permissions(&s.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        s.root.join("snapshots"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(
        s.root.join("gcr.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert!(as_nobody(&format!(
        "cat {} >/dev/null",
        q(&s.root.join("gcr.db"))
    )));
    s.ok(&["images"]);
    assert_eq!(mode(&s.root), 0o700);
    assert_eq!(mode(&s.root.join("snapshots")), 0o700);
    assert_eq!(mode(&s.root.join("gcr.db")), 0o600);
    assert!(!as_nobody(&format!("cat {}", q(&s.root.join("gcr.db")))));
}

#[test]
fn doctor_snapshots_catches_a_flipped_byte() {
    if !need_root("doctor_snapshots_catches_a_flipped_byte") {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "--rm", IMAGE, "true"]);
    let snap = snapshots(env.root.path()).remove(0);
    let bin = std::fs::canonicalize(snap.join("bin/busybox")).unwrap();
    let mut bytes = std::fs::read(&bin).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&bin, &bytes).unwrap();

    // Same size, same count: plain doctor cannot tell.
    env.ok(&["doctor"]);
    let out = env.gcr(&["doctor", "--snapshots"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let key = snap.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("PROBLEM:") && l.contains(&key) && l.contains("changed")),
        "{}",
        stdout(&out)
    );
    // Repair drops the damaged snapshot; the next run unpacks it again.
    let fixed = env.ok(&["doctor", "--snapshots", "--repair"]);
    assert!(
        fixed.contains("REPAIRED:") && fixed.contains(&key),
        "{fixed}"
    );
    assert_eq!(env.ok(&["run", "--rm", IMAGE, "echo", "ok"]).trim(), "ok");
    bytes[at] ^= 0x01;
    assert!(
        std::fs::read(&bin).unwrap() == bytes,
        "unpacked again from the blob"
    );
    env.ok(&["doctor", "--snapshots"]);
}

#[test]
fn loaded_plain_layers_are_labelled_plain_and_doctor_checks_labels() {
    if !need_root("loaded_plain_layers_are_labelled_plain_and_doctor_checks_labels") {
        return;
    }
    let src = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("img.tar");
    src.ok(&["save", "-o", tar.to_str().unwrap(), IMAGE]);
    let env = Env::new();
    env.ok(&["rmi", IMAGE]);
    env.ok(&["load", "-i", tar.to_str().unwrap()]);
    let doc: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", IMAGE])).unwrap();
    let plain = "application/vnd.docker.image.rootfs.diff.tar";
    assert_eq!(doc[0]["Layers"][0]["MediaType"], plain, "{doc}");
    let digest = doc[0]["Manifest"]["Digest"].as_str().unwrap();
    let blob = env
        .root
        .path()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap();
    assert_eq!(manifest["layers"][0]["mediaType"], plain, "{manifest}");
    env.ok(&["doctor"]);
    // A label that promises gzip over a plain tar is a problem doctor names.
    let db = env.root.path().join("gcr.db");
    let st = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute(\"UPDATE layers SET media_type='application/vnd.docker.image.rootfs.diff.tar.gzip'\"); \
             c.commit()",
        )
        .arg(&db)
        .status()
        .unwrap();
    assert!(st.success());
    let out = env.gcr(&["doctor"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("PROBLEM:")
            && l.contains("labelled")
            && l.contains("plain tar")),
        "{}",
        stdout(&out)
    );
}
