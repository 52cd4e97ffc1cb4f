//! `gcr audit mirror --git DIR` and `gcr audit verify --git DIR`: the ledger appended to a
//! git repository (GATOS), so that ordinary git tooling can hold, replicate and diff it.
//! Each run adds one commit on `refs/gcr/audit` holding the entries that are new since the
//! last one (`entries.jsonl`, one canonical entry a line, and the latest checkpoint), with
//! the trailers `Gcr-Index` (the last entry's index), `Gcr-Leaf` (its leaf, hex) and
//! `Gcr-Checkpoint` (size and root of the checkpoint it carries). Fast-forward only: the
//! mirror's tip must name an index and leaf the ledger has, or nothing is written.
//! Written through gix (no `git` process).

use super::latest_checked;
use crate::{Engine, EngineError};
use gix::bstr::ByteSlice;
use std::path::Path;

const REF: &str = "refs/gcr/audit";

fn gix_err(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("git mirror: {what}: {e}"))
}

/// The trailers of a commit message (`Key: value` lines of its last paragraph).
fn trailer<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    let last = message.trim_end().rsplit("\n\n").next()?;
    last.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
}

fn open_or_init(dir: &Path) -> Result<gix::Repository, EngineError> {
    match gix::open(dir) {
        Ok(r) => Ok(r),
        Err(_) if !dir.exists() || dir.read_dir().is_ok_and(|mut d| d.next().is_none()) => {
            gix::init_bare(dir).map_err(|e| gix_err("cannot create the repository", e))
        }
        Err(e) => Err(gix_err(
            &format!("{} is not a git repository", dir.display()),
            e,
        )),
    }
}

/// What a mirror run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MirrorReport {
    /// Entries appended by this run.
    pub added: u64,
    /// Entries the mirror holds now.
    pub size: u64,
    /// The new tip commit (hex), when one was written.
    pub commit: Option<String>,
}

/// One commit of the mirror, as read back.
struct Batch {
    last_index: u64,
    leaf: String,
    entries: Vec<String>,
    parent: Option<gix::ObjectId>,
}

fn read_batch(repo: &gix::Repository, id: gix::ObjectId) -> Result<Batch, EngineError> {
    let commit = repo
        .find_commit(id)
        .map_err(|e| gix_err(&format!("commit {id}"), e))?;
    let message = commit
        .message_raw()
        .map_err(|e| gix_err(&format!("commit {id}"), e))?
        .to_str_lossy()
        .into_owned();
    let bad = |what: &str| EngineError::Internal(format!("git mirror: commit {id} {what}"));
    let last_index = trailer(&message, "Gcr-Index")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("has no Gcr-Index trailer"))?;
    let leaf = trailer(&message, "Gcr-Leaf")
        .ok_or_else(|| bad("has no Gcr-Leaf trailer"))?
        .to_string();
    let tree = commit
        .tree()
        .map_err(|e| gix_err(&format!("tree of {id}"), e))?;
    let entry = tree
        .find_entry("entries.jsonl")
        .ok_or_else(|| bad("has no entries.jsonl"))?;
    let blob = entry
        .object()
        .map_err(|e| gix_err(&format!("entries of {id}"), e))?;
    let entries = blob
        .data
        .to_str_lossy()
        .lines()
        .map(str::to_string)
        .collect();
    let parent = commit.parent_ids().next().map(|p| p.detach());
    Ok(Batch {
        last_index,
        leaf,
        entries,
        parent,
    })
}

