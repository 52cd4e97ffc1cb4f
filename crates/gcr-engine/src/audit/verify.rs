//! `gcr audit verify`: recomputes the ledger from its entries and checks everything that
//! was ever derived from them — each entry against its leaf, the tree's stored hashes,
//! every checkpoint's signature and root, and that each checkpoint is a prefix of the
//! next — naming the first bad entry by index.

use super::{ledger_key, Hash};
use crate::{Engine, EngineError};
use gcr_store::{LedgerRow, Store};
use gcr_trust::ledger::{self, MemHashes};
use serde::Serialize;

/// Problems reported at most (the first ones by index matter; the rest is noise).
const MAX_PROBLEMS: usize = 50;
/// Entries read per query.
const CHUNK: u64 = 8192;
/// Ledgers at least this long are re-hashed by several threads.
const PARALLEL_FROM: u64 = 50_000;

/// One thing `audit verify` found wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The first entry it concerns, when it concerns entries.
    pub index: Option<u64>,
    pub what: String,
}

/// What `audit verify` checked and found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub entries: u64,
    /// Entries whose body was compacted away (checked by their leaf only).
    pub compacted: u64,
    pub checkpoints: usize,
    /// The verifier key the checkpoints were checked with.
    pub key: String,
    /// Sorted by index (problems without one last).
    pub problems: Vec<Problem>,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The first bad entry's index, if an entry is at fault.
    pub fn first_bad_index(&self) -> Option<u64> {
        self.problems.iter().filter_map(|p| p.index).min()
    }
}

/// Step 1's view of one entry: the leaf the tree is rebuilt from (the recomputed one for a
/// changed entry, zeros for a missing one) and what was found.
struct Slim {
    leaf: [u8; 32],
    state: u8,
}

impl Slim {
    const OK: u8 = 0;
    const MISSING: u8 = 1;
    const CHANGED: u8 = 2;
    const COMPACTED: u8 = 3;

    fn of(r: LedgerRow) -> Slim {
        match (r.leaf, r.recomputed) {
            (None, _) => Slim {
                leaf: [0; 32],
                state: Slim::MISSING,
            },
            (Some(stored), Some(again)) if stored != again => Slim {
                leaf: again,
                state: Slim::CHANGED,
            },
            (Some(stored), _) => Slim {
                leaf: stored,
                state: if r.entry.is_none() {
                    Slim::COMPACTED
                } else {
                    Slim::OK
                },
            },
        }
    }
}

/// Entries `from..to` of `store` as [`Slim`]s (dense: `ledger_rows` fills gaps).
fn slim_range(store: &Store, from: u64, to: u64) -> Result<Vec<Slim>, EngineError> {
    let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
    let mut n = from;
    while n < to {
        let end = (n + CHUNK).min(to);
        out.extend(store.ledger_rows(n, end)?.into_iter().map(Slim::of));
        n = end;
    }
    Ok(out)
}

