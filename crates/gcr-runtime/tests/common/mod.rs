//! Shared fixtures of the root-only container tests: a busybox rootfs used as the single
//! overlay lower, a Docker-like spec, a runner that captures output, and leak checks.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use gcr_runtime::cgroups::Resources;
use gcr_runtime::{
    spawn, wait_exit, ExitStatus, Launch, Network, Rootfs, RuntimeError, SeccompMode, Stdio,
};
use oci_spec::runtime::{Capability, LinuxCapabilitiesBuilder, ProcessBuilder, Spec};

static SERIAL: Mutex<()> = Mutex::new(());

/// True when the test may run; prints the skip note, panics under CI=true.
pub fn need_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("needs root, and CI=true forbids skipping");
    }
    println!("skipped: needs root");
    false
}

/// A busybox root filesystem plus the overlay dirs of one container.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub lower: PathBuf,
    _lock: MutexGuard<'static, ()>,
}

impl Fixture {
    pub fn new() -> Fixture {
        let lock = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("gcr-rt-test")
            .tempdir()
            .unwrap();
        let lower = dir.path().join("lower");
        for d in [
            "bin", "proc", "sys", "dev", "etc", "tmp", "mnt", "root", "home",
        ] {
            fs::create_dir_all(lower.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", lower.join("bin/busybox")).unwrap();
        let list = std::process::Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .unwrap();
        for name in String::from_utf8_lossy(&list.stdout).lines() {
            if name != "busybox" {
                let _ = symlink("busybox", lower.join("bin").join(name));
            }
        }
        fs::write(lower.join("notexec"), "#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(lower.join("notexec"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(lower.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        Fixture {
            dir,
            lower,
            _lock: lock,
        }
    }

    /// A fresh overlay (upper/work/target) named `n`.
    pub fn rootfs(&self, n: &str) -> Rootfs {
        let base = self.dir.path().join(n);
        for d in ["upper", "work", "rootfs"] {
            fs::create_dir_all(base.join(d)).unwrap();
        }
        Rootfs::Overlay {
            lowers: vec![self.lower.clone()],
            upper: base.join("upper"),
            work: base.join("work"),
            target: base.join("rootfs"),
            volatile: false,
        }
    }

    /// Panics when any mount under the temp dir is visible on the host.
    pub fn assert_no_mounts(&self) {
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let p = self.dir.path().to_string_lossy().into_owned();
        assert!(!mi.contains(&p), "a mount under {p} leaked:\n{mi}");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Best effort: never leave a mount behind even when a test failed.
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let p = self.dir.path().to_string_lossy().into_owned();
        for line in mi.lines().filter(|l| l.contains(&p)) {
            if let Some(mp) = line.split(' ').nth(4) {
                let c = std::ffi::CString::new(mp).unwrap();
                // SAFETY: lazy unmount of a path under our own temp dir.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

pub const DOCKER_CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// oci-spec's default spec (runc-like mounts, masked/readonly paths, namespaces) with
/// Docker's capability set, no no_new_privs and the given command.
pub fn spec(args: &[&str]) -> Spec {
    let mut spec = Spec::default();
    let set: std::collections::HashSet<Capability> = DOCKER_CAPS.iter().copied().collect();
    let caps = LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .build()
        .unwrap();
    let process = ProcessBuilder::default()
        .args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .env(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ])
        .cwd("/")
        .capabilities(caps)
        .no_new_privileges(false)
        .build()
        .unwrap();
    spec.set_process(Some(process));
    spec.set_hostname(Some("gcrtest".into()));
    // Docker's default is a writable root (oci-spec's default spec has it read-only).
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    spec
}

pub struct Opts {
    pub init: bool,
    pub cgroup: bool,
    pub seccomp: SeccompMode,
    pub network: Network,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            init: false,
            cgroup: false,
            seccomp: SeccompMode::DockerDefault,
            network: Network::NewLoopback,
        }
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = std::io::pipe().unwrap();
    (r.into(), w.into())
}

/// Runs a container to completion: (status, stdout+stderr).
pub fn run(
    fx: &Fixture,
    name: &str,
    spec: &Spec,
    o: Opts,
) -> Result<(ExitStatus, String), RuntimeError> {
    let (r, w) = pipe();
    let w2 = w.try_clone().unwrap();
    let id = format!("gcrtest-{}-{name}", std::process::id());
    let network = o.network;
    let running = spawn(Launch {
        id: &id,
        spec,
        rootfs: fx.rootfs(name),
        stdio: Stdio::Fds {
            stdin: None,
            stdout: w,
            stderr: w2,
        },
        seccomp: o.seccomp,
        init: o.init,
        cgroup_resources: o.cgroup.then(Resources::default),
        network,
        while_starting: None,
        gate: false,
        secrets: Vec::new(),
    });
    let running = match running {
        Ok(r) => r,
        Err(e) => {
            // A failed start leaves no cgroup behind.
            if o.cgroup {
                let mgr = gcr_runtime::cgroups::CgroupManager::detect().unwrap();
                for p in mgr.open(&id).paths() {
                    assert!(
                        !p.exists(),
                        "cgroup {} left behind by a failed start",
                        p.display()
                    );
                }
            }
            fx.assert_no_mounts();
            return Err(e);
        }
    };
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    let st = wait_exit(&running).unwrap();
    if let Some(cg) = &running.cgroup {
        let paths: Vec<PathBuf> = cg.paths().iter().map(|p| p.to_path_buf()).collect();
        cg.destroy().unwrap();
        for p in paths {
            assert!(!p.exists(), "cgroup {} left behind", p.display());
        }
    }
    // SAFETY: probing whether the reaped pid still exists.
    let alive = unsafe { libc::kill(running.pid, 0) } == 0;
    assert!(
        !alive || pid_is_not_ours(running.pid),
        "container pid {} still alive",
        running.pid
    );
    fx.assert_no_mounts();
    Ok((st, out))
}

fn pid_is_not_ours(pid: i32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let ppid: i32 = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    ppid != std::process::id() as i32
}

pub fn sh(script: &str) -> Spec {
    spec(&["sh", "-c", script])
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A started container that is killed, reaped and whose cgroup is removed on drop.
pub struct Started {
    pub running: Option<gcr_runtime::Running>,
}

impl Started {
    pub fn pid(&self) -> i32 {
        self.running.as_ref().unwrap().pid
    }

    /// Waits for the container and cleans up; returns its status.
    pub fn wait(mut self) -> ExitStatus {
        let r = self.running.take().unwrap();
        let st = wait_exit(&r).unwrap();
        if let Some(cg) = &r.cgroup {
            cg.destroy().unwrap();
        }
        st
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            // SAFETY: killing our own child container.
            unsafe { libc::kill(r.pid, libc::SIGKILL) };
            let _ = wait_exit(&r);
            if let Some(cg) = &r.cgroup {
                let _ = cg.destroy();
            }
        }
    }
}

/// Starts a container in the background.
pub fn start(fx: &Fixture, name: &str, spec: &Spec, stdio: Stdio, cgroup: bool) -> Started {
    let id = format!("gcrtest-{}-{name}", std::process::id());
    let running = spawn(Launch {
        id: &id,
        spec,
        rootfs: fx.rootfs(name),
        stdio,
        seccomp: SeccompMode::DockerDefault,
        init: false,
        cgroup_resources: cgroup.then(Resources::default),
        network: Network::NewLoopback,
        while_starting: None,
        gate: false,
        secrets: Vec::new(),
    })
    .unwrap();
    Started {
        running: Some(running),
    }
}

/// A pipe for capturing output: (read end as File, write end, second write end).
pub fn out_pipe() -> (std::fs::File, OwnedFd, OwnedFd) {
    let (r, w) = pipe();
    let w2 = w.try_clone().unwrap();
    (std::fs::File::from(r), w, w2)
}

/// Reads a pty master until the slave side is gone (EIO).
pub fn read_master(m: OwnedFd) -> String {
    let mut f = std::fs::File::from(m);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match f.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}
