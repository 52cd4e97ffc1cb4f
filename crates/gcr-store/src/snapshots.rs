//! Layer snapshots: each layer unpacked once into `snapshots/<key>` (key = first 20 hex chars
//! of its chain ID, so 20+ lowerdirs fit in one overlay mount option), via a temp dir and an
//! atomic no-replace rename so concurrent unpackers never break each other.

use crate::error::{Result, StoreError};
use crate::snapdigest::TreeSum;
use crate::util::{digest_hex, HashReader};
use crate::Store;
use rusqlite::params;
use std::path::{Path, PathBuf};

/// Length of a snapshot directory name.
const KEY_LEN: usize = 20;

pub(crate) fn snapshot_key(chain_id: &str) -> Result<String> {
    Ok(digest_hex(chain_id)?[..KEY_LEN].to_string())
}

/// `sha256:` and 64 characters: a full image id, to look up directly.
pub(crate) fn is_full_id(s: &str) -> bool {
    s.len() == 71 && s.starts_with("sha256:")
}

impl Store {
    /// Returns the overlay lowerdirs of an image, top layer FIRST, unpacking missing layers.
    /// When every snapshot exists this is one indexed query and no filesystem access.
    pub fn prepare_rootfs(&self, image_id: &str) -> Result<Vec<PathBuf>> {
        // Full ids skip resolution: the fast path is then one indexed query.
        let full = is_full_id(image_id);
        let id = if full {
            image_id.to_string()
        } else {
            self.resolve_image(image_id)?.id
        };
        let rows: Vec<(String, String, String, Option<String>)> = {
            let mut st = self.conn.prepare_cached(
                "SELECT il.digest, l.diff_id, il.chain_id, s.key
                 FROM image_layers il JOIN layers l ON l.digest = il.digest
                 LEFT JOIN snapshots s ON s.chain_id = il.chain_id
                 WHERE il.image_id = ?1 ORDER BY il.idx DESC",
            )?;
            let v = st
                .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?;
            v
        };
        if rows.is_empty() && full {
            // Unknown id (or an image without layers): resolve for a precise error.
            self.resolve_image(image_id)?;
        }
        let dir = self.snapshots_dir();
        let mut out = Vec::with_capacity(rows.len());
        for (digest, diff_id, chain, key) in rows {
            let key = match key {
                Some(k) => k,
                None => self.unpack_snapshot(&digest, &diff_id, &chain)?,
            };
            out.push(dir.join(key));
        }
        Ok(out)
    }

    /// Unpacks one layer blob into its snapshot directory (if nobody else did) and records it.
    pub(crate) fn unpack_snapshot(
        &self,
        digest: &str,
        diff_id: &str,
        chain: &str,
    ) -> Result<String> {
        let key = snapshot_key(chain)?;
        let dest = self.snapshots_dir().join(&key);
        let mut sum = None;
        if !dest.exists() {
            // A run killed while unpacking left its copy: it goes first (a retry would
            // otherwise add its own, and only an import or `doctor --repair` removed it).
            self.remove_stale_temp();
            let tmp = tempfile::Builder::new()
                .prefix(&crate::tmpfiles::prefix("snap"))
                .tempdir_in(self.tmp_dir())
                .map_err(|e| StoreError::io("cannot create a temp dir in", self.tmp_dir(), e))?;
            let target = tmp.path().join("d");
            std::fs::create_dir(&target)
                .map_err(|e| StoreError::io("cannot create", &target, e))?;
            let blob = self.open_blob(digest)?;
            let mut hr = HashReader::new(
                crate::util::maybe_gunzip(std::io::BufReader::new(blob)).map_err(|e| {
                    StoreError::Read {
                        what: format!("layer {digest}"),
                        source: e,
                    }
                })?,
            );
            crate::unpack::unpack_layer(&mut hr, &target)?;
            // Drain trailing padding so the digest covers the whole tar stream.
            std::io::copy(&mut hr, &mut std::io::sink()).map_err(|e| StoreError::Read {
                what: format!("layer {digest}"),
                source: e,
            })?;
            let actual = hr.digest();
            if actual != diff_id {
                return Err(StoreError::DigestMismatch {
                    expected: diff_id.to_string(),
                    actual,
                });
            }
            // Summed before it is visible, so the digest is of what was unpacked. A tree
            // that cannot be read back (a non-root unpacker meeting a mode 000 file) just
            // goes without one.
            sum = crate::snapdigest::digest_tree(&target).ok();
            // If another unpacker won the race, ours is discarded with the temp dir.
            move_into_place(&target, &dest)?;
        }
        let size = self
            .blob_path(digest)?
            .metadata()
            .map(|m| m.len())
            .unwrap_or(0);
        self.record_snapshot(chain, &key, diff_id, size, sum.as_ref())?;
        Ok(key)
    }

    /// Records snapshot `key` of `chain` (unless recorded) with what it looked like.
    pub(crate) fn record_snapshot(
        &self,
        chain: &str,
        key: &str,
        diff_id: &str,
        size: u64,
        sum: Option<&TreeSum>,
    ) -> Result<()> {
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO snapshots(chain_id, key, diff_id, size, created_at, tree_digest, entries, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT DO UPDATE SET tree_digest = excluded.tree_digest,
                   entries = excluded.entries, bytes = excluded.bytes
                 WHERE tree_digest IS NULL AND excluded.tree_digest IS NOT NULL",
                params![
                    chain,
                    key,
                    diff_id,
                    size as i64,
                    crate::util::now_ns() / 1_000_000_000,
                    sum.map(|s| s.digest.as_str()),
                    sum.map(|s| s.entries as i64),
                    sum.map(|s| s.bytes as i64)
                ],
            )
        })?;
        Ok(())
    }

    /// Moves a snapshot directory aside (into `tmp/`) so it can be deleted outside the
    /// transaction; returns the new path.
    pub(crate) fn retire_snapshot_dir(&self, key: &str) -> Option<PathBuf> {
        let from = self.snapshots_dir().join(key);
        let to = self
            .tmp_dir()
            .join(format!("dead-{key}-{}", crate::util::now_ns()));
        std::fs::rename(&from, &to).ok().map(|_| to)
    }
}

/// Renames a finished snapshot directory to `dest` unless a snapshot is already there
/// (another process made the same one first; `dir` is then left for its owner to drop).
pub(crate) fn move_into_place(dir: &Path, dest: &Path) -> Result<()> {
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        dir,
        rustix::fs::CWD,
        dest,
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        Ok(()) | Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => Ok(()),
        Err(e) => Err(StoreError::io("cannot move snapshot into", dest, e.into())),
    }
}
