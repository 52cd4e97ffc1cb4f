//! OCI 1.1 referrers: artifacts (signatures, attestations, SBOMs, anything) whose manifest
//! names another manifest as its `subject`. A referrer is an OCI image manifest in the CAS
//! with its config and layer blobs, indexed in the `referrers` table by subject digest (a
//! lookup, never a scan) with its media type, size, artifact type and annotations, i.e.
//! everything a referrers-API index descriptor carries.
//!
//! A referrer lives only while its subject does: the subject must be an image manifest of
//! the store or another referrer when it is indexed, and removing an image (`rmi`, `prune`)
//! removes its referrers, theirs in turn, and every blob no one else uses.

use crate::error::{Result, StoreError};
use crate::util::{canonical_json, digest_hex, sha256_digest};
use crate::Store;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Media type of the OCI image manifest (the only form a referrer takes here).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of the empty descriptor used as a referrer's config.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// Content of the empty blob.
pub const EMPTY_BLOB: &[u8] = b"{}";
/// The largest referrer manifest accepted (the distribution spec's manifest limit).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// A descriptor as in an OCI image index (and the referrers API's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The content itself, base64 (image spec 1.1 `data`), when it is small: a pull then
    /// needs no request for it (the reader checks it against `digest` and `size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// The largest content gcr embeds in a descriptor it writes (a signature bundle, a small
/// attestation, a referrer manifest in a fallback index); larger content is fetched.
pub const MAX_EMBEDDED: usize = 64 * 1024;

/// `data` for a descriptor of `bytes`: their base64 when they are at most [`MAX_EMBEDDED`].
pub fn embed(bytes: &[u8]) -> Option<String> {
    use base64::Engine as _;
    (bytes.len() <= MAX_EMBEDDED).then(|| base64::engine::general_purpose::STANDARD.encode(bytes))
}

impl Descriptor {
    /// A plain descriptor (no artifact type, no annotations).
    pub fn plain(media_type: &str, digest: &str, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
            artifact_type: None,
            annotations: BTreeMap::new(),
            data: None,
        }
    }
}

/// The fields of a referrer manifest this module reads (unknown fields are ignored).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: u64,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    artifact_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
    subject: Option<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// A referrer manifest after the checks of [`parse_referrer`].
pub struct ReferrerManifest {
    /// The subject's manifest digest.
    pub subject: String,
    /// `artifactType`, else the config's media type (as the referrers API reports it).
    pub artifact_type: String,
    pub annotations: BTreeMap<String, String>,
    /// Config first, then the layers.
    pub blobs: Vec<Descriptor>,
}

/// Parses and checks a referrer manifest received whole (pull, load): an OCI image manifest
/// with a `subject` and well-formed digests.
pub fn parse_referrer(manifest: &[u8]) -> Result<ReferrerManifest> {
    let what = "referrer manifest";
    if manifest.len() > MAX_MANIFEST {
        return Err(StoreError::bad_json(what, "it is larger than 4 MiB"));
    }
    let m: RawManifest =
        serde_json::from_slice(manifest).map_err(|e| StoreError::bad_json(what, e))?;
    if m.schema_version != 2 {
        return Err(StoreError::bad_json(what, "schemaVersion is not 2"));
    }
    if m.media_type.as_deref().is_some_and(|t| t != OCI_MANIFEST) {
        return Err(StoreError::bad_json(
            what,
            format!("its mediaType is not {OCI_MANIFEST}"),
        ));
    }
    let Some(subject) = m.subject else {
        return Err(StoreError::bad_json(what, "it has no subject"));
    };
    digest_hex(&subject.digest)?;
    let mut blobs = vec![m.config];
    blobs.extend(m.layers);
    for b in &blobs {
        digest_hex(&b.digest)?;
    }
    let artifact_type = m
        .artifact_type
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| blobs[0].media_type.clone());
    Ok(ReferrerManifest {
        subject: subject.digest,
        artifact_type,
        annotations: m.annotations,
        blobs,
    })
}

