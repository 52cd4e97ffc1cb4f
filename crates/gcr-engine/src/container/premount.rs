//! A container's root overlay made ahead, as a detached mount (the new mount API:
//! `fsopen`, `fsconfig`, `fsmount`): the housekeeper makes it, with the container's upper and
//! work directories, while the run prepares the rest, and hands the mount over; the
//! container's process only attaches it (`move_mount`). Mounting an overlay is the largest
//! single step of a start (the kernel probes the work directory: a directory, a temporary
//! file and a whiteout made and deleted on the upper filesystem).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use gcr_runtime::Rootfs;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
use serde::{Deserialize, Serialize};

use super::config::RunOptions;
use super::imagecache::CachedImage;
use super::mountpoints;
use crate::{names, Engine, EngineError};

/// What to mount: layers (top first) over the container's directory (`upper/`, `work/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Premount {
    pub lowers: Vec<PathBuf>,
    pub dir: PathBuf,
    /// overlayfs' `volatile` (throw-away containers).
    pub volatile: bool,
    /// The /etc files the layers were chosen for (see [`mountpoints::layer`]); the run's
    /// own, not sent.
    #[serde(skip)]
    pub stubs: Vec<&'static str>,
}

/// What [`Premount::make_in`] made: the container's new directory, and its overlay when
/// that could be mounted (without it the run mounts the overlay itself, over the
/// directories made here).
pub(crate) struct Made {
    pub dir: PathBuf,
    pub mount: Option<OwnedFd>,
    /// A shared lock on the directory, held while the run that asked for it is connected
    /// (see [`hold_dir`]).
    pub lock: Option<OwnedFd>,
}

/// Opens `path` (relative) beneath `dir` as an `O_PATH` directory, following no symlink.
fn open_dir_beneath(dir: impl AsFd, path: &str) -> std::io::Result<OwnedFd> {
    super::copy::openat2(
        dir.as_fd(),
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW,
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

/// The name of `path` when it is `<root>/<area>/<name>` with one plain component as name.
fn entry_of<'a>(root: &Path, area: &str, path: &'a Path) -> Option<&'a str> {
    let name = path.strip_prefix(root.join(area)).ok()?.to_str()?;
    (!name.is_empty() && !name.contains('/') && name != "." && name != "..").then_some(name)
}

/// `/proc/self/fd/N`: the path of an open descriptor, for mount options that take paths.
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

impl Premount {
    /// Makes the container's directories and its overlay, for a request from a run (the
    /// housekeeper's side). Every path is checked first and nothing is made when one is
    /// wrong: the container directory must be `<root>/containers/<id>` with a gcr id and
    /// must not exist yet; each layer must be a directory of the store's own `snapshots/` or
    /// `mountpoints/`; all are opened beneath the store root without following symlinks,
    /// and the overlay is given those descriptors, not the paths.
    pub(crate) fn make_in(&self, root: &Path) -> Result<Made, String> {
        let refuse = |what: &Path| format!("{} is not the store's to mount", what.display());
        let id = entry_of(root, "containers", &self.dir)
            .filter(|id| names::is_container_id(id))
            .ok_or_else(|| refuse(&self.dir))?;
        let root_fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("opening the store {}: {e}", root.display()))?;
        let mut layers = Vec::with_capacity(self.lowers.len());
        for l in &self.lowers {
            let rel = ["snapshots", "mountpoints"]
                .into_iter()
                .find_map(|area| entry_of(root, area, l).map(|n| format!("{area}/{n}")))
                .ok_or_else(|| refuse(l))?;
            layers.push(open_dir_beneath(&root_fd, &rel).map_err(|_| refuse(l))?);
        }
        let containers = open_dir_beneath(&root_fd, "containers").map_err(|_| refuse(&self.dir))?;
        // A new directory only: an existing one (another container's) is never touched.
        rustix::fs::mkdirat(&containers, id, Mode::from_raw_mode(0o755))
            .map_err(|e| format!("making {}: {e}", self.dir.display()))?;
        let lock = open_for_lock(&self.dir).filter(|fd| {
            rustix::fs::flock(fd, rustix::fs::FlockOperation::NonBlockingLockShared).is_ok()
        });
        let made = |mount| Made {
            dir: self.dir.clone(),
            mount,
            lock,
        };
        let Ok(dir) = open_dir_beneath(&containers, id) else {
            return Ok(made(None));
        };
        let sub = |name: &str| {
            rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)).ok()?;
            open_dir_beneath(&dir, name).ok()
        };
        let (Some(upper), Some(work)) = (sub("upper"), sub("work")) else {
            return Ok(made(None));
        };
        Ok(made(self.overlay(&layers, &upper, &work)))
    }

    /// The overlay of `layers` (top first) with `upper` and `work`, as a detached mount.
    fn overlay(&self, layers: &[OwnedFd], upper: &OwnedFd, work: &OwnedFd) -> Option<OwnedFd> {
        let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).ok()?;
        // Shown as the mount's source, as `mount -t overlay overlay ...` does.
        rustix::mount::fsconfig_set_string(&fs, "source", "overlay").ok()?;
        // One layer per call ("lowerdir+", Linux 6.8): a value may not exceed 256 bytes.
        for l in layers {
            rustix::mount::fsconfig_set_string(&fs, "lowerdir+", fd_path(l)).ok()?;
        }
        rustix::mount::fsconfig_set_string(&fs, "upperdir", fd_path(upper)).ok()?;
        rustix::mount::fsconfig_set_string(&fs, "workdir", fd_path(work)).ok()?;
        if self.volatile {
            rustix::mount::fsconfig_set_flag(&fs, "volatile").ok()?;
        }
        rustix::mount::fsconfig_create(&fs).ok()?;
        // nodev as the runtime mounts a non-privileged root (privileged ones get none).
        rustix::mount::fsmount(
            &fs,
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::MOUNT_ATTR_NODEV,
        )
        .ok()
    }
}

