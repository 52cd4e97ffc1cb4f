//! gcr-store owns everything gcr keeps on disk: the content-addressed blob store
//! (`blobs/sha256/<hex>`), the SQLite metadata database (`gcr.db`, WAL mode, shared safely by
//! many gcr processes), images/tags/layers, layer snapshots unpacked once per chain ID,
//! hostile-input-safe tar unpacking, deterministic rootfs import, oci-archive and
//! docker-archive load/save, OCI 1.1 referrers indexed by subject, and
//! `doctor`/`df`/`prune`. It also owns the schema of the `containers` and `events` tables,
//! which the engine fills.

mod archive;
mod blobs;
mod docker_archive;
mod doctor;
mod error;
mod images;
mod import;
mod layer;
mod ledger;
mod maint;
mod perms;
mod progress;
mod referrers;
mod save;
mod schema;
mod secrets;
mod snapdigest;
mod snapshots;
mod tmpfiles;
pub mod unpack;
mod util;

pub use archive::{ArchiveFormat, LoadReport};
pub use doctor::{DoctorOptions, DoctorReport};
pub use error::{is_no_space, Result, StoreError};
pub use images::{chain_ids, NewImage, NewLayer};
pub use images::{HistoryEntry, ImageSummary, LayerInfo, ResolvedImage};
pub use layer::{EntryData, LayerEntry, LAYER_MEDIA_TYPE};
pub use ledger::{
    action as ledger_action, leaf_hash, Actor, Entry as LedgerEntry, LedgerRow, StoredCheckpoint,
};
pub use maint::{DfReport, DfRow, PruneReport};
pub use progress::{NoProgress, Progress};
pub use referrers::{
    embed, parse_referrer, Descriptor, ReferrerManifest, EMPTY_BLOB, EMPTY_MEDIA_TYPE, MAX_EMBEDDED,
};
pub use secrets::SecretRow;
pub use tmpfiles::{tree_size, TempSweep};
pub use unpack::{unpack_layer, unpack_tree, UnpackError, UnpackStats};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};

/// An open store: a root directory and a connection to its database.
pub struct Store {
    root: PathBuf,
    conn: Connection,
    /// The actor stamped on the events this connection writes (see `ledger`).
    actor: ledger::ActorCell,
    /// Counts this connection among the process's live ones (see [`LIVE`]).
    _live: Live,
}

/// How many store connections this process holds. SQLite's locks are POSIX record locks,
/// which belong to the process and are all released when the process closes *any*
/// descriptor of the file: reading the database header through a descriptor of our own
/// while another connection of this process holds its locks (the API service's pool, a
/// second engine) would drop them, and another process's last connection could then
/// delete the WAL and shared-memory files under our feet. So the header is read only by
/// a process holding no connection; the others ask SQLite.
static LIVE: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

/// One live connection counted in [`LIVE`].
struct Live;

impl Live {
    /// Counts a connection about to open; `f` runs first, under the count's lock, and is
    /// told whether no other connection of this process is live.
    fn enter<T>(f: impl FnOnce(bool) -> T) -> (Live, T) {
        let mut n = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        let t = f(*n == 0);
        *n += 1;
        (Live, t)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut n = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
    }
}

impl Store {
    /// Opens (creating if needed) the store at `root`. Cheap: a handful of syscalls plus one
    /// `PRAGMA user_version` read when the schema is current.
    pub fn open(root: &Path) -> Result<Store> {
        Store::open_with(root, true)
    }

    /// Opens an existing store, creating nothing: for background processes that may
    /// outlive the store's directory.
    pub fn open_existing(root: &Path) -> Result<Store> {
        Store::open_with(root, false)
    }

