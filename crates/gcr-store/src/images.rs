//! Image records: registration (one transaction), listing, resolution of names / ids /
//! digests by indexed queries, tags, history and removal with reference counting.

use crate::error::{Result, StoreError};
use crate::util::{digest_hex, familiar, is_hex, parse_reference, parse_rfc3339, sha256_digest};
use crate::{image_event, Store};
use rusqlite::{params, Connection, OptionalExtension};

/// One row of `gcr images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// `sha256:<hex>` of the config.
    pub id: String,
    /// Full normalized references, sorted.
    pub repo_tags: Vec<String>,
    /// Unix seconds from the config's `created`.
    pub created: Option<i64>,
    /// Bytes of config + layer blobs.
    pub size: u64,
}

/// An image found by [`Store::resolve_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    pub id: String,
    pub manifest_digest: String,
    pub manifest_media_type: String,
}

/// One `gcr history` line, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub created: Option<i64>,
    pub created_by: String,
    pub comment: String,
    pub empty_layer: bool,
    /// Size of the layer blob (0 for empty layers).
    pub size: u64,
}

/// One layer of an image, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Blob digest (compressed, as in the manifest).
    pub digest: String,
    pub diff_id: String,
    pub media_type: String,
    /// Blob size in bytes.
    pub size: u64,
    pub chain_id: String,
}

/// A layer to register with an image.
#[derive(Debug, Clone)]
pub struct NewLayer {
    pub digest: String,
    pub diff_id: String,
    pub media_type: String,
    pub size: u64,
}

impl From<LayerInfo> for NewLayer {
    /// A layer of a stored image, registered again (for another image).
    fn from(l: LayerInfo) -> NewLayer {
        NewLayer {
            digest: l.digest,
            diff_id: l.diff_id,
            media_type: l.media_type,
            size: l.size,
        }
    }
}

/// An image whose blobs are all in the CAS, ready to be recorded.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub config: Vec<u8>,
    pub layers: Vec<NewLayer>,
    /// Full normalized references.
    pub tags: Vec<String>,
}

impl NewImage {
    pub fn id(&self) -> String {
        sha256_digest(&self.config)
    }
}

/// The OCI chain ids of a list of diff ids.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let c = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(c);
    }
    out
}

impl Store {
    /// Records images whose manifest, config and layer blobs are already in the CAS (see
    /// [`Store::put_blob`]), in one transaction, with an image event named `action`
    /// (e.g. `build`, `pull`). Tags must be full normalized references. Returns the ids.
    pub fn register_images(&self, images: &[NewImage], action: &str) -> Result<Vec<String>> {
        register(self, images, action)
    }
}

/// Records images in one transaction; every blob must already be in the CAS.
/// What killed imports, pulls and builds left in `tmp/` goes first (a retry would
/// otherwise add its own copy).
pub(crate) fn register(store: &Store, images: &[NewImage], action: &str) -> Result<Vec<String>> {
    store.remove_stale_temp();
    store.transaction(|tx| {
        let mut ids = Vec::new();
        for img in images {
            let id = img.id();
            for d in [&img.manifest_digest, &id].into_iter().chain(img.layers.iter().map(|l| &l.digest)) {
                if !store.blob_path(d)?.exists() {
                    return Err(StoreError::BlobMissing(d.clone()));
                }
            }
            let cfg_text = String::from_utf8(img.config.clone())
                .map_err(|_| StoreError::bad_json(format!("image config {id}"), "it is not UTF-8"))?;
            let cfg: serde_json::Value = serde_json::from_str(&cfg_text)
                .map_err(|e| StoreError::bad_json(format!("image config {id}"), e))?;
            let created = cfg.get("created").and_then(|v| v.as_str()).and_then(parse_rfc3339);
            let os = cfg.get("os").and_then(|v| v.as_str()).unwrap_or("");
            let arch = cfg.get("architecture").and_then(|v| v.as_str()).unwrap_or("");
            let size = img.config.len() as u64 + img.layers.iter().map(|l| l.size).sum::<u64>();
            tx.execute(
                "INSERT INTO images(id, manifest_digest, manifest_media_type, created, added_at, size, os, arch, config)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest,
                   manifest_media_type = excluded.manifest_media_type",
                params![
                    id,
                    img.manifest_digest,
                    img.manifest_media_type,
                    created,
                    crate::util::now_ns() / 1_000_000_000,
                    size as i64,
                    os,
                    arch,
                    cfg_text
                ],
            )?;
            tx.execute("DELETE FROM image_layers WHERE image_id = ?1", [&id])?;
            let diff_ids: Vec<String> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
            for (i, (l, chain)) in img.layers.iter().zip(chain_ids(&diff_ids)).enumerate() {
                tx.execute(
                    "INSERT OR IGNORE INTO layers(digest, diff_id, media_type, size) VALUES (?1, ?2, ?3, ?4)",
                    params![l.digest, l.diff_id, l.media_type, l.size as i64],
                )?;
                tx.execute(
                    "INSERT INTO image_layers(image_id, idx, digest, chain_id) VALUES (?1, ?2, ?3, ?4)",
                    params![id, i as i64, l.digest, chain],
                )?;
            }
            image_event(tx, action, &id, img.tags.first().map(String::as_str))?;
            for t in &img.tags {
                tx.execute("INSERT OR REPLACE INTO tags(ref, image_id) VALUES (?1, ?2)", params![t, id])?;
            }
            ids.push(id);
        }
        Ok(ids)
    })
}

