//! The audit ledger (`gcr audit …`): the `events` table is an append-only log whose every
//! row carries its RFC 6962 leaf (written by the store's trigger in the same statement as
//! the change it records). Here the Merkle tree is caught up with the leaves and signed
//! checkpoints are made — off the start path: by the housekeeper while it lingers, at
//! most every [`CHECKPOINT_EVERY`] entries or [`CHECKPOINT_AFTER_S`] seconds, and always
//! on `gcr audit checkpoint` — and proofs are served. `verify.rs` recomputes everything;
//! `log.rs` lists entries; `tiles.rs` exports the tlog-tiles layout.
//!
//! The ledger key is an Ed25519 key made at first use (`<root>/ledger/key.pem`, 0600 in a
//! 0700 directory); its note name, which is also the checkpoints' origin line, is
//! `gcr.ledger/<host name>`.

use crate::{Engine, EngineError};
use gcr_store::Store;
use gcr_trust::ledger::{self, Hash, HashReader, LedgerKey};
use gcr_trust::PrivateKey;
use std::cell::RefCell;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

mod log;
mod mirror;
mod proofcheck;
mod tiles;
mod verify;

pub use log::{AuditEntry, AuditFilter};
pub use mirror::MirrorReport;
pub use proofcheck::ProofVerdict;
pub use verify::AuditReport;

/// A new checkpoint is made once this many entries are not covered by one...
pub const CHECKPOINT_EVERY: u64 = 1000;
/// ... or once the newest entry is this old and not covered.
pub const CHECKPOINT_AFTER_S: i64 = 60;

fn ledger_dir(root: &Path) -> PathBuf {
    root.join("ledger")
}

fn key_path(root: &Path) -> PathBuf {
    ledger_dir(root).join("key.pem")
}

/// The note name (and origin) of this host's ledger.
fn key_name() -> String {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let clean: String = host
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '+')
        .collect();
    if clean.is_empty() {
        "gcr.ledger".into()
    } else {
        format!("gcr.ledger/{clean}")
    }
}

fn io(what: &str, p: &Path, e: std::io::Error) -> EngineError {
    EngineError::Io(format!("cannot {what} {}", p.display()), e)
}

/// The ledger key, made at first use. `create`: make it when missing (else an error).
pub(crate) fn ledger_key(root: &Path, create: bool) -> Result<LedgerKey, EngineError> {
    let path = key_path(root);
    let pem = match std::fs::read(&path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            make_key(root)?;
            std::fs::read(&path).map_err(|e| io("read the ledger key", &path, e))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EngineError::NotFound(format!(
                "this store has no ledger key yet ({}); make the first checkpoint with `gcr audit checkpoint`",
                path.display()
            )))
        }
        Err(e) => return Err(io("read the ledger key", &path, e)),
    };
    let key = PrivateKey::from_pem(&path.display().to_string(), &pem, None)
        .map_err(|e| EngineError::Internal(format!("the ledger key is damaged: {e}")))?;
    LedgerKey::new(key, &key_name()).map_err(|e| EngineError::Internal(e.to_string()))
}

/// Writes a new ledger key (mode 0600, never replacing one another process made first).
fn make_key(root: &Path) -> Result<(), EngineError> {
    let dir = ledger_dir(root);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("create", &dir, e)),
    }
    let pem = PrivateKey::generate()
        .to_pem("ledger", None)
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    let tmp = dir.join(format!(".key.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(pem.as_bytes())?;
        f.sync_all()
    };
    let r = write().and_then(|()| std::fs::hard_link(&tmp, key_path(root)));
    let _ = std::fs::remove_file(&tmp);
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io("write the ledger key", &key_path(root), e)),
    }
}

/// Reads the tree's stored hashes from the store, plus hashes computed but not stored yet.
pub(crate) struct StoreHashes<'a> {
    store: &'a Store,
    /// Stored hash ids from `base` on, not yet in the store.
    base: u64,
    pending: RefCell<Vec<Hash>>,
}

