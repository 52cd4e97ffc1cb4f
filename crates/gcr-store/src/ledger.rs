//! The audit ledger's rows. Every row of `events` is an entry of an append-only log: its
//! leaf hash (RFC 6962: SHA-256 of `0x00 || entry`) is written by a trigger in the same
//! statement as the row, so no writer can add an event without its leaf, and the entry is
//! the canonical JSON (RFC 8785) of the row's columns with its index (`seq - 1`), time,
//! actor (uid and the calling program, [`Actor`]), subject and action ([`Entry`]);
//! `time_ns` is a decimal string (RFC 8785 numbers are doubles and would round it).
//!
//! The Merkle tree over the leaves (its stored hashes, in the layout of Go's
//! `sumdb/tlog`: [`Store::ledger_hashes`]) and the signed checkpoints are kept here too,
//! but computed by the caller (gcr-trust's ledger module) off the hot path: a new
//! checkpoint catches the tree up with the leaves first.

use crate::error::{Result, StoreError};
use crate::Store;
use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

/// Who asked for a change: the user id and the program that called gcr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub uid: u32,
    /// The executable of the calling process (gcr's parent for a command, the peer's for
    /// a request served on its behalf); empty when unknown.
    pub exe: String,
}

impl Actor {
    /// The actor of this process: its real uid and its parent's executable.
    pub fn of_this_process() -> Actor {
        let uid = rustix::process::getuid().as_raw();
        let ppid = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
        Actor {
            uid,
            exe: ppid.map(Actor::exe_of).unwrap_or_default(),
        }
    }

    /// The executable of process `pid` (empty when it cannot be read).
    pub fn exe_of(pid: i32) -> String {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn to_json(&self) -> String {
        // Canonical by construction: keys in order, no floats.
        json!({"exe": self.exe, "uid": self.uid}).to_string()
    }
}

/// The actor a connection stamps on the events it writes (shared with its SQL function):
/// [`Actor::of_this_process`] is looked up when the first event is written, not at every
/// open (most commands write none).
#[derive(Clone)]
pub(crate) struct ActorCell(Arc<Mutex<Option<String>>>);

/// One entry as stored: its index, its canonical JSON (`None` once compacted) and its leaf.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub index: u64,
    pub entry: Option<Vec<u8>>,
    /// The leaf hash the row carries (computed when it was written).
    pub leaf: Option<[u8; 32]>,
    /// The leaf hash recomputed from the entry (equal to `leaf` unless tampered with).
    pub recomputed: Option<[u8; 32]>,
}

/// A stored signed checkpoint.
#[derive(Debug, Clone)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub note: Vec<u8>,
    pub made_at: i64,
}

mod entry;

/// One event row as the ledger sees it: the columns its entry is made of.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// `seq - 1`.
    pub index: i64,
    pub time_ns: i64,
    /// The actor column (JSON).
    pub actor: &'a str,
    pub kind: &'a str,
    pub object: &'a str,
    pub name: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub cause: Option<&'a str>,
}

impl Entry<'_> {
    /// The canonical JSON of the entry (what its leaf hashes).
    pub fn bytes(&self) -> Vec<u8> {
        entry::write(self).unwrap_or_else(|| self.bytes_general())
    }

    /// [`Entry::bytes`] through a JSON value and RFC 8785 canonicalization (the definition;
    /// the direct writer in `entry` is checked against it).
    fn bytes_general(&self) -> Vec<u8> {
        let actor: Value = serde_json::from_str(self.actor).unwrap_or(Value::Null);
        let v = json!({
            "action": action(self.kind, self.from, self.to, self.cause),
            "actor": actor,
            "cause": self.cause,
            "from": self.from,
            "index": self.index,
            "subject": {"id": self.object, "kind": self.kind, "name": self.name},
            // Exact as a string: RFC 8785 numbers are doubles, and this is past 2^53.
            "time_ns": self.time_ns.to_string(),
        });
        gcr_core::canonical_json::to_canonical_bytes(&v)
            .unwrap_or_else(|_| v.to_string().into_bytes())
    }
}