impl Engine {
    /// For a start from the image cache with the housekeeper there: picks the container's
    /// id and asks the housekeeper for its root overlay (layers as [`Engine::rootfs`] will
    /// want them, as far as the flags tell). Returns the id and what was asked.
    pub(crate) fn premount_ahead(
        &self,
        opts: &RunOptions,
        image: &CachedImage,
    ) -> Option<(String, Premount)> {
        if opts.privileged {
            return None; // its root keeps device nodes usable: mounted by the runtime
        }
        let door = crate::prestart::door()?;
        let id = names::random_id();
        let stubs = if opts.network.as_deref() == Some("none") {
            vec!["hosts", "hostname"]
        } else {
            vec!["hosts", "hostname", "resolv.conf"]
        };
        let p = Premount {
            lowers: mountpoints::lowers(self.root(), &image.lowers, &stubs),
            dir: self.container_dir(&id),
            volatile: opts.rm,
            stubs,
        };
        door.send_premount(&p).then_some((id, p))
    }

    /// The root filesystem of container `id` over `lowers`: the overlay made ahead when it
    /// is that one, else an overlay mounted by the container's process (its directories
    /// made here when the housekeeper did not make them).
    pub(crate) fn rootfs(
        &self,
        id: &str,
        lowers: Vec<PathBuf>,
        ahead: Option<Premount>,
        volatile: bool,
    ) -> Result<Rootfs, EngineError> {
        let dir = self.container_dir(id);
        // Every container mounts its root here inside its own mount namespace, so one
        // shared (always empty on the host) directory serves them all.
        let target = self.root().join("mnt");
        if let Some(p) = ahead {
            let mount = crate::prestart::door().and_then(|d| d.premounted());
            match mount {
                Some(m) if p.lowers == lowers => {
                    hold_dir(&dir);
                    crate::timing::mark("housekeeper: root mounted");
                    return Ok(Rootfs::Attach { mount: m, target });
                }
                _ => {
                    make_dirs(&dir)?;
                    hold_dir(&dir);
                }
            }
        }
        Ok(Rootfs::Overlay {
            lowers,
            upper: dir.join("upper"),
            work: dir.join("work"),
            target,
            volatile,
        })
    }
}

/// Container directories this process is making a container in (see [`hold_dir`]).
static HELD: std::sync::Mutex<Vec<OwnedFd>> = std::sync::Mutex::new(Vec::new());