fn resolved(conn: &Connection, sql: &str, arg: &str) -> Result<Vec<ResolvedImage>> {
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map([arg], |r| {
        Ok(ResolvedImage {
            id: r.get(0)?,
            manifest_digest: r.get(1)?,
            manifest_media_type: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl Store {
    /// All images with their tags, newest first (two table scans, no sort of joined rows).
    pub fn list_images(&self) -> Result<Vec<ImageSummary>> {
        let mut tags: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        {
            let mut st = self.conn.prepare_cached("SELECT image_id, ref FROM tags")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                tags.entry(r.get(0)?).or_default().push(r.get(1)?);
            }
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT id, created, size FROM images ORDER BY created DESC, id")?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let mut repo_tags = tags.remove(&id).unwrap_or_default();
            repo_tags.sort();
            out.push(ImageSummary {
                id,
                created: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                repo_tags,
            });
        }
        Ok(out)
    }

    /// Finds an image by name (`busybox`, `host/ns/app:tag`, `name@sha256:…`), full or short
    /// (≥ 4 hex) id with or without `sha256:`, or manifest digest. Indexed queries only.
    pub fn resolve_image(&self, s: &str) -> Result<ResolvedImage> {
        const BY_ID: &str =
            "SELECT id, manifest_digest, manifest_media_type FROM images WHERE id = ?1";
        const BY_MANIFEST: &str =
            "SELECT id, manifest_digest, manifest_media_type FROM images WHERE manifest_digest = ?1 LIMIT 1";
        const BY_TAG: &str = "SELECT i.id, i.manifest_digest, i.manifest_media_type
             FROM tags t JOIN images i ON i.id = t.image_id WHERE t.ref = ?1";
        let not_found = || StoreError::ImageNotFound(s.to_string());
        let hexpart = s.strip_prefix("sha256:").unwrap_or(s);
        let looks_id = is_hex(hexpart) && hexpart.len() >= 4;
        if s.starts_with("sha256:") || (looks_id && hexpart.len() == 64) {
            if !looks_id || hexpart.len() > 64 {
                return Err(not_found());
            }
            if hexpart.len() == 64 {
                let full = format!("sha256:{hexpart}");
                if let Some(r) = resolved(&self.conn, BY_ID, &full)?.pop() {
                    return Ok(r);
                }
                return resolved(&self.conn, BY_MANIFEST, &full)?
                    .pop()
                    .ok_or_else(not_found);
            }
            return self.resolve_prefix(s, hexpart);
        }
        if let Ok(r) = parse_reference(s) {
            if let Some(d) = &r.digest {
                let found = resolved(&self.conn, BY_MANIFEST, d)?.pop();
                return found.ok_or_else(not_found);
            }
            if let Some(img) = resolved(&self.conn, BY_TAG, &r.tagged())?.pop() {
                return Ok(img);
            }
        }
        if looks_id {
            return self.resolve_prefix(s, hexpart);
        }
        Err(not_found())
    }

    fn resolve_prefix(&self, s: &str, hexpart: &str) -> Result<ResolvedImage> {
        let lo = format!("sha256:{hexpart}");
        let hi = format!("sha256:{hexpart}g");
        let mut st = self.conn.prepare_cached(
            "SELECT id, manifest_digest, manifest_media_type FROM images WHERE id >= ?1 AND id < ?2 LIMIT 2",
        )?;
        let mut rows = st
            .query_map([&lo, &hi], |r| {
                Ok(ResolvedImage {
                    id: r.get(0)?,
                    manifest_digest: r.get(1)?,
                    manifest_media_type: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        match rows.len() {
            0 => Err(StoreError::ImageNotFound(s.to_string())),
            1 => Ok(rows.remove(0)),
            _ => Err(StoreError::AmbiguousId(s.to_string())),
        }
    }

    /// The image config JSON bytes (exactly as stored) of an image named any way.
    pub fn image_config(&self, image: &str) -> Result<Vec<u8>> {
        let config = |id: &str| -> Result<Option<String>> {
            Ok(self
                .conn
                .prepare_cached("SELECT config FROM images WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?)
        };
        // A full id is one indexed query (as in prepare_rootfs); other names resolve first.
        if crate::snapshots::is_full_id(image) {
            if let Some(c) = config(image)? {
                return Ok(c.into_bytes());
            }
        }
        let id = self.resolve_image(image)?.id;
        config(&id)?
            .map(String::into_bytes)
            .ok_or_else(|| StoreError::ImageNotFound(image.to_string()))
    }

    /// The manifest bytes (byte-identical to the source) of an image named any way.
    pub fn image_manifest(&self, image: &str) -> Result<Vec<u8>> {
        let r = self.resolve_image(image)?;
        self.read_blob(&r.manifest_digest)
    }

    /// Full normalized tags of an image id.
    pub fn image_tags(&self, id: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT ref FROM tags WHERE image_id = ?1 ORDER BY ref")?;
        let rows = st.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// Layers of an image id, bottom first.
    pub fn image_layers(&self, id: &str) -> Result<Vec<LayerInfo>> {
        let mut st = self.conn.prepare_cached(
            "SELECT l.digest, l.diff_id, l.media_type, l.size, il.chain_id
             FROM image_layers il JOIN layers l ON l.digest = il.digest
             WHERE il.image_id = ?1 ORDER BY il.idx",
        )?;
        let rows = st.query_map([id], |r| {
            Ok(LayerInfo {
                digest: r.get(0)?,
                diff_id: r.get(1)?,
                media_type: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
                chain_id: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The image history, newest first, with layer sizes.
    pub fn history(&self, image: &str) -> Result<Vec<HistoryEntry>> {
        let id = self.resolve_image(image)?.id;
        let cfg: serde_json::Value = serde_json::from_slice(&self.image_config(&id)?)
            .map_err(|e| StoreError::bad_json(format!("image config {id}"), e))?;
        let layers = self.image_layers(&id)?;
        let mut sizes = layers.iter().map(|l| l.size);
        let mut out = Vec::new();
        match cfg.get("history").and_then(|h| h.as_array()) {
            Some(h) if !h.is_empty() => {
                for e in h {
                    let empty = e
                        .get("empty_layer")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(false);
                    let s = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                    out.push(HistoryEntry {
                        created: e
                            .get("created")
                            .and_then(|v| v.as_str())
                            .and_then(parse_rfc3339),
                        created_by: s("created_by"),
                        comment: s("comment"),
                        empty_layer: empty,
                        size: if empty { 0 } else { sizes.next().unwrap_or(0) },
                    });
                }
            }
            _ => {
                for l in &layers {
                    out.push(HistoryEntry {
                        created: None,
                        created_by: String::new(),
                        comment: String::new(),
                        empty_layer: false,
                        size: l.size,
                    });
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Tags the image named `src` as `new_ref`; returns the normalized new reference.
    pub fn tag(&self, src: &str, new_ref: &str) -> Result<String> {
        let img = self.resolve_image(src)?;
        let r = parse_reference(new_ref)?;
        if r.digest.is_some() {
            return Err(StoreError::InvalidReference {
                reference: new_ref.to_string(),
                reason: "a tag cannot contain a digest; use name:tag".into(),
            });
        }
        let full = r.tagged();
        self.transaction(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO tags(ref, image_id) VALUES (?1, ?2)",
                params![full, img.id],
            )?;
            image_event(tx, "tag", &img.id, Some(&full))
        })?;
        Ok(full)
    }

    /// Removes a tag (the image stays, possibly dangling).
    pub fn untag(&self, reference: &str) -> Result<()> {
        let full = parse_reference(reference)?.tagged();
        self.transaction(|tx| {
            let id: Option<String> = tx
                .query_row("SELECT image_id FROM tags WHERE ref = ?1", [&full], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(id) = id else {
                return Err(StoreError::TagNotFound(reference.to_string()));
            };
            tx.execute("DELETE FROM tags WHERE ref = ?1", [&full])?;
            image_event(tx, "untag", &id, Some(&full))
        })
    }

    /// `gcr rmi`: untags, and deletes the image when no tag remains, freeing blobs and
    /// snapshots no other image uses. Returns Docker-like `Untagged:`/`Deleted:` lines.
    pub fn remove_image(&self, image: &str, force: bool) -> Result<Vec<String>> {
        let img = self.resolve_image(image)?;
        let by_tag = parse_reference(image)
            .ok()
            .filter(|r| r.digest.is_none())
            .map(|r| r.tagged());
        let mut doomed_snapshots = Vec::new();
        let lines = self.transaction(|tx| -> Result<Vec<String>> {
            let mut lines = Vec::new();
            let tags = self.image_tags(&img.id)?;
            let by_tag = by_tag.filter(|t| tags.contains(t));
            if let (Some(t), true) = (&by_tag, tags.len() > 1) {
                tx.execute("DELETE FROM tags WHERE ref = ?1", [t])?;
                image_event(tx, "untag", &img.id, Some(t))?;
                return Ok(vec![format!("Untagged: {}", familiar(t))]);
            }
            if by_tag.is_none() && tags.len() > 1 && !force {
                return Err(StoreError::MultipleTags(image.to_string()));
            }
            let users: Vec<String> = {
                let mut st =
                    tx.prepare_cached("SELECT name FROM containers WHERE image_id = ?1")?;
                let v = st
                    .query_map([&img.id], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                v
            };
            if !users.is_empty() && !force {
                return Err(StoreError::ImageInUse {
                    image: image.to_string(),
                    containers: users.join(", "),
                });
            }
            for t in &tags {
                tx.execute("DELETE FROM tags WHERE ref = ?1", [t])?;
                image_event(tx, "untag", &img.id, Some(t))?;
                lines.push(format!("Untagged: {}", familiar(t)));
            }
            if !users.is_empty() {
                // Forced while containers use it: the image stays (untagged) for them.
                return Ok(lines);
            }
            let layers = self.image_layers(&img.id)?;
            tx.execute("DELETE FROM image_layers WHERE image_id = ?1", [&img.id])?;
            tx.execute("DELETE FROM images WHERE id = ?1", [&img.id])?;
            image_event(tx, "delete", &img.id, None)?;
            lines.push(format!("Deleted: {}", img.id));
            let mut blobs = vec![img.id.clone(), img.manifest_digest.clone()];
            crate::referrers::remove_for_subject(tx, &img.manifest_digest, &mut blobs)?;
            for LayerInfo { digest, .. } in &layers {
                let used: bool = tx.query_row(
                    "SELECT EXISTS(SELECT 1 FROM image_layers WHERE digest = ?1)",
                    [digest],
                    |r| r.get(0),
                )?;
                if !used {
                    tx.execute("DELETE FROM layers WHERE digest = ?1", [digest])?;
                    blobs.push(digest.clone());
                }
            }
            for b in blobs {
                if !blob_referenced(tx, &b)? {
                    if let Ok(p) = self.blob_path(&b) {
                        let _ = std::fs::remove_file(p);
                    }
                }
            }
            for LayerInfo {
                chain_id: chain, ..
            } in &layers
            {
                let used: bool = tx.query_row(
                    "SELECT EXISTS(SELECT 1 FROM image_layers WHERE chain_id = ?1)",
                    [chain],
                    |r| r.get(0),
                )?;
                if !used {
                    if let Some(key) = tx
                        .query_row(
                            "SELECT key FROM snapshots WHERE chain_id = ?1",
                            [chain],
                            |r| r.get::<_, String>(0),
                        )
                        .optional()?
                    {
                        tx.execute("DELETE FROM snapshots WHERE chain_id = ?1", [chain])?;
                        doomed_snapshots.push(self.retire_snapshot_dir(&key));
                    }
                }
            }
            Ok(lines)
        })?;
        for d in doomed_snapshots.into_iter().flatten() {
            let _ = std::fs::remove_dir_all(d);
        }
        Ok(lines)
    }
}

/// True if any image row references the blob as config, manifest or layer, or a referrer
/// or the registry's records do.
pub(crate) fn blob_referenced(conn: &Connection, digest: &str) -> Result<bool> {
    digest_hex(digest)?;
    Ok(conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM images WHERE id = ?1)
             OR EXISTS(SELECT 1 FROM images WHERE manifest_digest = ?1)
             OR EXISTS(SELECT 1 FROM image_layers WHERE digest = ?1)
             OR EXISTS(SELECT 1 FROM registry_blobs WHERE digest = ?1)
             OR EXISTS(SELECT 1 FROM registry_manifests WHERE digest = ?1)
             OR EXISTS(SELECT 1 FROM referrers WHERE digest = ?1)
             OR EXISTS(SELECT 1 FROM referrer_blobs WHERE blob = ?1)",
        [digest],
        |r| r.get(0),
    )?)
}
