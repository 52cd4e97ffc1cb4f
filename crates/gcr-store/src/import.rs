//! Deterministic rootfs import: a tar (or tar.gz) becomes a single-layer OCI image whose
//! bytes depend only on the input content and `created` (by default its newest mtime): entries sorted by path, mtimes
//! kept as the tarball has them (clamped to `created` only when it is given, or to
//! `SOURCE_DATE_EPOCH`: a file's age is data — Python compares it with its `.pyc`), no
//! user/group names, no atime/ctime/PAX records, fixed gzip header, and
//! canonical JSON for config and manifest.

use crate::error::{Result, StoreError};
use crate::images::{register, NewImage, NewLayer};
use crate::layer::{EntryData, LayerEntry};
use crate::util::{canonical_json, maybe_gunzip, parse_reference, rfc3339};
use crate::Store;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufReader, Read};

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// One input entry, normalized.
struct Item {
    ty: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<String>,
    dev: (u32, u32),
    /// Offset and length of the data in the spool file.
    data: (u64, u64),
}

fn clean(entry: &str, raw: &[u8]) -> Result<String> {
    let s = String::from_utf8(raw.to_vec())
        .map_err(|_| StoreError::Archive(format!("rootfs entry '{entry}' is not valid UTF-8")))?;
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(StoreError::Archive(format!(
                    "rootfs entry '{entry}' contains '..'; fix the tarball"
                )))
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// SOURCE_DATE_EPOCH, when set.
fn source_date_epoch() -> Option<u64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

impl Store {
    /// Imports a rootfs tarball as a deterministic single-layer image; returns the image id.
    pub fn import_rootfs(
        &self,
        input: impl Read,
        reference: Option<&str>,
        created: Option<u64>,
    ) -> Result<String> {
        let tag = reference
            .map(|r| parse_reference(r).map(|r| r.tagged()))
            .transpose()?;
        // Mtimes are clamped only to an explicit time; `created` defaults to the newest
        // mtime in the tarball (a time of the content itself: still the same image for the
        // same bytes, and `docker images` shows its age instead of 1970).
        let clamp = created.or_else(source_date_epoch);
        let mut newest = 0u64;
        // A killed earlier try left its temp files: they go before this one adds its own.
        self.remove_stale_temp();
        let rd = |e: std::io::Error| {
            StoreError::Archive(format!(
                "cannot read the rootfs tarball (truncated or corrupt?): {e}"
            ))
        };
        let mut spool = tempfile::tempfile_in(self.tmp_dir())
            .map_err(|e| StoreError::io("cannot create a temp file in", self.tmp_dir(), e))?;
        let mut items: BTreeMap<String, Item> = BTreeMap::new();
        let mut ar = tar::Archive::new(maybe_gunzip(BufReader::new(input)).map_err(rd)?);
        let mut offset = 0u64;
        for e in ar.entries().map_err(rd)? {
            let mut e = e.map_err(rd)?;
            let raw = e.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let path = clean(&shown, &raw)?;
            let h = e.header();
            let ty = h.entry_type();
            let ty = match ty {
                tar::EntryType::Continuous => tar::EntryType::Regular,
                tar::EntryType::Regular
                | tar::EntryType::Directory
                | tar::EntryType::Symlink
                | tar::EntryType::Link
                | tar::EntryType::Char
                | tar::EntryType::Block
                | tar::EntryType::Fifo => ty,
                _ => continue,
            };
            if path.is_empty() {
                continue;
            }
            let link = match ty {
                tar::EntryType::Symlink => Some(
                    String::from_utf8_lossy(&e.link_name_bytes().unwrap_or_default()).into_owned(),
                ),
                tar::EntryType::Link => {
                    let l = e.link_name_bytes().unwrap_or_default().into_owned();
                    Some(clean(&shown, &l)?)
                }
                _ => None,
            };
            let item = Item {
                ty,
                mode: h.mode().unwrap_or(0o644) & 0o7777,
                uid: h.uid().unwrap_or(0),
                gid: h.gid().unwrap_or(0),
                mtime: {
                    let m = h.mtime().unwrap_or(0);
                    let m = clamp.map_or(m, |c| m.min(c));
                    newest = newest.max(m);
                    m
                },
                link,
                dev: (
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0),
                ),
                data: (0, 0),
            };
            let mut item = item;
            if ty == tar::EntryType::Regular {
                let n = std::io::copy(&mut e, &mut spool)
                    .map_err(|e| crate::error::input_or_space(&self.tmp_dir(), e, rd))?;
                item.data = (offset, n);
                offset += n;
            }
            items.insert(path, item);
        }
        fix_hardlinks(&mut items)?;
        // Write the sorted, normalized tar through the shared deterministic layer writer.
        let entries: BTreeMap<String, LayerEntry> = items
            .into_iter()
            .map(|(p, it)| {
                let data = if it.ty == tar::EntryType::Regular && it.link.is_none() {
                    EntryData::Spool(it.data.0, it.data.1)
                } else {
                    EntryData::None
                };
                let e = LayerEntry {
                    ty: it.ty,
                    mode: it.mode,
                    uid: it.uid,
                    gid: it.gid,
                    mtime: it.mtime,
                    link: it.link,
                    dev: it.dev,
                    data,
                };
                (p, e)
            })
            .collect();
        let layer = self.write_layer(&entries, Some(&mut spool))?;
        let (layer_digest, layer_size, diff_id) = (layer.digest, layer.size, layer.diff_id);

        let created = clamp.unwrap_or(newest);
        let ts = rfc3339(created as i64);
        let config = canonical_json(&json!({
            "architecture": host_arch(),
            "os": "linux",
            "created": ts,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": ts, "created_by": "gcr import", "comment": "imported rootfs"}],
        }));
        let (config_digest, config_size) = self.put_blob(&config, None)?;
        let manifest = canonical_json(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": layer_size}],
        }));
        let (manifest_digest, _) = self.put_blob(&manifest, None)?;
        let img = NewImage {
            manifest_digest,
            manifest_media_type: OCI_MANIFEST.into(),
            config,
            layers: vec![NewLayer {
                digest: layer_digest,
                diff_id,
                media_type: OCI_LAYER_GZIP.into(),
                size: layer_size,
            }],
            tags: tag.into_iter().collect(),
        };
        Ok(register(self, &[img], "import")?.remove(0))
    }
}