/// Opens a container directory for locking (never through a symlink).
fn open_for_lock(dir: &Path) -> Option<OwnedFd> {
    rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// Takes a shared lock on the container directory `dir` for the rest of this process's
/// life: a directory whose row is not stored yet belongs to a process at work, not to a
/// killed one (see [`orphan`]).
pub(crate) fn hold_dir(dir: &Path) {
    if let Some(fd) = open_for_lock(dir) {
        if rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockShared).is_ok() {
            if let Ok(mut held) = HELD.lock() {
                held.push(fd);
            }
        }
    }
}

/// Whether the container directory `dir` (known to have no row) was left by a process that
/// is gone: nobody holds its lock. Never true for a directory being made right now.
pub(crate) fn orphan(dir: &Path) -> bool {
    open_for_lock(dir).is_some_and(|fd| {
        rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
    })
}

/// A container's upper and work directories.
pub(crate) fn make_dirs(dir: &Path) -> Result<(), EngineError> {
    for sub in ["upper", "work"] {
        if let Err(e) = std::fs::create_dir_all(dir.join(sub)) {
            let _ = std::fs::remove_dir_all(dir);
            return Err(EngineError::Io(format!("creating {}", dir.display()), e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_or_skip() -> bool {
        if rustix::process::geteuid().is_root() {
            return true;
        }
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "needs root under CI"
        );
        eprintln!("skipped: needs root");
        false
    }

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A store root with two snapshot layers and `containers/`.
    fn store() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            dir.path().join("snapshots/a"),
            dir.path().join("snapshots/b"),
        );
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::create_dir_all(dir.path().join("containers")).unwrap();
        std::fs::write(a.join("top"), "a").unwrap();
        std::fs::write(b.join("top"), "b").unwrap();
        std::fs::write(b.join("low"), "b").unwrap();
        (dir, a, b)
    }

    #[test]
    fn makes_a_detached_overlay_of_the_layers() {
        if !root_or_skip() {
            return;
        }
        let (dir, a, b) = store();
        let p = Premount {
            lowers: vec![a, b],
            dir: dir.path().join("containers").join(ID),
            volatile: true,
            stubs: Vec::new(),
        };
        let made = p.make_in(dir.path()).expect("made");
        let fd = made.mount.expect("overlay");
        // Read through the detached mount: the top layer wins, the lower one shows through.
        let read = |name: &str| {
            let f = rustix::fs::openat(
                &fd,
                name,
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .unwrap();
            std::io::read_to_string(std::fs::File::from(f)).unwrap()
        };
        assert_eq!(read("top"), "a");
        assert_eq!(read("low"), "b");
        assert!(p.dir.join("upper").is_dir() && p.dir.join("work").is_dir());
        // Closing the last descriptor unmounts it: the directories can go.
        drop(fd);
        std::fs::remove_dir_all(&p.dir).unwrap();
    }

    #[test]
    fn refuses_paths_that_are_not_the_stores_own() {
        let (dir, a, _) = store();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        // A layer symlinked out of the store.
        std::os::unix::fs::symlink(outside.path(), dir.path().join("snapshots/evil")).unwrap();
        let existing = dir.path().join("containers").join(ID);
        std::fs::create_dir_all(existing.join("upper")).unwrap();
        std::fs::write(existing.join("upper/live"), "data").unwrap();
        let other_id = ID.replace('0', "1");
        let cases = [
            (
                vec![outside.path().to_path_buf()],
                dir.path().join("containers").join(&other_id),
            ),
            (
                vec![dir.path().join("snapshots/evil")],
                dir.path().join("containers").join(&other_id),
            ),
            (
                vec![dir.path().join("snapshots/../../etc")],
                dir.path().join("containers").join(&other_id),
            ),
            (vec![a.clone()], outside.path().join("c")),
            (vec![a.clone()], dir.path().join("containers/not-an-id")),
            // An existing container's directory is never reused.
            (vec![a.clone()], existing.clone()),
        ];
        for (lowers, cdir) in cases {
            let p = Premount {
                lowers: lowers.clone(),
                dir: cdir.clone(),
                volatile: true,
                stubs: Vec::new(),
            };
            assert!(
                p.make_in(dir.path()).is_err(),
                "{lowers:?} over {} was accepted",
                cdir.display()
            );
        }
        assert!(!dir.path().join("containers").join(&other_id).exists());
        assert!(!outside.path().join("c").exists());
        assert_eq!(
            std::fs::read_to_string(existing.join("upper/live")).unwrap(),
            "data"
        );
    }
}