impl Store {
    /// Attaches an artifact to `subject` (an image named any way, or the digest of an image
    /// manifest or of another referrer): writes the layer blob, the empty config blob and an
    /// OCI image manifest (`artifactType`, `subject`, `annotations`) into the CAS, indexes
    /// it, and returns the artifact manifest's digest. Deterministic: the same inputs give
    /// the same digest.
    pub fn put_referrer(
        &self,
        subject: &str,
        artifact_type: &str,
        annotations: BTreeMap<String, String>,
        layer_media_type: &str,
        layer: &[u8],
    ) -> Result<String> {
        let subj = self.subject_descriptor(subject)?;
        let (layer_digest, layer_size) = self.put_blob(layer, None)?;
        let (empty_digest, _) = self.put_blob(EMPTY_BLOB, None)?;
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": Descriptor {
                data: embed(EMPTY_BLOB),
                ..Descriptor::plain(EMPTY_MEDIA_TYPE, &empty_digest, EMPTY_BLOB.len() as u64)
            },
            "layers": [Descriptor {
                data: embed(layer),
                ..Descriptor::plain(layer_media_type, &layer_digest, layer_size)
            }],
            "subject": subj,
        });
        if !annotations.is_empty() {
            manifest["annotations"] = serde_json::json!(annotations);
        }
        let bytes = canonical_json(&manifest);
        Ok(self.index_referrer(&bytes)?.digest)
    }

    /// Stores and indexes a referrer manifest that arrived whole (pull, load). Its config
    /// and layer blobs must already be in the CAS, and its subject in the store (an image
    /// manifest or another referrer). Returns its descriptor. Indexing one twice is a no-op.
    pub fn index_referrer(&self, manifest: &[u8]) -> Result<Descriptor> {
        let p = Incoming::parse(manifest)?;
        self.transaction(|tx| self.insert_referrer(tx, &p))?;
        Ok(p.descriptor())
    }

    /// [`Store::index_referrer`] of several manifests in one transaction (a pull's), each
    /// after its subject (which may be one of the earlier ones): all or none.
    pub fn index_referrers(&self, manifests: &[&[u8]]) -> Result<Vec<Descriptor>> {
        let all = manifests
            .iter()
            .map(|m| Incoming::parse(m))
            .collect::<Result<Vec<_>>>()?;
        self.transaction(|tx| -> Result<()> {
            for p in &all {
                self.insert_referrer(tx, p)?;
            }
            Ok(())
        })?;
        Ok(all.iter().map(Incoming::descriptor).collect())
    }

    fn insert_referrer(&self, tx: &rusqlite::Transaction<'_>, p: &Incoming<'_>) -> Result<()> {
        let m = &p.parsed;
        if !subject_known(tx, &m.subject)? {
            return Err(StoreError::ReferrerSubjectMissing(m.subject.clone()));
        }
        // Checked under the write lock: a prune cannot free them before the rows exist.
        for b in &m.blobs {
            if !self.has_blob(&b.digest) {
                return Err(StoreError::BlobMissing(b.digest.clone()));
            }
        }
        // The manifest goes into the CAS under the write lock, so a concurrent rmi of the
        // subject cannot free it between the check and the insert. A pull has committed it
        // already (durable): no second copy is written then.
        if !self.has_blob(&p.digest) {
            self.put_blob(p.bytes, Some(&p.digest))?;
        }
        tx.execute(
            "INSERT OR IGNORE INTO referrers(digest, subject, media_type, size, artifact_type, annotations, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                p.digest,
                m.subject,
                OCI_MANIFEST,
                p.bytes.len() as i64,
                m.artifact_type,
                p.annotations,
                crate::util::now_ns() / 1_000_000_000
            ],
        )?;
        for b in &m.blobs {
            tx.execute(
                "INSERT OR IGNORE INTO referrer_blobs(referrer, blob) VALUES (?1, ?2)",
                params![p.digest, b.digest],
            )?;
        }
        Ok(())
    }

    /// The referrers of `subject` (named as for [`Store::put_referrer`]), oldest first,
    /// optionally only those of one artifact type. One indexed lookup.
    pub fn referrers(&self, subject: &str, artifact_type: Option<&str>) -> Result<Vec<Descriptor>> {
        let subject = self.subject_descriptor(subject)?.digest;
        direct_referrers(&self.conn, &subject, artifact_type)
    }

    /// The referrers of `subject` and, recursively, theirs (a signature of an SBOM), each
    /// after its own subject: the order to push or save them in.
    pub fn referrer_closure(&self, subject: &str) -> Result<Vec<Descriptor>> {
        let subject = self.subject_descriptor(subject)?.digest;
        let mut out = direct_referrers(&self.conn, &subject, None)?;
        let mut i = 0;
        while i < out.len() {
            let more = direct_referrers(&self.conn, &out[i].digest, None)?;
            for d in more {
                if !out.iter().any(|o| o.digest == d.digest) {
                    out.push(d);
                }
            }
            i += 1;
        }
        Ok(out)
    }

    /// The layer of a referrer (a signature bundle, an SBOM) with its media type; the
    /// manifest and the layer are checked against their digests, so corruption in the
    /// store is reported, never returned.
    pub fn referrer_layer(&self, digest: &str) -> Result<(String, Vec<u8>)> {
        let manifest = self.read_blob(digest)?;
        let actual = sha256_digest(&manifest);
        if actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.to_string(),
                actual,
            });
        }
        let m = parse_referrer(&manifest)?;
        let Some(layer) = m.blobs.get(1) else {
            return Err(StoreError::bad_json(
                format!("referrer manifest {digest}"),
                "it has no layer",
            ));
        };
        let bytes = self.read_blob(&layer.digest)?;
        let actual = sha256_digest(&bytes);
        if actual != layer.digest {
            return Err(StoreError::DigestMismatch {
                expected: layer.digest.clone(),
                actual,
            });
        }
        Ok((layer.media_type.clone(), bytes))
    }

    /// The descriptor (media type, digest, size) of the manifest `s` names: a referrer's
    /// digest, or an image named any way.
    pub fn subject_descriptor(&self, s: &str) -> Result<Descriptor> {
        if digest_hex(s).is_ok() {
            let row = self
                .conn
                .prepare_cached("SELECT media_type, size FROM referrers WHERE digest = ?1")?
                .query_row([s], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .optional()?;
            if let Some((media_type, size)) = row {
                return Ok(Descriptor::plain(&media_type, s, size as u64));
            }
        }
        let img = self.resolve_image(s)?;
        let path = self.blob_path(&img.manifest_digest)?;
        let size = std::fs::metadata(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    StoreError::BlobMissing(img.manifest_digest.clone())
                }
                _ => StoreError::io("cannot stat blob", &path, e),
            })?
            .len();
        Ok(Descriptor::plain(
            &img.manifest_media_type,
            &img.manifest_digest,
            size,
        ))
    }
}

