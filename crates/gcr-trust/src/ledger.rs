//! The audit ledger's cryptography, in the formats transparency logs use, so that tools
//! nobody here wrote can check it: RFC 6962 Merkle hashing with the stored-hash layout and
//! proofs of Go's `golang.org/x/mod/sumdb/tlog` (the `tlog_tiles` crate), checkpoints in
//! the C2SP `tlog-checkpoint` format signed as C2SP signed notes with an Ed25519 key
//! (`signed_note`), and inclusion proofs in the C2SP `tlog-proof` text format (`proof`).
//!
//! Nothing here touches the store: the caller reads hashes through a [`HashReader`].

use crate::keys::PrivateKey;
use signed_note::{Note, Signer, StandardVerifier, VerifierList};
use tlog_tiles::Checkpoint;
pub use tlog_tiles::{split_stored_hash_index, Error as TlogError, Tile};
pub use tlog_tiles::{Hash, HashReader, RecordProof, TreeProof, EMPTY_HASH};

pub mod proof;

/// What can go wrong checking or making ledger material; each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger's tree cannot be read: {0}")]
    Tree(String),
    #[error("checkpoint of size {size} is not a valid signed note: {reason}")]
    BadNote { size: u64, reason: String },
    #[error("checkpoint of size {size} is not signed by the ledger key {key}: {reason}")]
    BadSignature {
        size: u64,
        key: String,
        reason: String,
    },
    #[error("{0} is not a valid note verifier key; give one as printed by `gcr audit key`")]
    BadVerifierKey(String),
    #[error("the proof is malformed: {0}")]
    BadProof(String),
    #[error("the proof does not verify: {0}")]
    ProofFails(String),
}

fn tree_err(e: TlogError) -> LedgerError {
    LedgerError::Tree(e.to_string())
}

/// Every stored hash of a tree, in memory (indexed by stored hash index): what a
/// verifier rebuilds from the entries.
#[derive(Debug, Default, Clone)]
pub struct MemHashes(pub Vec<Hash>);

