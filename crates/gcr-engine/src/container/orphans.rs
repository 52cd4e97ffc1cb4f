//! Container directories that no row names, left by a process killed between making them
//! and storing its container (a foreground `run` stores its row once its process exists).
//! Their maker holds a shared lock on them while it lives (see [`premount::hold_dir`]), so a
//! directory whose lock is free, with no row, and not brand new, is an orphan: `rm`,
//! the housekeeper and `doctor --repair` move it to the trash; `doctor` reports it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::Connection;

use super::premount;
use crate::names::is_container_id;

/// How old a directory must be before it can be an orphan: its maker locks it within
/// microseconds of making it.
const MIN_AGE: Duration = Duration::from_secs(2);

/// The orphan container directories of the store at `root`.
pub fn find(root: &Path, conn: &Connection) -> Vec<PathBuf> {
    candidates(root, conn, true)
}

/// True when a directory will be an orphan once it is [`MIN_AGE`] old (no row, no
/// lock): the housekeeper lingers until then, so that its sweep takes it.
pub fn becoming(root: &Path, conn: &Connection) -> bool {
    !candidates(root, conn, false).is_empty()
}

/// Unlocked container directories without a row, `old` enough to be orphans or not yet.
fn candidates(root: &Path, conn: &Connection, old: bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root.join("containers")) else {
        return Vec::new();
    };
    let candidates: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .filter(|(id, _)| is_container_id(id))
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let Ok(rows) = stored_ids(conn) else {
        return Vec::new();
    };
    let now = SystemTime::now();
    candidates
        .into_iter()
        .filter(|(id, _)| !rows.contains(id))
        .filter(|(_, dir)| {
            std::fs::symlink_metadata(dir)
                .and_then(|m| m.modified())
                .is_ok_and(|t| (now.duration_since(t).unwrap_or_default() >= MIN_AGE) == old)
        })
        .filter(|(_, dir)| premount::orphan(dir))
        .map(|(_, dir)| dir)
        .collect()
}

/// True when `containers/` holds a directory that no id in `rows` names (an orphan, one
/// becoming one, or one being made right now): cheap enough for `ps`, which then wakes the
/// housekeeper to sweep what is an orphan (a killed housekeeper would otherwise leave it
/// until the next `rm`).
pub fn unnamed_dirs(root: &Path, rows: &HashSet<&str>) -> bool {
    std::fs::read_dir(root.join("containers")).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|id| is_container_id(id) && !rows.contains(id))
        })
    })
}

fn stored_ids(conn: &Connection) -> rusqlite::Result<HashSet<String>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM containers")?;
    let ids = stmt.query_map([], |r| r.get(0))?.collect();
    ids
}

/// Moves the orphans of the store at `root` to its trash; returns their ids.
pub fn sweep(root: &Path, conn: &Connection) -> Vec<String> {
    find(root, conn)
        .into_iter()
        .filter_map(|dir| {
            let id = dir.file_name()?.to_str()?.to_string();
            std::fs::rename(&dir, root.join("trash").join(&id))
                .is_ok()
                .then_some(id)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes `containers/<id>` in `root`, three seconds old.
    fn old_dir(root: &Path, id: &str) -> PathBuf {
        let dir = root.join("containers").join(id);
        std::fs::create_dir_all(dir.join("upper")).unwrap();
        let t = SystemTime::now() - Duration::from_secs(3);
        std::fs::File::open(&dir).unwrap().set_modified(t).unwrap();
        dir
    }

    #[test]
    fn only_unlocked_old_directories_without_rows_are_orphans() {
        let t = tempfile::tempdir().unwrap();
        let store = gcr_store::Store::open(t.path()).unwrap();
        let ids: Vec<String> = "abcd".chars().map(|c| c.to_string().repeat(64)).collect();
        let orphan = old_dir(t.path(), &ids[0]);
        let locked = old_dir(t.path(), &ids[1]);
        let stored = old_dir(t.path(), &ids[2]);
        let young = t.path().join("containers").join(&ids[3]);
        std::fs::create_dir_all(&young).unwrap();
        store
            .conn()
            .execute(
                "INSERT INTO containers (id, name, image_id, image_ref, created_at, state, config) \
                 VALUES (?1, 'n', 'i', 'r', 0, 'created', '{}')",
                [&ids[2]],
            )
            .unwrap();
        // Another process at work on `locked`: its lock is shared, as hold_dir takes it.
        let f = std::fs::File::open(&locked).unwrap();
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockShared).unwrap();
        // `flock` locks are per open file: a second open here is like another process.
        assert_eq!(find(t.path(), store.conn()), vec![orphan.clone()]);
        std::fs::create_dir_all(t.path().join("trash")).unwrap();
        assert_eq!(sweep(t.path(), store.conn()), vec![ids[0].clone()]);
        assert!(!orphan.exists() && t.path().join("trash").join(&ids[0]).exists());
        assert!(locked.exists() && stored.exists() && young.exists());
        // `ps` notices every directory without a row, locked or young included.
        let named: HashSet<&str> = [ids[1].as_str(), ids[2].as_str()].into();
        assert!(unnamed_dirs(t.path(), &named));
        let all: HashSet<&str> = ids.iter().map(String::as_str).collect();
        assert!(!unnamed_dirs(t.path(), &all));
        // The young one will be an orphan: the housekeeper lingers for it.
        assert!(becoming(t.path(), store.conn()));
        std::fs::remove_dir_all(&young).unwrap();
        assert!(!becoming(t.path(), store.conn()));
        drop(f);
    }
}
