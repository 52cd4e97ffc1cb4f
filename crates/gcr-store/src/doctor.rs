//! `gcr doctor`: re-hashes every blob, checks the database against the disk, checks each
//! snapshot's entry count and byte total (and with `--snapshots` its digest, see
//! `snapdigest`), and finds what killed commands left in `tmp/` and orphaned snapshot
//! directories. With `--repair` it fixes what it safely can: stale temp files, orphaned
//! snapshot directories, records of missing snapshots, damaged snapshots no container uses
//! (they are unpacked again from their verified blob on next use). Everything else is
//! listed as a problem.

use crate::error::{Result, StoreError};
use crate::snapdigest::{count_tree, digest_tree};
use crate::util::is_hex;
use crate::Store;
use std::collections::HashSet;

/// What `doctor` should do besides the default checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DoctorOptions {
    /// Re-hash every snapshot's contents against the digest recorded when it was made.
    pub snapshots: bool,
    /// Fix what can be fixed safely.
    pub repair: bool,
}

/// Problems found by [`Store::doctor`], one sentence each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorReport {
    /// What is wrong (after `--repair`: what is still wrong).
    pub problems: Vec<String>,
    /// What `--repair` fixed, one sentence each.
    pub repaired: Vec<String>,
    pub blobs_checked: u64,
    pub images_checked: u64,
    pub snapshots_checked: u64,
    /// Snapshots made by an older gcr whose digest `--snapshots` recorded (trusted as found).
    pub digests_recorded: u64,
}

impl DoctorReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A snapshot row as doctor reads it.
struct Snap {
    chain: String,
    key: String,
    digest: Option<String>,
    entries: Option<i64>,
    bytes: Option<i64>,
}

impl Store {
    /// Verifies every blob digest and the database against the disk (see the module docs).
    pub fn doctor(&self) -> Result<DoctorReport> {
        self.doctor_with(DoctorOptions::default())
    }

    /// [`Store::doctor`] with options.
    pub fn doctor_with(&self, opts: DoctorOptions) -> Result<DoctorReport> {
        let mut rep = DoctorReport::default();
        self.check_blobs(&mut rep)?;
        self.check_images(&mut rep)?;
        self.check_snapshots(opts, &mut rep)?;
        self.check_orphans(opts, &mut rep)?;
        let tmp = crate::tmpfiles::sweep(&self.tmp_dir(), true, !opts.repair);
        if !tmp.entries.is_empty() {
            let what = format!(
                "{} stale temporary file(s) in {} ({} bytes) left by killed imports, pulls or builds",
                tmp.entries.len(),
                self.tmp_dir().display(),
                tmp.bytes
            );
            if opts.repair {
                rep.repaired.push(format!("removed {what}"));
            } else {
                rep.problems
                    .push(format!("{what}; run 'gcr doctor --repair'"));
            }
        }
        Ok(rep)
    }

