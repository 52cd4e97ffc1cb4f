//! The run-time state directory (`/run/gcr` by default): per-container `hosts`, `hostname`
//! and `resolv.conf`, network namespace files and the like, all of which must be forgotten
//! at reboot. It belongs on a tmpfs, as `/run` is on most hosts. When the host's run dir is
//! on a disk filesystem, gcr (as root) mounts a small tmpfs on it while it is still empty:
//! state then really goes away at reboot, and the small files of every container start and
//! removal never reach the disk (on ext4 with `discard` each freed block is a synchronous
//! discard request). Nothing in it is for other users: the run dir is 0711, the directory
//! of each container and the image cache 0700.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::{Engine, EngineError};

/// The tmpfs source name, so that gcr only ever unmounts its own.
const SOURCE: &str = "gcr-run";

fn statfs_type(dir: &Path) -> Option<u64> {
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs fills a zeroed stack struct from a NUL-terminated path.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        (libc::statfs(c.as_ptr(), &mut st) == 0).then_some(st.f_type as u64)
    }
}

fn is_memory_fs(t: u64) -> bool {
    // tmpfs and ramfs (0x858458f6).
    t == libc::TMPFS_MAGIC as u64 || t == 0x8584_58f6
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// Makes sure `dir` exists and, when we are root and it is an empty directory on a disk
/// filesystem, mounts a tmpfs on it. A directory already in use is left as it is.
pub(crate) fn ensure(dir: &Path) -> Result<(), EngineError> {
    let t = match statfs_type(dir) {
        Some(t) => t,
        None => {
            // Others may pass through (as through the tmpfs below, mode 0711) but not list.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(dir)
                .map_err(|e| EngineError::Io(format!("creating {}", dir.display()), e))?;
            statfs_type(dir).unwrap_or(0)
        }
    };
    // SAFETY: geteuid has no arguments and cannot fail.
    if is_memory_fs(t) || unsafe { libc::geteuid() } != 0 || !is_empty(dir) {
        return Ok(());
    }
    let target = CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        EngineError::Usage(format!("run dir {} contains a NUL byte", dir.display()))
    })?;
    let source = CString::new(SOURCE).unwrap_or_default();
    // A failure is not fatal: a disk run dir works, only slower and without reboot semantics.
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
    unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=0711,size=64m".as_ptr().cast(),
        )
    };
    Ok(())
}

/// Whether `dir` is a tmpfs that gcr mounted (see [`ensure`]).
fn ours(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = dir.to_string_lossy();
    text.lines().any(|l| {
        let mut halves = l.split(" - ");
        let (Some(a), Some(b)) = (halves.next(), halves.next()) else {
            return false;
        };
        a.split(' ').nth(4) == Some(&want) && b.split(' ').nth(1) == Some(SOURCE)
    })
}

impl Engine {
    /// Creates the run-time directory of one container (and the run dir itself, see
    /// [`ensure`]).
    pub(crate) fn make_container_run_dir(&self, id: &str) -> Result<PathBuf, EngineError> {
        ensure(self.run_dir())?;
        let dir = self.container_run_dir(id);
        // Root only: the files are bind-mounted into the container by their own path.
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(dir),
            Err(e) => Err(EngineError::Io(format!("creating {}", dir.display()), e)),
        }
    }

    /// Unmounts the run dir's tmpfs when gcr mounted it and nothing is left in it (test and
    /// uninstall cleanup). Returns whether it did.
    pub fn release_run_dir(&self) -> bool {
        let dir = self.run_dir();
        // The image cache is only a cache (see container::imagecache); only this store's
        // entries go, other stores sharing the run dir keep theirs.
        self.forget_image_cache();
        let _ = std::fs::remove_dir(dir.join("images"));
        crate::housekeeper::remove_stale_sockets(dir);
        if !is_empty(dir) || !ours(dir) {
            return false;
        }
        let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: umount2 on a NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) == 0 }
    }
}
