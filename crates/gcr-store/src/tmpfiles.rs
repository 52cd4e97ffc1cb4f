//! The store's `tmp/`: names that tell who owns a temp file, and the removal of what killed
//! imports, pulls, loads and builds left there.
//!
//! Temp files and directories made by the store are named `<kind>-<pid>-<random>`: one
//! whose process is gone is stale. Others (the registry client's staged blobs, build
//! directories) are judged by what they are: a regular file that no process holds open is
//! stale once a short grace period has passed (a file being written is always open);
//! a directory only after an hour, never while something is mounted below it, and only
//! when asked for (prune, `doctor --repair`). `dead-*` entries are retired snapshots.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Kinds of temp entries the store names after their owner's pid.
const KINDS: &[&str] = &["blob", "layer", "snap", "load"];

/// How long a foreign regular file may sit closed before it counts as stale.
const FILE_GRACE: Duration = Duration::from_secs(60);

/// How old a foreign directory must be before prune or repair remove it.
const DIR_AGE: Duration = Duration::from_secs(3600);

/// The name prefix of a temp entry of `kind` owned by this process.
pub(crate) fn prefix(kind: &str) -> String {
    debug_assert!(KINDS.contains(&kind));
    format!("{kind}-{}-", std::process::id())
}

/// The owner pid in a name made by [`prefix`].
fn owner_pid(name: &str) -> Option<i32> {
    let (kind, rest) = name.split_once('-')?;
    if !KINDS.contains(&kind) {
        return None;
    }
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok().filter(|p| *p > 0)
}

fn alive(pid: i32) -> bool {
    match rustix::process::Pid::from_raw(pid) {
        // EPERM: the process exists but belongs to someone else.
        Some(p) => !matches!(
            rustix::process::test_kill_process(p),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
}

/// What a sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TempSweep {
    /// Entries removed (or, for a dry run, that would be).
    pub entries: Vec<PathBuf>,
    pub bytes: u64,
}

/// Paths under `dir` that some process holds open (from `/proc/*/fd`).
fn open_files_under(dir: &Path) -> HashSet<PathBuf> {
    let mut out = HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        if !p
            .file_name()
            .as_encoded_bytes()
            .iter()
            .all(u8::is_ascii_digit)
        {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(t) = std::fs::read_link(fd.path()) {
                if t.starts_with(dir) {
                    out.insert(t);
                }
            }
        }
    }
    out
}

/// True when something is mounted at or below `dir` in this mount namespace.
fn has_mounts_below(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| Path::new(&unescape(m)).starts_with(dir))
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Bytes under `p` (a file's own size; symlinks not followed).
pub fn tree_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}

/// Finds (and unless `dry_run`, removes) the stale entries of `tmp`. Foreign directories
/// are considered only with `old_dirs`.
pub(crate) fn sweep(tmp: &Path, old_dirs: bool, dry_run: bool) -> TempSweep {
    let mut rep = TempSweep::default();
    let Ok(rd) = std::fs::read_dir(tmp) else {
        return rep;
    };
    let tmp = std::fs::canonicalize(tmp).unwrap_or_else(|_| tmp.to_path_buf());
    let now = SystemTime::now();
    let mut open: Option<HashSet<PathBuf>> = None;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = tmp.join(&name);
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let age = md
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        let stale = if name.starts_with("dead-") {
            true
        } else if let Some(pid) = owner_pid(&name) {
            !alive(pid)
        } else if md.is_dir() {
            old_dirs && age > DIR_AGE
        } else {
            age > FILE_GRACE
                && !open
                    .get_or_insert_with(|| open_files_under(&tmp))
                    .contains(&path)
        };
        if !stale || (md.is_dir() && has_mounts_below(&path)) {
            continue;
        }
        let size = tree_size(&path);
        let removed = dry_run
            || if md.is_dir() {
                std::fs::remove_dir_all(&path).is_ok()
            } else {
                std::fs::remove_file(&path).is_ok()
            };
        if removed {
            rep.bytes += size;
            rep.entries.push(path);
        }
    }
    rep.entries.sort();
    rep
}