    fn open_with(root: &Path, create: bool) -> Result<Store> {
        // "mnt" is created last: when it exists the layout is complete (one stat, not seven mkdirs).
        let subs = [
            "",
            "blobs",
            "blobs/sha256",
            "snapshots",
            "containers",
            "tmp",
            "mnt",
        ];
        let complete = root.join("mnt").is_dir();
        if !complete && !create {
            return Err(StoreError::io(
                "no store at",
                root,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        for sub in subs.into_iter().filter(|_| !complete) {
            let p = root.join(sub);
            match perms::create_dir(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) if sub.is_empty() && e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(&p)
                        .and_then(|()| {
                            use std::os::unix::fs::PermissionsExt;
                            std::fs::set_permissions(
                                &p,
                                std::fs::Permissions::from_mode(perms::DIR_MODE),
                            )
                        })
                        .map_err(|e| StoreError::io("cannot create store directory", &p, e))?;
                }
                Err(e) => return Err(StoreError::io("cannot create store directory", &p, e)),
            }
        }
        let db = root.join("gcr.db");
        if !complete {
            spread_subdirs(&root.join("containers"));
            perms::create_db(&db);
        }
        // Each statement costs a parse in a fresh process: read what the file's header
        // already says (WAL mode and schema version are persistent) — before any connection
        // of ours holds a lock (see [`LIVE`]) — and set per-connection options through the
        // C API where it has one.
        let (live, header) = Live::enter(|alone| if alone { read_header(&db) } else { None });
        let conn = if create {
            Connection::open(&db)?
        } else {
            use rusqlite::OpenFlags;
            Connection::open_with_flags(
                &db,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Stores made by older versions were open to every local user: close them up (one
        // stat here; the database's mode comes with its header).
        let root_open = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(root).is_ok_and(|m| perms::open_to_others(m.permissions().mode()))
        };
        if root_open || header.is_some_and(|h| perms::open_to_others(h.mode)) {
            perms::close_up(root);
        }
        if header.is_none_or(|h| !h.wal) {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY,
            true,
        )?;
        // Keep the WAL and skip the checkpoint when the last connection closes: every gcr
        // command is a short process, and deleting/recreating the WAL (with its fsyncs) on
        // each exit cost milliseconds on the `gcr run` path. SQLite still checkpoints
        // automatically as the WAL grows.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
        persist_wal(&conn);
        // Each gcr process is the first to open the WAL index, so SQLite rebuilds it by
        // scanning the whole WAL and forgets what was checkpointed: automatic checkpoints
        // would re-copy the WAL on every commit and never let it restart. Instead the WAL is
        // truncated by the housekeeper past WAL_LIMIT, or by a store dropped past
        // WAL_HARD_LIMIT (see Drop).
        // SAFETY: `handle()` is the live sqlite3 pointer owned by `conn`.
        unsafe { rusqlite::ffi::sqlite3_wal_autocheckpoint(conn.handle(), 0) };
        // A header showing the current version is proof enough (versions only grow); an
        // older one may be stale (page 1 can sit in the WAL), so ensure() reads it properly.
        // The ledger's trigger (and its migration) call these on every event written.
        let actor = ledger::register(&conn)?;
        if header.is_none_or(|h| h.user_version != schema::VERSION) {
            schema::ensure(&conn)?;
        }
        Ok(Store {
            root: root.to_path_buf(),
            conn,
            actor,
            _live: live,
        })
    }

    /// Marks the containers directory as a "top" directory (see [`spread_subdirs`]); for
    /// stores made before gcr did it at creation. Idempotent and cheap.
    pub fn spread_containers(&self) {
        spread_subdirs(&self.root.join("containers"));
    }

    /// The store root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The database connection (the engine runs its own queries on `containers`/`events`).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` inside a `BEGIN IMMEDIATE` transaction; commits on `Ok`, rolls back on `Err`.
    pub fn transaction<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let v = f(&tx)?;
        tx.commit()?;
        Ok(v)
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }
}

/// Records an image event (`kind = 'image'`, `to_state` = the action, e.g. `tag`).
pub(crate) fn image_event(
    tx: &Connection,
    action: &str,
    id: &str,
    name: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO events(time_ns, kind, object, name, to_state) VALUES (?1, 'image', ?2, ?3, ?4)",
        rusqlite::params![util::now_ns(), id, name, action],
    )?;
    Ok(())
}

/// WAL size above which the housekeeper (see gcr-engine's `trash`) checkpoints and
/// truncates the WAL, off every command's path.
pub const WAL_LIMIT: u64 = 256 << 10;

/// WAL size above which any store being dropped does it itself (no housekeeper ran, e.g.
/// a series of `create`s). Every process scans the whole WAL when it opens the store (it is
/// the first to build the WAL index), ~0.7 ms per MiB here: 512 KiB bounds that.
const WAL_HARD_LIMIT: u64 = 512 << 10;

impl Store {
    /// The current size of the WAL file in bytes (0 when absent).
    pub fn wal_size(&self) -> u64 {
        std::fs::metadata(self.root.join("gcr.db-wal")).map_or(0, |m| m.len())
    }