impl HashReader for MemHashes {
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

/// The hashes to store when entry `n` with leaf hash `leaf` is appended (entries `0..n`
/// are stored already), in stored-hash-index order from `stored_hash_index(0, n)`.
pub fn hashes_to_store<R: HashReader>(
    n: u64,
    leaf: [u8; 32],
    r: &R,
) -> Result<Vec<Hash>, LedgerError> {
    tlog_tiles::stored_hashes_for_record_hash(n, Hash(leaf), r).map_err(tree_err)
}

/// How many hashes are stored for a tree of `n` entries.
pub fn stored_hash_count(n: u64) -> u64 {
    tlog_tiles::stored_hash_count(n)
}

/// The root hash of the first `n` entries.
pub fn tree_hash<R: HashReader>(n: u64, r: &R) -> Result<Hash, LedgerError> {
    tlog_tiles::tree_hash(n, r).map_err(tree_err)
}

/// An inclusion proof of entry `n` in the tree of size `t`.
pub fn prove_inclusion<R: HashReader>(t: u64, n: u64, r: &R) -> Result<RecordProof, LedgerError> {
    tlog_tiles::prove_record(t, n, r).map_err(tree_err)
}

/// Checks that entry `n` with leaf `leaf` is in the tree of size `t` with root `root`.
pub fn check_inclusion(
    p: &RecordProof,
    t: u64,
    root: Hash,
    n: u64,
    leaf: Hash,
) -> Result<(), LedgerError> {
    tlog_tiles::check_record(p, t, root, n, leaf)
        .map_err(|e| LedgerError::ProofFails(format!("entry {n} in the tree of size {t}: {e}")))
}

/// A consistency proof from the tree of size `n` to the tree of size `t`.
pub fn prove_consistency<R: HashReader>(t: u64, n: u64, r: &R) -> Result<TreeProof, LedgerError> {
    tlog_tiles::prove_tree(t, n, r).map_err(tree_err)
}

/// Checks that the tree of size `n` with root `old` is a prefix of the tree of size `t`
/// with root `new`.
pub fn check_consistency(
    p: &TreeProof,
    t: u64,
    new: Hash,
    n: u64,
    old: Hash,
) -> Result<(), LedgerError> {
    tlog_tiles::check_tree(p, t, new, n, old)
        .map_err(|e| LedgerError::ProofFails(format!("tree {n} is not a prefix of tree {t}: {e}")))
}

/// The ledger's signing key: an Ed25519 key and the name (the log's origin) its notes are
/// signed under.
pub struct LedgerKey {
    key: PrivateKey,
    name: String,
    raw_public: [u8; 32],
}

impl LedgerKey {
    /// Wraps `key`; `name` is the origin line of the checkpoints and the note key name
    /// (no spaces, no `+`).
    pub fn new(key: PrivateKey, name: &str) -> Result<LedgerKey, LedgerError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(LedgerError::BadVerifierKey(format!(
                "key name '{name}' (no spaces or '+')"
            )));
        }
        let mut raw_public = [0u8; 32];
        hex::decode_to_slice(key.public().raw_hex(), &mut raw_public)
            .map_err(|e| LedgerError::BadVerifierKey(e.to_string()))?;
        Ok(LedgerKey {
            key,
            name: name.to_string(),
            raw_public,
        })
    }

    /// The origin (and note key name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The note verifier key (`name+hash+base64(0x01 || public key)`), which Go's
    /// `note.NewVerifier` reads.
    pub fn verifier_key(&self) -> String {
        verifier_key(&self.name, &self.raw_public)
    }

    /// A checkpoint of the tree of `size` entries with root `root`, signed.
    pub fn sign_checkpoint(&self, size: u64, root: Hash) -> Result<Vec<u8>, LedgerError> {
        let bad = |reason: String| LedgerError::BadNote { size, reason };
        let cp = Checkpoint::new(&self.name, size, root, "").map_err(|e| bad(e.to_string()))?;
        let mut note = Note::new(&cp.to_bytes(), &[]).map_err(|e| bad(e.to_string()))?;
        note.add_sigs(&[self as &dyn Signer])
            .map_err(|e| bad(e.to_string()))?;
        Ok(note.to_bytes())
    }
}

impl Signer for LedgerKey {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        signed_note::key_id(&self.name, &[&[1u8][..], &self.raw_public].concat())
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.key.sign(msg).to_vec())
    }
}

/// The note verifier key of Ed25519 public key `raw` under `name`.
pub fn verifier_key(name: &str, raw: &[u8; 32]) -> String {
    match ed25519_dalek::VerifyingKey::from_bytes(raw) {
        Ok(k) => signed_note::new_ed25519_verifier_key(name, &k),
        Err(_) => String::new(),
    }
}

/// A checkpoint whose signature verified: its origin, size and root.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Verifies signed checkpoint `note` (expected to cover `size` entries) with verifier key
/// `vkey`; returns what it says.
pub fn verify_checkpoint(
    note: &[u8],
    size: u64,
    vkey: &str,
) -> Result<CheckedCheckpoint, LedgerError> {
    let verifier = StandardVerifier::new(vkey)
        .map_err(|e| LedgerError::BadVerifierKey(format!("'{vkey}' ({e})")))?;
    let key_name = signed_note::Verifier::name(&verifier).to_string();
    let n = Note::from_bytes(note).map_err(|e| LedgerError::BadNote {
        size,
        reason: e.to_string(),
    })?;
    n.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| LedgerError::BadSignature {
            size,
            key: key_name.clone(),
            reason: e.to_string(),
        })?;
    let cp = Checkpoint::from_bytes(n.text()).map_err(|e| LedgerError::BadNote {
        size,
        reason: e.to_string(),
    })?;
    if cp.origin() != key_name {
        return Err(LedgerError::BadNote {
            size,
            reason: format!(
                "its origin '{}' is not the key's name '{key_name}'",
                cp.origin()
            ),
        });
    }
    Ok(CheckedCheckpoint {
        origin: cp.origin().to_string(),
        size: cp.size(),
        root: *cp.hash(),
    })
}

#[cfg(test)]
mod tests;
