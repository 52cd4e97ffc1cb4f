//! Shared harness for CLI tests: a private store per test with a busybox image imported,
//! the gcr binary, root checks (skip when not root, fail when CI=true), and cleanup of
//! every container the test made, even when it fails.

#![allow(dead_code)]

pub mod links;
pub mod servers;
pub mod service;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const IMAGE: &str = "test/busybox:1";

pub fn gcr_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GCR_BIN") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_BIN_EXE_gcr"))
}

/// True when the test may run; false (after printing why) when it must be skipped.
/// Panics when skipping is not allowed (CI=true).
pub fn need_root(test: &str) -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root, and skipping is not allowed when CI=true");
    }
    eprintln!("skipped {test}: needs root");
    false
}

/// A busybox rootfs tarball, built once and kept in cargo's per-target test directory
/// (so repeated runs leave nothing in /tmp). Concurrent test binaries each build their own
/// copy and rename it into place atomically.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let tar = base.join("gcr-test-busybox.tar");
        if tar.exists() {
            return tar;
        }
        let dir = tempfile::Builder::new()
            .prefix("gcr-test-rootfs-")
            .tempdir_in(base)
            .expect("tempdir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkrootfs.sh");
        let ok = Command::new(&script)
            .arg(dir.path().join("rootfs"))
            .status()
            .expect("run mkrootfs.sh")
            .success();
        assert!(ok, "mkrootfs.sh failed (is busybox-static installed?)");
        let tmp = dir.path().join("busybox.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(dir.path().join("rootfs"))
            .arg("-cf")
            .arg(&tmp)
            .arg(".")
            .status()
            .expect("tar")
            .success();
        assert!(ok);
        std::fs::rename(&tmp, &tar).expect("rename test tarball into place");
        tar
    })
}

/// A private store; removes its containers and directory on drop.
pub struct Env {
    pub root: tempfile::TempDir,
    pub run_dir: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let root = tempfile::Builder::new()
            .prefix("gcr-test-")
            .tempdir()
            .expect("tempdir");
        let run_dir = root.path().join("run");
        let env = Env { root, run_dir };
        let out = env.gcr(&["import", busybox_tar().to_str().unwrap(), IMAGE]);
        assert!(out.status.success(), "import failed: {}", stderr(&out));
        env
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(gcr_bin());
        c.env("GCR_ROOT", self.root.path())
            .env("GCR_RUN_DIR", &self.run_dir)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub fn gcr(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run gcr")
    }

    /// Runs and asserts failure with `says` in stderr.
    pub fn fails(&self, args: &[&str], says: &str) {
        let out = self.gcr(args);
        assert!(
            !out.status.success(),
            "gcr {args:?} succeeded: {}",
            stdout(&out)
        );
        assert!(
            stderr(&out).contains(says),
            "gcr {args:?}: expected {says:?} in {}",
            stderr(&out)
        );
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.gcr(args);
        assert!(
            out.status.success(),
            "gcr {args:?} failed ({:?}): {}{}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(out) = self.cmd(&["ps", "-aq"]).output() {
            for id in stdout(&out).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        let _ = self.cmd(&["network", "__teardown"]).output();
        // The store's last processes (a housekeeper lingering 2 s after its sweep, then
        // checkpointing the ledger as it ends) go before the store's directory does: one
        // still running while the temp dir is removed writes into it again (a lone
        // ledger/key.pem left in /tmp). A short grace, then SIGKILL, then gone.
        let until = |ms: u64, f: &dyn Fn() -> bool| {
            let end = std::time::Instant::now() + std::time::Duration::from_millis(ms);
            while !f() && std::time::Instant::now() < end {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        };
        let none_left = || store_processes(self.root.path()).is_empty();
        until(300, &none_left);
        for pid in store_processes(self.root.path()) {
            // SAFETY: kill takes plain integers; the pid is a process of this test's store.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        until(2000, &none_left);
        // gcr mounts its own tmpfs ("gcr-run") on a run dir that is on disk; unmount it, or
        // the temp dir cannot be removed and the mount outlives the test.
        if let Ok(c) = std::ffi::CString::new(self.run_dir.as_os_str().as_encoded_bytes()) {
            // SAFETY: umount2 on a NUL-terminated path; failure (not mounted) is fine.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Processes (other than this one) whose environment names `root` as GCR_ROOT.
pub fn store_processes(root: &Path) -> Vec<u32> {
    let want = format!("GCR_ROOT={}", root.display());
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == want.as_bytes()))
        })
        .collect()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Polls `f` for up to `secs` seconds.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f()
}

/// The container cgroup directories on this host (`gcr/<64 hex>` in every hierarchy).
pub fn container_cgroups() -> std::collections::BTreeSet<PathBuf> {
    let mut parents = vec![PathBuf::from("/sys/fs/cgroup/gcr")];
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        parents.push(h.path().join("gcr"));
    }
    parents
        .iter()
        .filter_map(|p| std::fs::read_dir(p).ok())
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()) && e.path().is_dir()
        })
        .map(|e| e.path())
        .collect()
}

/// A block device of this host: its path and `MAJOR:MINOR`.
pub fn block_device() -> Option<(String, String)> {
    std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("ram"))
        .find_map(|n| {
            let dev = std::fs::read_to_string(format!("/sys/block/{n}/dev")).ok()?;
            let path = format!("/dev/{n}");
            std::path::Path::new(&path)
                .exists()
                .then(|| (path, dev.trim().to_string()))
        })
}

/// A file of container `id`'s cgroup: in v1 `hierarchy`, or the unified group on pure v2.
pub fn group_file(id: &str, hierarchy: &str, file: &str) -> String {
    let p = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        format!("/sys/fs/cgroup/gcr/{id}/{file}")
    } else {
        format!("/sys/fs/cgroup/{hierarchy}/gcr/{id}/{file}")
    };
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .trim()
        .to_string()
}

/// The mount points of the cgroup hierarchies (v1 and v2) in /proc/self/mountinfo.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            right.starts_with("cgroup").then_some(())?;
            left.split(' ').nth(4).map(PathBuf::from)
        })
        .collect()
}

/// Whether the host's v1 blkio hierarchy has weight files (CFQ's or BFQ's: an I/O
/// scheduler with weights).
pub fn blkio_weights() -> bool {
    ["blkio.weight", "blkio.bfq.weight"].iter().any(|f| {
        std::path::Path::new("/sys/fs/cgroup/blkio")
            .join(f)
            .exists()
    })
}
