//! Maintenance: `df` and `prune` (`doctor` is in its own module).

use crate::error::Result;
use crate::images::blob_referenced;
use crate::util::is_hex;
use crate::Store;
use std::collections::HashSet;

/// One row of `gcr system df`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DfRow {
    pub total: u64,
    pub active: u64,
    pub size: u64,
    pub reclaimable: u64,
}

/// `gcr system df`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DfReport {
    pub images: DfRow,
    pub containers: DfRow,
    pub volumes: DfRow,
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Docker-like `Untagged:`/`Deleted:` lines of removed dangling images.
    pub images: Vec<String>,
    pub blobs_removed: u64,
    pub snapshots_removed: u64,
    pub tmp_removed: u64,
    pub bytes_reclaimed: u64,
}

impl Store {
    /// Disk usage summary (scans container directories).
    pub fn df(&self) -> Result<DfReport> {
        let mut rep = DfReport::default();
        let (total, size, active, active_size): (i64, i64, i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(size), 0),
                    coalesce(sum(id IN (SELECT image_id FROM containers)), 0),
                    coalesce(sum(CASE WHEN id IN (SELECT image_id FROM containers) THEN size ELSE 0 END), 0)
             FROM images",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        rep.images = DfRow {
            total: total as u64,
            active: active as u64,
            size: size as u64,
            reclaimable: (size - active_size).max(0) as u64,
        };
        let mut st = self.conn.prepare("SELECT id, state FROM containers")?;
        let rows: Vec<(String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, state) in rows {
            let sz =
                crate::tmpfiles::tree_size(&self.root.join("containers").join(&id).join("upper"));
            let running = matches!(state.as_str(), "running" | "paused" | "restarting");
            rep.containers.total += 1;
            rep.containers.size += sz;
            if running {
                rep.containers.active += 1;
            } else {
                rep.containers.reclaimable += sz;
            }
        }
        let vols = self.root.join("volumes");
        if let Ok(rd) = std::fs::read_dir(&vols) {
            for e in rd.flatten() {
                rep.volumes.total += 1;
                rep.volumes.size += crate::tmpfiles::tree_size(&e.path());
            }
        }
        Ok(rep)
    }

    /// Removes dangling (untagged, unused) images, unreferenced blobs and snapshots, and temp
    /// files older than an hour.
    pub fn prune(&self) -> Result<PruneReport> {
        self.prune_where(&|_| true)
    }

    /// [`Store::prune`], removing only the dangling images `admit` takes (by config
    /// digest); unreferenced blobs and snapshots go as always.
    pub fn prune_where(&self, admit: &dyn Fn(&str) -> bool) -> Result<PruneReport> {
        let mut rep = PruneReport::default();
        let dangling: Vec<String> = {
            let mut st = self.conn.prepare(
                "SELECT id FROM images WHERE id NOT IN (SELECT image_id FROM tags)
                 AND id NOT IN (SELECT image_id FROM containers)",
            )?;
            let v = st
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            v
        };
        for id in dangling.into_iter().filter(|id| admit(id)) {
            match self.remove_image(&id, false) {
                Ok(lines) => rep.images.extend(lines),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        // Unreferenced blobs and snapshots, decided under the write lock.
        let blob_dir = self.root.join("blobs/sha256");
        let mut dead_dirs = Vec::new();
        self.transaction(|tx| -> Result<()> {
            if let Ok(rd) = std::fs::read_dir(&blob_dir) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !(is_hex(&name) && name.len() == 64)
                        || blob_referenced(tx, &format!("sha256:{name}"))?
                    {
                        continue;
                    }
                    let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                    if std::fs::remove_file(e.path()).is_ok() {
                        rep.blobs_removed += 1;
                        rep.bytes_reclaimed += len;
                    }
                }
            }
            let used: HashSet<String> = {
                // Keys of every chain an image uses, with or without a row yet (an unpacker may
                // have renamed its directory and not yet recorded it).
                let mut st =
                    tx.prepare("SELECT DISTINCT substr(chain_id, 8, 20) FROM image_layers")?;
                let v = st
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                v
            };
            tx.execute(
                "DELETE FROM snapshots WHERE chain_id NOT IN (SELECT chain_id FROM image_layers)",
                [],
            )?;
            if let Ok(rd) = std::fs::read_dir(self.snapshots_dir()) {
                for e in rd.flatten() {
                    let key = e.file_name().to_string_lossy().into_owned();
                    if !used.contains(&key) {
                        if let Some(p) = self.retire_snapshot_dir(&key) {
                            dead_dirs.push(p);
                            rep.snapshots_removed += 1;
                        }
                    }
                }
            }
            Ok(())
        })?;
        for d in dead_dirs {
            rep.bytes_reclaimed += crate::tmpfiles::tree_size(&d);
            let _ = std::fs::remove_dir_all(&d);
        }
        let swept = crate::tmpfiles::sweep(&self.tmp_dir(), true, false);
        rep.tmp_removed = swept.entries.len() as u64;
        rep.bytes_reclaimed += swept.bytes;
        Ok(rep)
    }
}
