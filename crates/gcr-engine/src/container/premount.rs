//! A container's root overlay made ahead, as a detached mount (the new mount API:
//! `fsopen`, `fsconfig`, `fsmount`): the housekeeper makes it, with the container's upper and
//! work directories, while the run prepares the rest, and hands the mount over; the
//! container's process only attaches it (`move_mount`). Mounting an overlay is the largest
//! single step of a start (the kernel probes the work directory: a directory, a temporary
//! file and a whiteout made and deleted on the upper filesystem).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use gcr_runtime::Rootfs;

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

impl Premount {
    /// Makes the upper and work directories and the overlay; None when any step fails
    /// (the caller then mounts the usual way; the directories may stay, which it needs).
    pub(crate) fn make(&self) -> Option<OwnedFd> {
        make_dirs(&self.dir).ok()?;
        let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).ok()?;
        // Shown as the mount's source, as `mount -t overlay overlay ...` does.
        rustix::mount::fsconfig_set_string(&fs, "source", "overlay").ok()?;
        // One layer per call ("lowerdir+", Linux 6.8): a value may not exceed 256 bytes.
        for l in &self.lowers {
            rustix::mount::fsconfig_set_string(&fs, "lowerdir+", l).ok()?;
        }
        rustix::mount::fsconfig_set_string(&fs, "upperdir", self.dir.join("upper")).ok()?;
        rustix::mount::fsconfig_set_string(&fs, "workdir", self.dir.join("work")).ok()?;
        if self.volatile {
            rustix::mount::fsconfig_set_flag(&fs, "volatile").ok()?;
        }
        rustix::mount::fsconfig_create(&fs).ok()?;
        rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty()).ok()
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
                    crate::timing::mark("housekeeper: root mounted");
                    return Ok(Rootfs::Attach { mount: m, target });
                }
                _ => make_dirs(&dir)?,
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

    #[test]
    fn makes_a_detached_overlay_of_the_layers() {
        if !rustix::process::geteuid().is_root() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "needs root under CI"
            );
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("top"), "a").unwrap();
        std::fs::write(b.join("top"), "b").unwrap();
        std::fs::write(b.join("low"), "b").unwrap();
        let p = Premount {
            lowers: vec![a, b],
            dir: dir.path().join("c"),
            volatile: true,
            stubs: Vec::new(),
        };
        let fd = p.make().expect("overlay");
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
        std::fs::remove_dir_all(dir.path().join("c")).unwrap();
    }
}