/// The action an event row records: `<kind>.<new state>` (`container.running`,
/// `image.tag`), `<kind>.removed` for a row that leaves its last state, else
/// `<kind>.<cause>` or the kind alone.
pub fn action(kind: &str, from: Option<&str>, to: Option<&str>, cause: Option<&str>) -> String {
    match (to, from, cause) {
        (Some(t), _, _) if !t.is_empty() => format!("{kind}.{t}"),
        (_, Some(f), _) if !f.is_empty() => format!("{kind}.removed"),
        (_, _, Some(c)) if !c.is_empty() => format!("{kind}.{c}"),
        _ => kind.to_string(),
    }
}

/// RFC 6962 leaf hash: SHA-256 of `0x00 || entry`.
pub fn leaf_hash(entry: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// Registers the SQL functions the ledger's trigger and migration call on `conn`.
pub(crate) fn register(conn: &Connection) -> Result<ActorCell> {
    let cell = ActorCell(Arc::new(Mutex::new(None)));
    let c = cell.clone();
    conn.create_scalar_function(
        "gcr_ledger_actor",
        0,
        FunctionFlags::SQLITE_UTF8,
        move |_| {
            Ok(c.0
                .lock()
                .map(|mut s| {
                    s.get_or_insert_with(|| Actor::of_this_process().to_json())
                        .clone()
                })
                .unwrap_or_default())
        },
    )?;
    conn.create_scalar_function(
        "gcr_ledger_leaf",
        9,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            // Inline: the column values live until the end of the statement.
            Ok(leaf_hash(
                &Entry {
                    index: ctx.get::<i64>(0)? - 1,
                    time_ns: ctx.get(1)?,
                    actor: &ctx.get::<Option<String>>(2)?.unwrap_or_default(),
                    kind: &ctx.get::<String>(3)?,
                    object: &ctx.get::<String>(4)?,
                    name: ctx.get::<Option<String>>(5)?.as_deref(),
                    from: ctx.get::<Option<String>>(6)?.as_deref(),
                    to: ctx.get::<Option<String>>(7)?.as_deref(),
                    cause: ctx.get::<Option<String>>(8)?.as_deref(),
                }
                .bytes(),
            )
            .to_vec())
        },
    )?;
    Ok(cell)
}

/// A leaf or stored-hash column: `None` when NULL; 32 bytes otherwise. A value of another
/// size or type (a tampered row) reads as all zeros, which matches no hash, so `audit
/// verify` names it instead of failing on the column's type.
fn hash_col(v: rusqlite::types::ValueRef<'_>) -> Option<[u8; 32]> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => None,
        ValueRef::Blob(b) | ValueRef::Text(b) => Some(b.try_into().unwrap_or([0; 32])),
        _ => Some([0; 32]),
    }
}

impl Store {
    /// Sets the actor stamped on the events this store writes from now on (a service
    /// acting for a client; a command keeps [`Actor::of_this_process`]).
    pub fn set_actor(&self, actor: &Actor) {
        if let Ok(mut s) = self.actor.0.lock() {
            *s = Some(actor.to_json());
        }
    }

    /// The number of entries in the ledger (the highest index + 1).
    pub fn ledger_size(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT IFNULL(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Entries `from..to` by index, in order, with their stored and recomputed leaves.
    /// An index with no row is returned with neither (a removed entry).
    pub fn ledger_rows(&self, from: u64, to: u64) -> Result<Vec<LedgerRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, time_ns, actor, kind, object, name, from_state, to_state, cause, leaf, compacted
             FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
        )?;
        let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
        let mut rows = stmt.query(params![from as i64, to as i64])?;
        let mut next = from;
        while let Some(r) = rows.next()? {
            let index = (r.get::<_, i64>(0)? - 1) as u64;
            while next < index {
                out.push(LedgerRow {
                    index: next,
                    entry: None,
                    leaf: None,
                    recomputed: None,
                });
                next += 1;
            }
            next = index + 1;
            let compacted: i64 = r.get(10)?;
            let leaf = hash_col(r.get_ref(9)?);
            let entry = (compacted == 0).then(|| -> rusqlite::Result<Vec<u8>> {
                Ok(Entry {
                    index: index as i64,
                    time_ns: r.get(1)?,
                    actor: &r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    kind: &r.get::<_, String>(3)?,
                    object: &r.get::<_, String>(4)?,
                    name: r.get::<_, Option<String>>(5)?.as_deref(),
                    from: r.get::<_, Option<String>>(6)?.as_deref(),
                    to: r.get::<_, Option<String>>(7)?.as_deref(),
                    cause: r.get::<_, Option<String>>(8)?.as_deref(),
                }
                .bytes())
            });
            let entry = entry.transpose()?;
            let recomputed = entry.as_deref().map(leaf_hash).or(leaf);
            out.push(LedgerRow {
                index,
                entry,
                leaf,
                recomputed,
            });
        }
        while next < to {
            out.push(LedgerRow {
                index: next,
                entry: None,
                leaf: None,
                recomputed: None,
            });
            next += 1;
        }
        Ok(out)
    }

