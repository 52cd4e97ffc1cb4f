//! Who may look into a store. The database holds every container's environment and the
//! snapshots hold image contents with their world-writable directories (an image's
//! `/tmp`), so no other local user may read or write anything below the root: the root and
//! its directories are 0700, the database and its `-wal`/`-shm` files 0600 (SQLite gives
//! those the database's mode). Stores made before this are closed up when next opened.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the root and the directories directly below it.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of the database files.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Creates one store directory, closed to others from the start.
pub(crate) fn create_dir(p: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().mode(DIR_MODE).create(p)
}

/// Creates the database file closed to others (SQLite would create it with the umask's
/// 0644); an existing file is left as it is.
pub(crate) fn create_db(db: &Path) {
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(db);
}

/// True when `mode` lets group or others in.
pub(crate) fn open_to_others(mode: u32) -> bool {
    mode & 0o077 != 0
}

/// Takes group and other permissions off the root, every directory and file directly in
/// it (the database and its WAL among them) and the subdirectories of `blobs/`. Best
/// effort: a store owned by someone else stays as it is. Layer contents keep their modes;
/// the closed directories above them are what keeps other users out.
pub(crate) fn close_up(root: &Path) {
    let set = |p: &Path, mode: u32| {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    };
    set(root, DIR_MODE);
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            set(&e.path(), DIR_MODE);
        } else if ft.is_file() {
            set(&e.path(), FILE_MODE);
        }
    }
    set(&root.join("blobs/sha256"), DIR_MODE);
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn assert_closed(root: &Path) {
        assert_eq!(mode(root), 0o700, "{}", root.display());
        for d in [
            "blobs",
            "blobs/sha256",
            "snapshots",
            "containers",
            "tmp",
            "mnt",
        ] {
            assert_eq!(mode(&root.join(d)), 0o700, "{d}");
        }
        for f in ["gcr.db", "gcr.db-wal", "gcr.db-shm"] {
            let p = root.join(f);
            if p.exists() {
                assert_eq!(mode(&p), 0o600, "{f}");
            }
        }
        assert!(root.join("gcr.db").exists());
    }

    #[test]
    fn a_new_store_is_closed_to_other_users() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("a/store");
        let s = Store::open(&root).unwrap();
        s.put_blob(b"x", None).unwrap();
        assert!(root.join("gcr.db-wal").exists());
        assert_closed(&root);
    }

    #[test]
    fn an_old_open_store_is_closed_up_when_opened() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("store");
        drop(Store::open(&root).unwrap());
        // As older versions left it: everything 0755/0644.
        let open = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        open(&root, 0o755);
        for d in [
            "blobs",
            "blobs/sha256",
            "snapshots",
            "containers",
            "tmp",
            "mnt",
        ] {
            open(&root.join(d), 0o755);
        }
        for f in ["gcr.db", "gcr.db-wal", "gcr.db-shm"] {
            if root.join(f).exists() {
                open(&root.join(f), 0o644);
            }
        }
        drop(Store::open(&root).unwrap());
        assert_closed(&root);
        // A closed root over a readable database (a root dir made by someone else before
        // the store) is caught too.
        open(&root.join("gcr.db"), 0o644);
        drop(Store::open_existing(&root).unwrap());
        assert_eq!(mode(&root.join("gcr.db")), 0o600);
    }
}