/// Makes every hardlink group's first path (in sorted order) the real file, so extraction in
/// sorted order never meets a link before its target.
fn fix_hardlinks(items: &mut BTreeMap<String, Item>) -> Result<()> {
    let links: Vec<(String, String)> = items
        .iter()
        .filter(|(_, i)| i.ty == tar::EntryType::Link)
        .filter_map(|(p, i)| i.link.clone().map(|l| (p.clone(), l)))
        .collect();
    for (path, mut target) in links {
        // Follow link chains to the real file.
        let mut hops = 0;
        while let Some(t) = items.get(&target) {
            match (&t.ty, &t.link) {
                (tar::EntryType::Link, Some(l)) if hops < 64 => {
                    target = l.clone();
                    hops += 1;
                }
                _ => break,
            }
        }
        match items.get(&target).map(|t| t.ty) {
            Some(tar::EntryType::Regular) => {}
            Some(_) => continue,
            None => {
                return Err(StoreError::Archive(format!(
                    "rootfs entry '{path}' is a hardlink to '{target}', which is not in the tarball; fix the tarball"
                )))
            }
        }
        if path < target {
            // Swap roles: `path` becomes the file, `target` and its other links point at it.
            let (Some(mut file), Some(mut link)) = (items.remove(&target), items.remove(&path))
            else {
                continue;
            };
            file.link = None;
            link.link = Some(path.clone());
            file.ty = tar::EntryType::Regular;
            link.ty = tar::EntryType::Link;
            items.insert(path.clone(), file);
            items.insert(target.clone(), link);
            for it in items.values_mut() {
                if it.ty == tar::EntryType::Link && it.link.as_deref() == Some(target.as_str()) {
                    it.link = Some(path.clone());
                }
            }
        } else if let Some(i) = items.get_mut(&path) {
            i.link = Some(target);
        }
    }
    Ok(())
}

/// The OCI architecture name of this host.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
