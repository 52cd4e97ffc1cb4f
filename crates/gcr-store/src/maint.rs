//! Maintenance: `doctor` (re-hash every blob, check database ↔ disk), `df` and `prune`.

use crate::error::{Result, StoreError};
use crate::images::blob_referenced;
use crate::util::{is_hex, HashReader};
use crate::Store;
use std::collections::HashSet;
use std::path::Path;

/// Problems found by [`Store::doctor`], one sentence each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorReport {
    pub problems: Vec<String>,
    pub blobs_checked: u64,
    pub images_checked: u64,
}

impl DoctorReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

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

fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

impl Store {
    /// Verifies every blob digest and the database against the disk.
    pub fn doctor(&self) -> Result<DoctorReport> {
        let mut rep = DoctorReport::default();
        let dir = self.root.join("blobs/sha256");
        let rd = std::fs::read_dir(&dir).map_err(|e| StoreError::io("cannot list", &dir, e))?;
        let mut names: Vec<_> = rd.flatten().collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let name = e.file_name().to_string_lossy().into_owned();
            if !(is_hex(&name) && name.len() == 64) {
                rep.problems.push(format!(
                    "stray file '{}' in the blob store; remove it",
                    e.path().display()
                ));
                continue;
            }
            rep.blobs_checked += 1;
            let mut hr = match std::fs::File::open(e.path()) {
                Ok(f) => HashReader::new(std::io::BufReader::with_capacity(256 * 1024, f)),
                Err(err) => {
                    rep.problems
                        .push(format!("blob sha256:{name} cannot be read: {err}"));
                    continue;
                }
            };
            if let Err(err) = std::io::copy(&mut hr, &mut std::io::sink()) {
                rep.problems
                    .push(format!("blob sha256:{name} cannot be read: {err}"));
                continue;
            }
            let actual = hr.digest();
            if actual != format!("sha256:{name}") {
                rep.problems.push(format!(
                    "blob sha256:{name} is corrupt (content hashes to {actual})"
                ));
            }
        }
        let images: Vec<(String, String, String)> = {
            let mut st = self
                .conn
                .prepare("SELECT id, manifest_digest, config FROM images ORDER BY id")?;
            let v = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            v
        };
        for (id, mdigest, config) in &images {
            rep.images_checked += 1;
            if serde_json::from_str::<serde_json::Value>(config).is_err() {
                rep.problems.push(format!(
                    "image {id}: its config in the database is not valid JSON"
                ));
            }
            for (what, d) in [("config", id), ("manifest", mdigest)] {
                match self.read_blob(d) {
                    Err(_) => rep
                        .problems
                        .push(format!("image {id}: {what} blob {d} is missing")),
                    Ok(b) if serde_json::from_slice::<serde_json::Value>(&b).is_err() => rep
                        .problems
                        .push(format!("image {id}: {what} blob {d} is not valid JSON")),
                    Ok(_) => {}
                }
            }
            for crate::LayerInfo { digest, .. } in self.image_layers(id)? {
                if !self.blob_path(&digest)?.exists() {
                    rep.problems
                        .push(format!("image {id}: layer blob {digest} is missing"));
                }
            }
        }
        let mut st = self
            .conn
            .prepare("SELECT chain_id, key FROM snapshots ORDER BY key")?;
        let snaps: Vec<(String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (chain, key) in snaps {
            if !self.snapshots_dir().join(&key).is_dir() {
                rep.problems.push(format!(
                    "snapshot {key} (chain {chain}) is recorded but its directory is missing; run 'gcr system prune'"
                ));
            }
        }
        Ok(rep)
    }

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
            let sz = dir_size(&self.root.join("containers").join(&id).join("upper"));
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
                rep.volumes.size += dir_size(&e.path());
            }
        }
        Ok(rep)
    }

    /// Removes dangling (untagged, unused) images, unreferenced blobs and snapshots, and temp
    /// files older than an hour.
    pub fn prune(&self) -> Result<PruneReport> {
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
        for id in dangling {
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
            rep.bytes_reclaimed += dir_size(&d);
            let _ = std::fs::remove_dir_all(&d);
        }
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        if let Ok(rd) = std::fs::read_dir(self.tmp_dir()) {
            for e in rd.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| t < cutoff)
                    .unwrap_or(false);
                let dead = e.file_name().to_string_lossy().starts_with("dead-");
                if old || dead {
                    let p = e.path();
                    rep.bytes_reclaimed += dir_size(&p);
                    let r = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                    if r.is_ok() {
                        rep.tmp_removed += 1;
                    }
                }
            }
        }
        Ok(rep)
    }
}
