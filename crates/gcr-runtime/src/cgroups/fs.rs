//! Minimal cgroupfs file operations: one `open` + one `write` per control file, small reads,
//! `mkdir`/`rmdir`, each mapped to a [`CgroupError`] naming the path.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::CgroupError;

pub(crate) fn err(op: &'static str, path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `data` to an existing control file with a single `write` (no create, no truncate).
pub(crate) fn write_raw(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.write_all(data)
}

pub(crate) fn write(path: &Path, data: &str) -> Result<(), CgroupError> {
    write_raw(path, data.as_bytes()).map_err(|e| err("write to", path, e))
}

pub(crate) fn read_raw(path: &Path) -> io::Result<String> {
    read_with_capacity(path, 512)
}

/// Reads a whole file into a buffer of `cap` bytes to start with, so proc and cgroup files
/// come in one `read` (plus the one that sees EOF).
pub(crate) fn read_with_capacity(path: &Path, cap: usize) -> io::Result<String> {
    slurp(std::fs::File::open(path)?, cap)
}

/// Reads `f` to its end with plain `read`s into a buffer of `cap` bytes to start with.
/// `File::read_to_string` first asks `statx` and `lseek` for a size, which proc and cgroup
/// files do not have: two wasted calls per file, and /metrics reads ten files per container.
pub fn slurp(mut f: std::fs::File, cap: usize) -> io::Result<String> {
    read_whole(cap, |buf, _| f.read(buf))
}

/// Reads a whole file through `read(buf, offset)` (a `read`, or a `pread` at `offset`)
/// into a buffer of `cap` bytes to start with, doubling it as needed, as UTF-8.
pub(crate) fn read_whole(
    cap: usize,
    mut read: impl FnMut(&mut [u8], u64) -> io::Result<usize>,
) -> io::Result<String> {
    let mut buf = vec![0u8; cap.max(64)];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match read(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    read_raw(path).map_err(|e| err("read", path, e))
}

/// The value of `key` in a flat keyed file (`memory.events`, `cpu.stat`, `memory.stat`...).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// `mkdir`; `Ok(true)` when created, `Ok(false)` when it already existed.
pub(crate) fn mkdir(path: &Path) -> io::Result<bool> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a cgroup directory: `rmdir`, ENOENT counts as done, sub-groups (which a container
/// may have created) are removed first, EBUSY is retried for about 100 ms.
pub(crate) fn rmdir_cgroup(path: &Path) -> Result<(), CgroupError> {
    let mut delay = std::time::Duration::from_micros(200);
    for attempt in 0..12 {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::ENOTEMPTY)) => {
                if attempt == 0 {
                    // Sub-groups (cgroupfs reports EBUSY for them) go first.
                    for sub in subdirs(path) {
                        rmdir_cgroup(&sub)?;
                    }
                    continue;
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(err("remove", path, e)),
        }
    }
    Err(CgroupError::Busy(path.to_path_buf()))
}

fn subdirs(path: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path())
        .collect()
}

/// Parses `cgroup.procs`.
pub(crate) fn pids_in(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Sleeps with a growing delay until `done()` or about `total_ms` milliseconds have passed.
pub(crate) fn wait_until(total_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    let mut delay = std::time::Duration::from_micros(50);
    loop {
        if done() {
            return true;
        }
        if start.elapsed().as_millis() as u64 >= total_ms {
            return false;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(std::time::Duration::from_millis(10));
    }
}