    /// Checkpoints and truncates the WAL when it is over `limit`. Never waits for other
    /// processes: if one is reading or writing, a later call does it.
    pub fn truncate_wal_over(&self, limit: u64) {
        if self.wal_size() > limit {
            let _ = self.conn.busy_timeout(std::time::Duration::ZERO);
            let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
            let _ = self.conn.busy_timeout(std::time::Duration::from_secs(5));
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.truncate_wal_over(WAL_HARD_LIMIT);
    }
}

/// What the database file's 100-byte header tells without SQLite.
#[derive(Clone, Copy)]
struct Header {
    /// File format versions 2/2: WAL mode.
    wal: bool,
    /// `PRAGMA user_version` as last written to the file itself.
    user_version: i64,
    /// The file's permission bits.
    mode: u32,
}

fn read_header(db: &Path) -> Option<Header> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut h = [0u8; 100];
    let mut f = std::fs::File::open(db).ok()?;
    let mode = f.metadata().ok()?.permissions().mode();
    f.read_exact(&mut h).ok()?;
    if &h[..16] != b"SQLite format 3\0" {
        return None;
    }
    Some(Header {
        wal: h[18] == 2 && h[19] == 2,
        user_version: i64::from(i32::from_be_bytes([h[60], h[61], h[62], h[63]])),
        mode,
    })
}

/// Asks SQLite to keep the WAL file after the last connection closes.
fn persist_wal(conn: &Connection) {
    let mut on: std::os::raw::c_int = 1;
    // SAFETY: `handle()` is the live sqlite3 pointer owned by `conn`; the file-control op
    // SQLITE_FCNTL_PERSIST_WAL reads and writes one c_int through the pointer we pass, which
    // points to `on` on our stack for the duration of the call.
    unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut on as *mut std::os::raw::c_int).cast(),
        );
    }
}

/// Asks the filesystem to place the subdirectories of `dir` apart from each other, as it
/// does top-level directories (ext4's `FS_TOPDIR_FL`, `chattr +T`). Each container's
/// directory then gets its own block group, and the files its overlay creates and deletes
/// at every start stay there: ext4 without a journal skips inodes deleted in the last
/// minutes when it allocates, so containers crowded into one group make each start scan
/// past thousands of them. Filesystems without the flag are left as they are.
pub fn spread_subdirs(dir: &Path) {
    use rustix::fs::IFlags;
    let Ok(d) = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) else {
        return;
    };
    if let Ok(f) = rustix::fs::ioctl_getflags(&d) {
        if !f.contains(IFlags::TOPDIR) {
            let _ = rustix::fs::ioctl_setflags(&d, f | IFlags::TOPDIR);
        }
    }
}

#[cfg(test)]
mod spread_tests {
    use super::*;

    #[test]
    fn new_stores_spread_their_container_directories() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let containers = store.root().join("containers");
        let d = rustix::fs::open(
            &containers,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        match rustix::fs::ioctl_getflags(&d) {
            // ext4, the filesystem of these machines' temp dirs.
            Ok(f) => assert!(f.contains(rustix::fs::IFlags::TOPDIR), "{f:?}"),
            Err(e) => {
                eprintln!("the temp dir's filesystem has no inode flags ({e}): nothing to check")
            }
        }
    }
}

#[cfg(test)]
mod live_tests {
    use crate::Store;

    /// A second connection of this process must not drop the first one's SQLite locks:
    /// another process's connection, closing, would otherwise find itself the last one
    /// and delete the WAL (here: Python's sqlite3, which does not persist it).
    #[test]
    fn a_second_open_keeps_the_first_connections_locks() {
        let python = std::process::Command::new("python3")
            .args(["-c", "import sqlite3"])
            .output();
        if !python.is_ok_and(|o| o.status.success()) {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "python3 with sqlite3 is missing; skipping is not allowed when CI=true"
            );
            eprintln!("skipped: python3 with sqlite3 missing");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        let n: i64 = first
            .conn()
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert!(n > 0);
        let second = Store::open(dir.path()).unwrap();
        drop(second);
        let wal = dir.path().join("gcr.db-wal");
        assert!(wal.exists());
        let o = std::process::Command::new("python3")
            .arg("-c")
            .arg(
                "import sqlite3, sys\n\
                 c = sqlite3.connect(sys.argv[1])\n\
                 c.execute('SELECT count(*) FROM sqlite_master').fetchall()\n\
                 c.close()",
            )
            .arg(dir.path().join("gcr.db"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            wal.exists(),
            "another process deleted the WAL: this process's locks were dropped"
        );
        // The first connection still sees the store.
        let again: i64 = first
            .conn()
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(again, n);
    }
}