impl<'a> StoreHashes<'a> {
    /// The hashes the store holds, nothing pending.
    pub(crate) fn stored(store: &'a Store) -> StoreHashes<'a> {
        StoreHashes {
            store,
            base: u64::MAX,
            pending: RefCell::new(Vec::new()),
        }
    }
}

impl HashReader for StoreHashes<'_> {
    fn read_hashes(&self, ids: &[u64]) -> Result<Vec<Hash>, gcr_trust::ledger::TlogError> {
        let pending = self.pending.borrow();
        let stored: Vec<u64> = ids.iter().copied().filter(|i| *i < self.base).collect();
        let mut from_store = self
            .store
            .ledger_hashes(&stored)
            .map_err(|_| gcr_trust::ledger::TlogError::IndexesNotInTree)?
            .into_iter();
        ids.iter()
            .map(|i| {
                if *i < self.base {
                    from_store
                        .next()
                        .flatten()
                        .map(Hash)
                        .ok_or(gcr_trust::ledger::TlogError::IndexesNotInTree)
                } else {
                    pending
                        .get((*i - self.base) as usize)
                        .copied()
                        .ok_or(gcr_trust::ledger::TlogError::IndexesNotInTree)
                }
            })
            .collect()
    }
}

/// How many entries the stored hashes cover (`stored_hash_count` is increasing).
fn hashed_entries(count: u64, size: u64) -> u64 {
    let (mut lo, mut hi) = (0u64, size);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if ledger::stored_hash_count(mid) <= count {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Brings the tree's stored hashes up to the ledger's size; returns the size covered.
pub(crate) fn catch_up(store: &Store) -> Result<u64, EngineError> {
    for _ in 0..5 {
        let size = store.ledger_size()?;
        let count = store.ledger_hash_count()?;
        let done = hashed_entries(count, size);
        if ledger::stored_hash_count(done) != count {
            return Err(EngineError::Internal(format!(
                "the ledger's tree holds {count} hashes, which fits no number of entries; run `gcr audit verify`"
            )));
        }
        if done == size {
            return Ok(size);
        }
        let reader = StoreHashes {
            store,
            base: count,
            pending: RefCell::new(Vec::new()),
        };
        const CHUNK: u64 = 4096;
        let mut n = done;
        while n < size {
            let rows = store.ledger_rows(n, (n + CHUNK).min(size))?;
            for r in rows {
                let leaf = r.leaf.ok_or_else(|| {
                    EngineError::Internal(format!(
                        "ledger entry {} is missing; run `gcr audit verify`",
                        r.index
                    ))
                })?;
                let add = ledger::hashes_to_store(r.index, leaf, &reader)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                reader.pending.borrow_mut().extend(add);
            }
            n = (n + CHUNK).min(size);
        }
        let pending = reader.pending.into_inner();
        let raw: Vec<[u8; 32]> = pending.iter().map(|h| h.0).collect();
        match store.ledger_store_hashes(count, &raw) {
            Ok(()) => return Ok(size),
            // Another process caught up meanwhile: start over from its count.
            Err(gcr_store::StoreError::LedgerConflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(EngineError::Conflict(
        "the ledger kept growing while its tree was computed; try again".into(),
    ))
}

/// Makes a signed checkpoint of the whole ledger (unless the latest covers it already)
/// and returns the latest checkpoint note.
pub(crate) fn checkpoint(store: &Store, root: &Path) -> Result<Vec<u8>, EngineError> {
    let size = catch_up(store)?;
    if let Some(c) = store.ledger_latest_checkpoint()? {
        if c.size >= size {
            return Ok(c.note);
        }
    }
    let key = ledger_key(root, true)?;
    let reader = StoreHashes::stored(store);
    let root_hash =
        ledger::tree_hash(size, &reader).map_err(|e| EngineError::Internal(e.to_string()))?;
    let note = key
        .sign_checkpoint(size, root_hash)
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    store.ledger_add_checkpoint(size, &note)?;
    Ok(note)
}

/// [`checkpoint`], and what its note says, read back through the ledger key's signature.
pub(crate) fn latest_checked(
    store: &Store,
    root: &Path,
) -> Result<(Vec<u8>, ledger::CheckedCheckpoint), EngineError> {
    let note = checkpoint(store, root)?;
    let key = ledger_key(root, false)?;
    let cp = ledger::verify_checkpoint(&note, 0, &key.verifier_key())
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok((note, cp))
}

/// A checkpoint when one is due (see [`CHECKPOINT_EVERY`]); errors are left for `audit
/// verify` to report. Called by the housekeeper while it lingers.
pub(crate) fn checkpoint_if_due(store: &Store, root: &Path) {
    let Ok(size) = store.ledger_size() else {
        return;
    };
    let latest = store.ledger_latest_checkpoint().ok().flatten();
    let (covered, made_at) = latest.map_or((0, 0), |c| (c.size, c.made_at));
    if size <= covered {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if size - covered >= CHECKPOINT_EVERY || now - made_at >= CHECKPOINT_AFTER_S {
        let _ = checkpoint(store, root);
    }
}

/// An inclusion proof of one entry against the latest checkpoint.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    pub index: u64,
    /// The entry's canonical JSON (absent once compacted).
    pub entry: Option<Vec<u8>>,
    pub leaf: [u8; 32],
    /// The C2SP tlog-proof text (with the signed checkpoint).
    pub text: Vec<u8>,
}

/// A consistency proof between two checkpointed sizes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub old_root: String,
    pub new_size: u64,
    pub new_root: String,
    /// The proof's hashes, base64.
    pub proof: Vec<String>,
}

pub(crate) fn b64(h: &Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(h.0)
}

impl Engine {
    /// `gcr audit checkpoint`: a new signed checkpoint when the ledger grew; the latest.
    pub fn audit_checkpoint(&self) -> Result<Vec<u8>, EngineError> {
        checkpoint(self.store()?, self.root())
    }

    /// `gcr audit key`: the note verifier key of the ledger (made at first use).
    pub fn audit_key(&self) -> Result<String, EngineError> {
        Ok(ledger_key(self.root(), true)?.verifier_key())
    }

    /// `gcr audit prove INDEX`: an inclusion proof of entry INDEX against a checkpoint
    /// covering it (made now when none does).
    pub fn audit_prove(&self, index: u64) -> Result<InclusionProof, EngineError> {
        let store = self.store()?;
        let size = store.ledger_size()?;
        if index >= size {
            return Err(EngineError::NotFound(format!(
                "the ledger has {size} entries, so no entry {index}; see `gcr audit log`"
            )));
        }
        let (note, cp) = latest_checked(store, self.root())?;
        let reader = StoreHashes::stored(store);
        let proof = ledger::prove_inclusion(cp.size, index, &reader)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let row = store
            .ledger_rows(index, index + 1)?
            .pop()
            .and_then(|r| r.leaf.map(|l| (r.entry, l)));
        let Some((entry, leaf)) = row else {
            return Err(EngineError::Internal(format!(
                "ledger entry {index} is missing; run `gcr audit verify`"
            )));
        };
        let text = ledger::proof::ProofText {
            index,
            hashes: proof,
            extra: None,
            checkpoint: note,
        }
        .to_text();
        Ok(InclusionProof {
            index,
            entry,
            leaf,
            text,
        })
    }

    /// `gcr audit consistency OLD [NEW]`: the proof that the first OLD entries are a
    /// prefix of the first NEW (default: the latest checkpoint's size).
    pub fn audit_consistency(
        &self,
        old: u64,
        new: Option<u64>,
    ) -> Result<ConsistencyProof, EngineError> {
        let store = self.store()?;
        let (_, cp) = latest_checked(store, self.root())?;
        let new = new.unwrap_or(cp.size);
        if old == 0 || old > new || new > cp.size {
            return Err(EngineError::Usage(format!(
                "consistency needs 0 < OLD <= NEW <= {} (the latest checkpoint's size); got {old} and {new}",
                cp.size
            )));
        }
        let reader = StoreHashes::stored(store);
        let err = |e: ledger::LedgerError| EngineError::Internal(e.to_string());
        let proof = ledger::prove_consistency(new, old, &reader).map_err(err)?;
        let old_root = ledger::tree_hash(old, &reader).map_err(err)?;
        let new_root = ledger::tree_hash(new, &reader).map_err(err)?;
        Ok(ConsistencyProof {
            old_size: old,
            old_root: b64(&old_root),
            new_size: new,
            new_root: b64(&new_root),
            proof: proof.iter().map(b64).collect(),
        })
    }

    /// `gcr audit compact --before T`: drops the bodies of checkpointed entries older than
    /// `before_ns` (their leaves stay; `audit verify` still passes).
    pub fn audit_compact(&self, before_ns: i64) -> Result<u64, EngineError> {
        let store = self.store()?;
        checkpoint(store, self.root())?;
        Ok(store.ledger_compact(before_ns)?)
    }
}