/// True when `digest` is the manifest of an image or of a referrer in the store.
fn subject_known(conn: &Connection, digest: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM images WHERE manifest_digest = ?1)
             OR EXISTS(SELECT 1 FROM referrers WHERE digest = ?1)",
        [digest],
        |r| r.get(0),
    )?)
}

fn direct_referrers(
    conn: &Connection,
    subject: &str,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>> {
    let mut st = conn.prepare_cached(
        "SELECT digest, media_type, size, artifact_type, annotations FROM referrers
         WHERE subject = ?1 AND (?2 IS NULL OR artifact_type = ?2) ORDER BY rowid",
    )?;
    let rows = st.query_map(params![subject, artifact_type], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (digest, media_type, size, artifact_type, annotations) = row?;
        let annotations = serde_json::from_str(&annotations)
            .map_err(|e| StoreError::bad_json(format!("annotations of referrer {digest}"), e))?;
        out.push(Descriptor {
            media_type,
            digest,
            size: size as u64,
            artifact_type: Some(artifact_type),
            annotations,
            data: None,
        });
    }
    Ok(out)
}

/// Deletes the referrers of `subject`, recursively, inside the caller's transaction; pushes
/// the blobs they used (manifests, configs, layers) onto `blobs`, for the caller to free
/// those no one else references.
pub(crate) fn remove_for_subject(
    tx: &Connection,
    subject: &str,
    blobs: &mut Vec<String>,
) -> Result<()> {
    let mut pending = vec![subject.to_string()];
    while let Some(s) = pending.pop() {
        let doomed: Vec<String> = {
            let mut st = tx.prepare_cached("SELECT digest FROM referrers WHERE subject = ?1")?;
            let v = st
                .query_map([&s], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            v
        };
        for d in doomed {
            {
                let mut st =
                    tx.prepare_cached("SELECT blob FROM referrer_blobs WHERE referrer = ?1")?;
                let used = st
                    .query_map([&d], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                blobs.extend(used);
            }
            tx.execute("DELETE FROM referrer_blobs WHERE referrer = ?1", [&d])?;
            tx.execute("DELETE FROM signature_verdicts WHERE referrer = ?1", [&d])?;
            tx.execute("DELETE FROM referrers WHERE digest = ?1", [&d])?;
            blobs.push(d.clone());
            pending.push(d);
        }
    }
    Ok(())
}

mod layout;
mod verdicts;
pub(crate) use layout::{is_referrer_entry, load_referrers};

/// A referrer manifest being indexed: its bytes, parsed, its digest and annotations JSON.
struct Incoming<'a> {
    bytes: &'a [u8],
    parsed: ReferrerManifest,
    digest: String,
    annotations: String,
}

impl<'a> Incoming<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Incoming<'a>> {
        let parsed = parse_referrer(bytes)?;
        let annotations = serde_json::to_string(&parsed.annotations)
            .map_err(|e| StoreError::bad_json("referrer annotations", e))?;
        Ok(Incoming {
            bytes,
            digest: sha256_digest(bytes),
            parsed,
            annotations,
        })
    }

    fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.to_string(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            data: None,
            artifact_type: Some(self.parsed.artifact_type.clone()),
            annotations: self.parsed.annotations.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
