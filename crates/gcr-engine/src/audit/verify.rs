//! `gcr audit verify`: recomputes the ledger from its entries and checks everything that
//! was ever derived from them — each entry against its leaf, the tree's stored hashes,
//! every checkpoint's signature and root, and that each checkpoint is a prefix of the
//! next — naming the first bad entry by index.

use super::{ledger_key, Hash, HashReader};
use crate::{Engine, EngineError};
use gcr_trust::ledger::{self, TlogError};
use serde::Serialize;

/// Problems reported at most (the first ones by index matter; the rest is noise).
const MAX_PROBLEMS: usize = 50;
/// Entries read per query.
const CHUNK: u64 = 8192;

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

/// Every stored hash of a tree, in memory.
struct Mem(Vec<Hash>);

impl HashReader for Mem {
    fn read_hashes(&self, ids: &[u64]) -> Result<Vec<Hash>, TlogError> {
        ids.iter()
            .map(|i| {
                self.0
                    .get(*i as usize)
                    .copied()
                    .ok_or(TlogError::IndexesNotInTree)
            })
            .collect()
    }
}

impl Engine {
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
        let mut tree = Mem(Vec::with_capacity(ledger::stored_hash_count(size) as usize));
        let mut compacted = 0;
        let mut n = 0;
        while n < size {
            let end = (n + CHUNK).min(size);
            for r in store.ledger_rows(n, end)? {
                let leaf = match (r.leaf, r.recomputed, &r.entry) {
                    (None, _, _) => {
                        note(
                            Some(r.index),
                            format!("entry {} is missing: it was removed from the log", r.index),
                        );
                        [0u8; 32]
                    }
                    (Some(stored), Some(again), _) if stored != again => {
                        note(
                            Some(r.index),
                            format!(
                                "entry {} was changed: its content no longer hashes to its leaf",
                                r.index
                            ),
                        );
                        again
                    }
                    (Some(stored), _, entry) => {
                        if entry.is_none() {
                            compacted += 1;
                        }
                        stored
                    }
                };
                let add = ledger::hashes_to_store(r.index, leaf, &tree)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                tree.0.extend(add);
            }
            n = end;
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