impl crate::Store {
    /// Removes what killed imports, pulls, loads and builds left in `tmp/` (see the module
    /// docs for what counts as stale). Cheap when `tmp/` is empty: one directory read.
    pub fn remove_stale_temp(&self) -> TempSweep {
        sweep(&self.tmp_dir(), false, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid no process has: a child that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    fn age(p: &Path, secs: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs);
        let f = std::fs::File::options().write(true).open(p);
        match f {
            Ok(f) => f.set_modified(t).unwrap(),
            Err(_) => std::fs::File::open(p).unwrap().set_modified(t).unwrap(),
        }
    }

    #[test]
    fn owner_pids_are_read_from_store_names_only() {
        assert_eq!(owner_pid("blob-123-abc"), Some(123));
        assert_eq!(
            owner_pid(&format!("{}x", prefix("snap"))),
            Some(std::process::id() as i32)
        );
        assert_eq!(owner_pid("build-123-abc"), None);
        assert_eq!(owner_pid(".tmpAbc"), None);
        assert_eq!(owner_pid("blob-x-abc"), None);
    }

    #[test]
    fn killed_owners_files_go_and_live_ones_stay() {
        let d = tempfile::tempdir().unwrap();
        let tmp = d.path();
        let dead = dead_pid();
        // Left by killed processes: a staged blob and an unpack directory.
        let dead_file = tmp.join(format!("blob-{dead}-aaaa"));
        std::fs::write(&dead_file, vec![7u8; 5000]).unwrap();
        let dead_dir = tmp.join(format!("snap-{dead}-bbbb"));
        std::fs::create_dir_all(dead_dir.join("d/etc")).unwrap();
        std::fs::write(dead_dir.join("d/etc/passwd"), b"root").unwrap();
        // Ours, in use.
        let live = tmp.join(format!("{}cccc", prefix("layer")));
        std::fs::write(&live, b"x").unwrap();
        // A foreign staged blob nobody holds open, written two minutes ago (a killed pull).
        let orphan = tmp.join(".tmpOrphan");
        std::fs::write(&orphan, vec![1u8; 100]).unwrap();
        age(&orphan, 120);
        // A foreign file still open (a pull in progress), and a fresh closed one.
        let held_path = tmp.join(".tmpHeld");
        let held = std::fs::File::create(&held_path).unwrap();
        age(&held_path, 120);
        let fresh = tmp.join(".tmpFresh");
        std::fs::write(&fresh, b"x").unwrap();
        // A foreign directory (a build's), recent.
        let build = tmp.join("build-xyz");
        std::fs::create_dir(&build).unwrap();

        let dry = sweep(tmp, false, true);
        assert_eq!(dry.entries.len(), 3, "{dry:?}");
        assert!(dead_file.exists(), "a dry run removes nothing");

        let rep = sweep(tmp, false, false);
        let mut want = vec![
            std::fs::canonicalize(tmp).unwrap().join(".tmpOrphan"),
            std::fs::canonicalize(tmp)
                .unwrap()
                .join(format!("blob-{dead}-aaaa")),
            std::fs::canonicalize(tmp)
                .unwrap()
                .join(format!("snap-{dead}-bbbb")),
        ];
        want.sort();
        assert_eq!(rep.entries, want);
        assert_eq!(rep.bytes, 5000 + 4 + 100);
        assert!(!dead_file.exists() && !dead_dir.exists() && !orphan.exists());
        assert!(live.exists() && held_path.exists() && fresh.exists() && build.exists());

        // Old foreign directories go only when asked for.
        age(&build, 7200);
        assert!(sweep(tmp, false, false).entries.is_empty());
        drop(held);
        assert_eq!(sweep(tmp, true, false).entries.len(), 2); // build-xyz and .tmpHeld
        assert!(!build.exists());
    }
}