impl Engine {
    /// `gcr audit mirror --git DIR`: appends the entries the mirror lacks as one commit.
    pub fn audit_mirror(&self, dir: &Path) -> Result<MirrorReport, EngineError> {
        let store = self.store()?;
        let (note, cp) = latest_checked(store, self.root())?;
        let size = store.ledger_size()?;
        let repo = open_or_init(dir)?;
        let tip = repo
            .try_find_reference(REF)
            .map_err(|e| gix_err("reading refs/gcr/audit", e))?
            .map(|mut r| r.peel_to_id().map(|id| id.detach()))
            .transpose()
            .map_err(|e| gix_err("reading refs/gcr/audit", e))?;
        let from = match tip {
            None => 0,
            Some(id) => {
                let b = read_batch(&repo, id)?;
                let ours = store
                    .ledger_rows(b.last_index, b.last_index + 1)?
                    .pop()
                    .and_then(|r| r.leaf);
                if ours.map(hex::encode).as_deref() != Some(b.leaf.as_str()) {
                    return Err(EngineError::Conflict(format!(
                        "the git mirror in {} diverged from this ledger at entry {} (not a fast-forward); check it with `gcr audit verify --git {}`",
                        dir.display(),
                        b.last_index,
                        dir.display()
                    )));
                }
                b.last_index + 1
            }
        };
        if from >= size {
            return Ok(MirrorReport {
                added: 0,
                size,
                commit: None,
            });
        }
        let rows = store.ledger_rows(from, size)?;
        let mut body = Vec::new();
        let mut last_leaf = String::new();
        for r in &rows {
            let (Some(entry), Some(leaf)) = (&r.entry, r.leaf) else {
                return Err(EngineError::Internal(format!(
                    "ledger entry {} is missing or compacted; mirror before compacting, and run `gcr audit verify`",
                    r.index
                )));
            };
            body.extend_from_slice(entry);
            body.push(b'\n');
            last_leaf = hex::encode(leaf);
        }
        let entries = repo
            .write_blob(&body)
            .map_err(|e| gix_err("writing entries", e))?
            .detach();
        let cpblob = repo
            .write_blob(&note)
            .map_err(|e| gix_err("writing the checkpoint", e))?
            .detach();
        let mut tree = gix::objs::Tree::empty();
        for (name, oid) in [("checkpoint", cpblob), ("entries.jsonl", entries)] {
            tree.entries.push(gix::objs::tree::Entry {
                mode: gix::objs::tree::EntryKind::Blob.into(),
                filename: name.into(),
                oid,
            });
        }
        let tree_id = repo
            .write_object(&tree)
            .map_err(|e| gix_err("writing the tree", e))?
            .detach();
        let message = format!(
            "gcr audit: entries {from}..{}\n\nGcr-Index: {}\nGcr-Leaf: {last_leaf}\nGcr-Checkpoint: {} {}\n",
            size - 1,
            size - 1,
            cp.size,
            super::b64(&cp.root)
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let time = format!("{now} +0000");
        let sig = gix::actor::SignatureRef {
            name: "gcr".into(),
            email: "gcr@localhost".into(),
            time: &time,
        };
        let id = repo
            .commit_as(sig, sig, REF, message, tree_id, tip)
            .map_err(|e| gix_err("writing the commit", e))?;
        Ok(MirrorReport {
            added: size - from,
            size,
            commit: Some(id.to_string()),
        })
    }

    /// `gcr audit verify --git DIR`: every entry of the mirror, commit by commit, against
    /// the ledger (same canonical bytes, contiguous indexes, trailers that match); returns
    /// how many entries it checked, or names the first that differs.
    pub fn audit_verify_mirror(&self, dir: &Path) -> Result<u64, EngineError> {
        let store = self.store()?;
        let repo = gix::open(dir)
            .map_err(|e| gix_err(&format!("{} is not a git repository", dir.display()), e))?;
        let mut next = repo
            .try_find_reference(REF)
            .map_err(|e| gix_err("reading refs/gcr/audit", e))?
            .map(|mut r| r.peel_to_id().map(|id| id.detach()))
            .transpose()
            .map_err(|e| gix_err("reading refs/gcr/audit", e))?;
        let mut batches = Vec::new();
        while let Some(id) = next {
            let b = read_batch(&repo, id)?;
            next = b.parent;
            batches.push(b);
        }
        batches.reverse();
        let mut index = 0u64;
        let fail = |i: u64, why: &str| {
            EngineError::Internal(format!(
                "the git mirror differs from the ledger at entry {i}: {why}"
            ))
        };
        for b in &batches {
            for line in &b.entries {
                let row = store.ledger_rows(index, index + 1)?.pop();
                let Some(row) = row.filter(|r| r.leaf.is_some()) else {
                    return Err(fail(index, "the ledger has no such entry"));
                };
                let leaf = gcr_store::leaf_hash(line.as_bytes());
                if Some(leaf) != row.leaf {
                    return Err(fail(
                        index,
                        "its content does not hash to the ledger's leaf",
                    ));
                }
                // A ledger row changed after it was mirrored no longer reads the same.
                if row.entry.as_ref().is_some_and(|e| e != line.as_bytes()) {
                    return Err(fail(
                        index,
                        "the ledger's entry no longer reads as mirrored",
                    ));
                }
                index += 1;
            }
            if b.last_index + 1 != index {
                return Err(fail(
                    index,
                    &format!(
                        "a commit says it ends at {} but holds entries up to {}",
                        b.last_index,
                        index.saturating_sub(1)
                    ),
                ));
            }
            let ours = store
                .ledger_rows(b.last_index, b.last_index + 1)?
                .pop()
                .and_then(|r| r.leaf)
                .map(hex::encode);
            if ours.as_deref() != Some(b.leaf.as_str()) {
                return Err(fail(
                    b.last_index,
                    "its Gcr-Leaf trailer is not the ledger's leaf",
                ));
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::trailer;

    #[test]
    fn trailers_come_from_the_last_paragraph() {
        let m = "gcr audit: entries 0..4\n\nGcr-Index: 4\nGcr-Leaf: ab\n";
        assert_eq!(trailer(m, "Gcr-Index"), Some("4"));
        assert_eq!(trailer(m, "Gcr-Leaf"), Some("ab"));
        assert_eq!(trailer("Gcr-Index: 4\n\nbody", "Gcr-Index"), None);
    }
}
