//! `gcr audit verify --proof FILE`: checks an inclusion proof in the C2SP `tlog-proof`
//! text format — made by us or by any other tlog implementation for the same tree — against
//! this store: the checkpoint it carries must be signed by the ledger key (or the given
//! verifier key), and the entry's leaf, recomputed from the store, must be in that tree.

use super::ledger_key;
use crate::{Engine, EngineError};
use gcr_trust::ledger::{self, proof::ProofText, Hash};
use serde::Serialize;

/// What `audit verify --proof` found: the proof's index and tree size, and why it fails.
#[derive(Debug, Clone, Serialize)]
pub struct ProofVerdict {
    pub index: Option<u64>,
    pub size: Option<u64>,
    /// `None` when the proof verifies.
    pub problem: Option<String>,
}

impl ProofVerdict {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

impl Engine {
    /// Checks the tlog-proof `text` against this ledger (see the module doc); checkpoints
    /// are checked with `vkey` (a note verifier key) or the store's ledger key.
    pub fn audit_check_proof(
        &self,
        text: &[u8],
        vkey: Option<&str>,
    ) -> Result<ProofVerdict, EngineError> {
        let mut v = ProofVerdict {
            index: None,
            size: None,
            problem: None,
        };
        let fail = |mut v: ProofVerdict, why: String| {
            v.problem = Some(why);
            Ok(v)
        };
        let p = match ProofText::parse(text) {
            Ok(p) => p,
            Err(e) => return fail(v, e.to_string()),
        };
        v.index = Some(p.index);
        let key = match vkey {
            Some(k) => k.to_string(),
            None => ledger_key(self.root(), false)?.verifier_key(),
        };
        let cp = match ledger::verify_checkpoint(&p.checkpoint, 0, &key) {
            Ok(c) => c,
            Err(e) => return fail(v, format!("its checkpoint: {e}")),
        };
        v.size = Some(cp.size);
        if p.index >= cp.size {
            return fail(
                v,
                format!(
                    "entry {} is not in its checkpoint's tree of {} entries",
                    p.index, cp.size
                ),
            );
        }
        let store = self.store()?;
        let row = store.ledger_rows(p.index, p.index + 1)?.pop();
        let leaf = match row {
            Some(r) => match (r.leaf, r.recomputed) {
                (None, _) => None,
                (Some(stored), Some(again)) if stored != again => {
                    return fail(
                        v,
                        format!(
                            "entry {} in this store was changed: its content no longer hashes to its leaf",
                            p.index
                        ),
                    )
                }
                (Some(stored), _) => Some(stored),
            },
            None => None,
        };
        let Some(leaf) = leaf else {
            return fail(
                v,
                format!("entry {} is not in this store's ledger", p.index),
            );
        };
        if let Err(e) = ledger::check_inclusion(&p.hashes, cp.size, cp.root, p.index, Hash(leaf)) {
            return fail(v, e.to_string());
        }
        Ok(v)
    }
}