impl Engine {
    /// Every entry `0..size` as a [`Slim`]. Recomputing the leaves (each entry's canonical
    /// JSON and its hash) is most of verify's time, so large ledgers are read in ranges by
    /// one thread per CPU, each on its own connection.
    fn slim_rows(&self, store: &Store, size: u64) -> Result<Vec<Slim>, EngineError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8)) as u64;
        if threads < 2 || size < PARALLEL_FROM {
            return slim_range(store, 0, size);
        }
        let per = size.div_ceil(threads);
        let root = self.root();
        let parts: Vec<Result<Vec<Slim>, EngineError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (1..threads)
                .map(|t| {
                    let (from, to) = ((t * per).min(size), ((t + 1) * per).min(size));
                    s.spawn(move || slim_range(&Store::open_existing(root)?, from, to))
                })
                .collect();
            let mut parts = vec![slim_range(store, 0, per.min(size))];
            for h in handles {
                parts.push(h.join().unwrap_or_else(|_| {
                    Err(EngineError::Internal("a verify thread failed".into()))
                }));
            }
            parts
        });
        let mut out = Vec::with_capacity(size as usize);
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }

    /// `gcr audit verify [--key VKEY]`: checks the whole ledger (see the module doc). The
    /// checkpoints are checked with `vkey` (a note verifier key) or the store's ledger key.
    pub fn audit_verify(&self, vkey: Option<&str>) -> Result<AuditReport, EngineError> {
        let store = self.store()?;
        let size = store.ledger_size()?;
        let mut problems: Vec<Problem> = Vec::new();
        let mut note = |index: Option<u64>, what: String| {
            if problems.len() < MAX_PROBLEMS {
                problems.push(Problem { index, what });
            }
        };
        // 1. Entries against their leaves; the tree rebuilt from the recomputed leaves.
        let mut tree = MemHashes(Vec::with_capacity(ledger::stored_hash_count(size) as usize));
        let mut compacted = 0;
        for (i, r) in self.slim_rows(store, size)?.into_iter().enumerate() {
            let index = i as u64;
            match r.state {
                Slim::MISSING => note(
                    Some(index),
                    format!("entry {index} is missing: it was removed from the log"),
                ),
                Slim::CHANGED => note(
                    Some(index),
                    format!("entry {index} was changed: its content no longer hashes to its leaf"),
                ),
                Slim::COMPACTED => compacted += 1,
                _ => {}
            }
            let add = ledger::hashes_to_store(index, r.leaf, &tree)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            tree.0.extend(add);
        }
        // 2. The stored tree against the rebuilt one.
        let count = store.ledger_hash_count()?;
        let expected = tree.0.len() as u64;
        if count > expected {
            note(
                Some(size),
                format!(
                    "the log was truncated: its tree holds hashes for more entries than the {size} it has"
                ),
            );
        }
        let mut id = 0;
        let mut reported_tree = false;
        while id < count.min(expected) && !reported_tree {
            let end = (id + CHUNK * 2).min(count.min(expected));
            for (i, h) in store.ledger_hash_range(id, end)?.into_iter().enumerate() {
                let sid = id + i as u64;
                if h != Some(tree.0[sid as usize].0) {
                    let (level, k) = ledger::split_stored_hash_index(sid);
                    let first = k << level;
                    note(
                        Some(first),
                        format!(
                            "the tree's stored hash over entries {first}..{} does not match the entries",
                            (first + (1 << level)).min(size)
                        ),
                    );
                    reported_tree = true;
                    break;
                }
            }
            id = end;
        }
        // 3. Checkpoints: signature, size, root, and each a prefix of the next.
        let key = match vkey {
            Some(k) => k.to_string(),
            None => match ledger_key(self.root(), false) {
                Ok(k) => k.verifier_key(),
                Err(_) => String::new(),
            },
        };
        let checkpoints = store.ledger_checkpoints()?;
        if key.is_empty() && !checkpoints.is_empty() {
            note(
                None,
                "the ledger key is missing, so no checkpoint can be checked".into(),
            );
        }
        let mut previous: Option<(u64, Hash)> = None;
        for cp in checkpoints.iter().filter(|_| !key.is_empty()) {
            let checked = match ledger::verify_checkpoint(&cp.note, cp.size, &key) {
                Ok(c) => c,
                Err(e) => {
                    note(None, e.to_string());
                    continue;
                }
            };
            if checked.size != cp.size {
                note(
                    None,
                    format!(
                        "the checkpoint stored for size {} says size {}",
                        cp.size, checked.size
                    ),
                );
                continue;
            }
            if cp.size > size {
                note(
                    Some(size),
                    format!(
                        "the log was truncated: checkpoint {} covers {} entries, the log has {size}",
                        cp.size, cp.size
                    ),
                );
                continue;
            }
            let root = ledger::tree_hash(cp.size, &tree)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            if root != checked.root {
                note(
                    None,
                    format!(
                        "checkpoint {} does not match the entries it covers (its root differs)",
                        cp.size
                    ),
                );
                continue;
            }
            if let Some((old, old_root)) = previous {
                let ok = ledger::prove_consistency(cp.size, old, &tree)
                    .and_then(|p| ledger::check_consistency(&p, cp.size, root, old, old_root));
                if let Err(e) = ok {
                    note(
                        None,
                        format!(
                            "checkpoint {old} is not a prefix of checkpoint {}: {e}",
                            cp.size
                        ),
                    );
                }
            }
            previous = Some((cp.size, root));
        }
        problems.sort_by_key(|p| p.index.unwrap_or(u64::MAX));
        Ok(AuditReport {
            entries: size,
            compacted,
            checkpoints: checkpoints.len(),
            key,
            problems,
        })
    }
}