    fn check_blobs(&self, rep: &mut DoctorReport) -> Result<()> {
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
            let actual = match std::fs::File::open(e.path())
                .and_then(|f| crate::blobs::sha256_of_blob(&f))
            {
                Ok(d) => d,
                Err(err) => {
                    rep.problems
                        .push(format!("blob sha256:{name} cannot be read: {err}"));
                    continue;
                }
            };
            if actual != format!("sha256:{name}") {
                rep.problems.push(format!(
                    "blob sha256:{name} is corrupt (content hashes to {actual})"
                ));
            }
        }
        Ok(())
    }

    fn check_images(&self, rep: &mut DoctorReport) -> Result<()> {
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
            for crate::LayerInfo {
                digest, media_type, ..
            } in self.image_layers(id)?
            {
                let path = self.blob_path(&digest)?;
                let mut head = [0u8; 4];
                let read = std::fs::File::open(&path)
                    .and_then(|mut f| std::io::Read::read(&mut f, &mut head));
                let Ok(n) = read else {
                    rep.problems
                        .push(format!("image {id}: layer blob {digest} is missing"));
                    continue;
                };
                let holds = compression_of(&head[..n]);
                let says = labelled_compression(&media_type);
                if says.is_some_and(|s| s != holds) {
                    rep.problems.push(format!(
                        "image {id}: layer blob {digest} is labelled {media_type} but holds a {holds} tar; remove the image and load or pull it again"
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_snapshots(&self, opts: DoctorOptions, rep: &mut DoctorReport) -> Result<()> {
        let snaps: Vec<Snap> = {
            let mut st = self.conn.prepare(
                "SELECT chain_id, key, tree_digest, entries, bytes FROM snapshots ORDER BY key",
            )?;
            let v = st
                .query_map([], |r| {
                    Ok(Snap {
                        chain: r.get(0)?,
                        key: r.get(1)?,
                        digest: r.get(2)?,
                        entries: r.get(3)?,
                        bytes: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            v
        };
        for s in snaps {
            rep.snapshots_checked += 1;
            let dir = self.snapshots_dir().join(&s.key);
            if !dir.is_dir() {
                let what = format!(
                    "snapshot {} (chain {}) is recorded but its directory is missing",
                    s.key, s.chain
                );
                if opts.repair {
                    self.conn
                        .execute("DELETE FROM snapshots WHERE chain_id = ?1", [&s.chain])?;
                    rep.repaired
                        .push(format!("forgot {what} (it is unpacked again on next use)"));
                } else {
                    rep.problems
                        .push(format!("{what}; run 'gcr doctor --repair'"));
                }
                continue;
            }
            let damage = if opts.snapshots {
                match (digest_tree(&dir), &s.digest) {
                    (Err(e), _) => Some(format!("cannot be read ({e})")),
                    (Ok(now), None) => {
                        self.conn.execute(
                            "UPDATE snapshots SET tree_digest = ?2, entries = ?3, bytes = ?4 WHERE chain_id = ?1",
                            rusqlite::params![s.chain, now.digest, now.entries as i64, now.bytes as i64],
                        )?;
                        rep.digests_recorded += 1;
                        None
                    }
                    (Ok(now), Some(d)) if now.digest != *d => Some(format!(
                        "has changed since it was unpacked (its contents hash to {}, recorded {d})",
                        now.digest
                    )),
                    (Ok(_), Some(_)) => None,
                }
            } else {
                match (count_tree(&dir), s.entries, s.bytes) {
                    (Err(e), _, _) => Some(format!("cannot be read ({e})")),
                    (Ok(now), Some(n), Some(b))
                        if now.entries as i64 != n || now.bytes as i64 != b =>
                    {
                        Some(format!(
                            "has changed since it was unpacked ({} entries and {} bytes, recorded {n} and {b})",
                            now.entries, now.bytes
                        ))
                    }
                    _ => None,
                }
            };
            if let Some(damage) = damage {
                self.damaged_snapshot(&s, &damage, opts.repair, rep)?;
            }
        }
        Ok(())
    }

    /// Reports a damaged snapshot or, with `repair`, drops it so that it is unpacked again
    /// from its (verified) layer blob on next use, unless containers still use it.
    fn damaged_snapshot(
        &self,
        s: &Snap,
        damage: &str,
        repair: bool,
        rep: &mut DoctorReport,
    ) -> Result<()> {
        let what = format!("snapshot {} (chain {}) {damage}", s.key, s.chain);
        if !repair {
            rep.problems
                .push(format!("{what}; run 'gcr doctor --repair'"));
            return Ok(());
        }
        let users: Vec<String> = {
            let mut st = self.conn.prepare(
                "SELECT DISTINCT c.name FROM containers c
                 JOIN image_layers il ON il.image_id = c.image_id
                 WHERE il.chain_id = ?1 ORDER BY c.name",
            )?;
            let v = st
                .query_map([&s.chain], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            v
        };
        if !users.is_empty() {
            rep.problems.push(format!(
                "{what}; it is used by container(s) {}: remove them, then run 'gcr doctor --repair' again",
                users.join(", ")
            ));
            return Ok(());
        }
        let retired = self.transaction(|tx| -> Result<_> {
            tx.execute("DELETE FROM snapshots WHERE chain_id = ?1", [&s.chain])?;
            Ok(self.retire_snapshot_dir(&s.key))
        })?;
        if let Some(p) = retired {
            let _ = std::fs::remove_dir_all(&p);
        }
        rep.repaired
            .push(format!("removed {what} (it is unpacked again on next use)"));
        Ok(())
    }

    /// Directories in `snapshots/` that no image uses (what prune would remove).
    fn check_orphans(&self, opts: DoctorOptions, rep: &mut DoctorReport) -> Result<()> {
        let mut dead = Vec::new();
        self.transaction(|tx| -> Result<()> {
            let used: HashSet<String> = {
                let mut st =
                    tx.prepare("SELECT DISTINCT substr(chain_id, 8, 20) FROM image_layers")?;
                let v = st
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                v
            };
            let Ok(rd) = std::fs::read_dir(self.snapshots_dir()) else {
                return Ok(());
            };
            let mut keys: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|k| !used.contains(k))
                .collect();
            keys.sort();
            for key in keys {
                let what = format!(
                    "snapshot directory {} belongs to no image",
                    self.snapshots_dir().join(&key).display()
                );
                if !opts.repair {
                    rep.problems
                        .push(format!("{what}; run 'gcr doctor --repair'"));
                    continue;
                }
                tx.execute(
                    "DELETE FROM snapshots WHERE key = ?1 AND chain_id NOT IN (SELECT chain_id FROM image_layers)",
                    [&key],
                )?;
                if let Some(p) = self.retire_snapshot_dir(&key) {
                    dead.push(p);
                    rep.repaired.push(format!("removed {what}"));
                }
            }
            Ok(())
        })?;
        for d in dead {
            let _ = std::fs::remove_dir_all(&d);
        }
        Ok(())
    }
}

/// What a layer blob starting with `head` is: "gzip", "zstd" or "plain".
fn compression_of(head: &[u8]) -> &'static str {
    if crate::util::is_gzip(head) {
        "gzip"
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd"
    } else {
        "plain"
    }
}

/// The compression a layer media type promises (None: not a layer type doctor knows).
fn labelled_compression(media_type: &str) -> Option<&'static str> {
    if media_type.ends_with("gzip") {
        Some("gzip")
    } else if media_type.ends_with("zstd") {
        Some("zstd")
    } else if media_type.ends_with(".tar") || media_type.ends_with("diff.tar") {
        Some("plain")
    } else {
        None
    }
}