    /// The tree's stored hashes with ids `ids` (Go `sumdb/tlog` storage indexes); an id
    /// not stored is `None`.
    pub fn ledger_hashes(&self, ids: &[u64]) -> Result<Vec<Option<[u8; 32]>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash FROM ledger_hashes WHERE id = ?1")?;
        ids.iter()
            .map(|id| {
                Ok(stmt
                    .query_row([*id as i64], |r| Ok(hash_col(r.get_ref(0)?)))
                    .optional()?
                    .flatten())
            })
            .collect()
    }

    /// The stored hashes with ids `from..to`, in order (`None` for an id not stored).
    pub fn ledger_hash_range(&self, from: u64, to: u64) -> Result<Vec<Option<[u8; 32]>>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, hash FROM ledger_hashes WHERE id >= ?1 AND id < ?2 ORDER BY id",
        )?;
        let mut out = vec![None; to.saturating_sub(from) as usize];
        let mut rows = stmt.query(params![from as i64, to as i64])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            if let Some(slot) = out.get_mut((id as u64 - from) as usize) {
                *slot = hash_col(r.get_ref(1)?);
            }
        }
        Ok(out)
    }

    /// How many of the tree's hashes are stored (the next id to store).
    pub fn ledger_hash_count(&self) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT IFNULL(MAX(id) + 1, 0) FROM ledger_hashes",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Stores tree hashes from id `first` on, in one transaction; refused when another
    /// writer stored them meanwhile (the caller starts over from the new count).
    pub fn ledger_store_hashes(&self, first: u64, hashes: &[[u8; 32]]) -> Result<()> {
        self.transaction(|tx| -> Result<()> {
            let have: i64 = tx.query_row(
                "SELECT IFNULL(MAX(id) + 1, 0) FROM ledger_hashes",
                [],
                |r| r.get(0),
            )?;
            if have as u64 != first {
                return Err(StoreError::LedgerConflict(format!(
                    "the ledger's tree grew meanwhile (to {have} hashes, not {first}); try again"
                )));
            }
            let mut ins =
                tx.prepare_cached("INSERT INTO ledger_hashes(id, hash) VALUES (?1, ?2)")?;
            for (i, h) in hashes.iter().enumerate() {
                ins.execute(params![(first + i as u64) as i64, &h[..]])?;
            }
            Ok(())
        })
    }

    /// Stores a signed checkpoint of the first `size` entries.
    pub fn ledger_add_checkpoint(&self, size: u64, note: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO ledger_checkpoints(size, note, made_at) VALUES (?1, ?2, ?3)",
            params![size as i64, note, crate::util::now_ns() / 1_000_000_000],
        )?;
        Ok(())
    }

    /// Every stored checkpoint, smallest first.
    pub fn ledger_checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT size, note, made_at FROM ledger_checkpoints ORDER BY size")?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredCheckpoint {
                size: r.get::<_, i64>(0)? as u64,
                note: r.get(1)?,
                made_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The latest checkpoint, if any.
    pub fn ledger_latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        Ok(self
            .conn
            .query_row(
                "SELECT size, note, made_at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |r| {
                    Ok(StoredCheckpoint {
                        size: r.get::<_, i64>(0)? as u64,
                        note: r.get(1)?,
                        made_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Drops the bodies of entries written before `before_ns` that a checkpoint covers
    /// (their leaves stay, so the tree and every proof still verify); returns how many.
    pub fn ledger_compact(&self, before_ns: i64) -> Result<u64> {
        self.transaction(|tx| -> Result<u64> {
            let covered: i64 = tx.query_row(
                "SELECT IFNULL(MAX(size), 0) FROM ledger_checkpoints",
                [],
                |r| r.get(0),
            )?;
            let n = tx.execute(
                "UPDATE events SET object = '', name = NULL, from_state = NULL, to_state = NULL,
                 cause = NULL, actor = NULL, compacted = 1
                 WHERE compacted = 0 AND time_ns < ?1 AND seq <= ?2 AND leaf IS NOT NULL",
                params![before_ns, covered],
            )?;
            Ok(n as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s")).unwrap();
        (dir, s)
    }

    fn add(s: &Store, object: &str) {
        s.conn()
            .execute(
                "INSERT INTO events(time_ns, kind, object, name, to_state) VALUES (5, 'image', ?1, 'n', 'tag')",
                [object],
            )
            .unwrap();
    }

    #[test]
    fn every_event_gets_its_leaf_and_actor_in_the_same_statement() {
        let (_d, s) = store();
        let before = s.ledger_size().unwrap();
        add(&s, "a");
        add(&s, "b");
        assert_eq!(s.ledger_size().unwrap(), before + 2);
        let rows = s.ledger_rows(before, before + 2).unwrap();
        assert_eq!(rows.len(), 2);
        for r in &rows {
            assert!(r.leaf.is_some());
            assert_eq!(r.leaf, r.recomputed);
            let e: Value = serde_json::from_slice(r.entry.as_ref().unwrap()).unwrap();
            assert_eq!(e["index"], r.index);
            assert_eq!(e["action"], "image.tag");
            assert_eq!(e["actor"]["uid"], rustix::process::getuid().as_raw());
        }
        // Tampering with a column shows as a leaf that no longer matches.
        s.conn()
            .execute(
                "UPDATE events SET object = 'x' WHERE seq = ?1",
                [before as i64 + 1],
            )
            .unwrap();
        let rows = s.ledger_rows(before, before + 2).unwrap();
        assert_ne!(rows[0].leaf, rows[0].recomputed);
        assert_eq!(rows[1].leaf, rows[1].recomputed);
    }

    #[test]
    fn a_removed_row_is_a_hole_and_the_actor_can_be_set() {
        let (_d, s) = store();
        let base = s.ledger_size().unwrap();
        add(&s, "a");
        add(&s, "b");
        add(&s, "c");
        s.conn()
            .execute("DELETE FROM events WHERE seq = ?1", [base as i64 + 2])
            .unwrap();
        let rows = s.ledger_rows(base, base + 3).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows[1].leaf.is_none() && rows[1].entry.is_none());
        s.set_actor(&Actor {
            uid: 7,
            exe: "/usr/bin/dockerd".into(),
        });
        add(&s, "d");
        let rows = s.ledger_rows(base + 3, base + 4).unwrap();
        let e: Value = serde_json::from_slice(rows[0].entry.as_ref().unwrap()).unwrap();
        assert_eq!(e["actor"], json!({"exe": "/usr/bin/dockerd", "uid": 7}));
    }

    #[test]
    fn compaction_keeps_leaves_of_checkpointed_entries_only() {
        let (_d, s) = store();
        let base = s.ledger_size().unwrap();
        add(&s, "a");
        add(&s, "b");
        s.ledger_add_checkpoint(base + 1, b"note").unwrap();
        assert_eq!(s.ledger_compact(i64::MAX).unwrap(), base + 1);
        let rows = s.ledger_rows(base, base + 2).unwrap();
        assert!(rows[0].entry.is_none());
        assert!(rows[0].leaf.is_some() && rows[0].recomputed == rows[0].leaf);
        assert!(rows[1].entry.is_some());
    }

    #[test]
    fn tree_hashes_append_only_from_the_current_count() {
        let (_d, s) = store();
        assert_eq!(s.ledger_hash_count().unwrap(), 0);
        s.ledger_store_hashes(0, &[[1; 32], [2; 32]]).unwrap();
        assert!(s.ledger_store_hashes(1, &[[3; 32]]).is_err());
        s.ledger_store_hashes(2, &[[3; 32]]).unwrap();
        assert_eq!(
            s.ledger_hashes(&[0, 2, 9]).unwrap(),
            vec![Some([1; 32]), Some([3; 32]), None]
        );
    }
}
