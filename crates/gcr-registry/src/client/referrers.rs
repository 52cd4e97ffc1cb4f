//! OCI 1.1 referrers on the wire (distribution spec 1.1), both ways.
//!
//! Push: after the image, each referrer of the store (and theirs, subjects first) goes up
//! with its blobs, its manifest put by digest. A registry with the referrers API answers
//! with an `OCI-Subject` header and indexes it itself; without that header, the client
//! keeps the subject's `sha256-<hex>` tag as an image index of its referrers (fetched,
//! merged, put back), the spec's fallback; its entries embed small referrer manifests
//! (image spec 1.1 descriptor `data`), as gcr's referrer manifests embed small layers, so
//! that a pull reads a signature from the listing alone.
//!
//! Pull: the referrers of the pulled manifest are listed through
//! `GET /v2/<name>/referrers/<digest>` (200 with an index), else the fallback tag (404 =
//! none); every referrer the store lacks is fetched and verified like an image (manifest
//! digest, blob sizes and digests), then indexed by the store; then the same for their own
//! referrers, a few levels deep. A registry that answers neither way costs the pull
//! nothing but a warning.

use super::pull::get_manifest;
use super::push::{push_blob, Blob};
use super::transport::{describe, header, ReqBody, Transport};
use super::{parallel, short, Progress, JOBS};
use crate::error::{RegistryError, Result};
use crate::media::{Parsed, OCI_INDEX, OCI_MANIFEST};
use gcr_store::{parse_referrer, Store};
use std::collections::BTreeMap;

/// The fallback tag of a subject: `sha256-<hex>`.
pub fn fallback_tag(subject: &str) -> String {
    subject.replacen(':', "-", 1)
}

/// Pushes the referrers of `subject` (recursively) to `repo`; returns how many.
pub(crate) fn push_referrers(
    store: &Store,
    t: &Transport,
    repo: &str,
    subject: &str,
    progress: &dyn Progress,
) -> Result<usize> {
    let all = store.referrer_closure(subject)?;
    if all.is_empty() {
        return Ok(0);
    }
    let mut manifests = Vec::with_capacity(all.len());
    let mut blobs: Vec<Blob> = Vec::new();
    for d in &all {
        let bytes = store.read_blob(&d.digest)?;
        let m = parse_referrer(&bytes)?;
        for b in &m.blobs {
            if blobs.iter().any(|x| x.digest == b.digest) {
                continue;
            }
            blobs.push(Blob {
                digest: b.digest.clone(),
                size: b.size,
                path: store.blob_path(&b.digest)?,
                mount_from: None,
            });
            if !store.has_blob(&b.digest) {
                return Err(RegistryError::Store(gcr_store::StoreError::BlobMissing(
                    b.digest.clone(),
                )));
            }
        }
        manifests.push((d, m.subject, bytes));
    }
    parallel(&blobs, JOBS, |b| push_blob(t, repo, b, progress))?;
    // Subjects whose registry did not answer with OCI-Subject: their fallback index.
    let mut fallback: BTreeMap<String, Vec<(&gcr_store::Descriptor, &[u8])>> = BTreeMap::new();
    for (d, subj, bytes) in &manifests {
        let mut resp = t.send(
            "PUT",
            &format!("/v2/{repo}/manifests/{}", d.digest),
            &[("Content-Type", OCI_MANIFEST)],
            &ReqBody::Bytes(bytes),
        )?;
        if !resp.status().is_success() {
            return Err(RegistryError::protocol(
                &t.host,
                format!(
                    "putting referrer manifest {} of {subj} into {repo} failed with {}",
                    d.digest,
                    describe(&mut resp)
                ),
            ));
        }
        if header(&resp, "oci-subject") != Some(subj.as_str()) {
            fallback
                .entry(subj.clone())
                .or_default()
                .push((d, bytes.as_slice()));
        }
        progress.message(&format!(
            "referrer {} ({}): pushed",
            short(&d.digest),
            d.artifact_type.as_deref().unwrap_or("")
        ));
    }
    for (subj, list) in fallback {
        update_fallback(t, repo, &subj, &list)?;
    }
    Ok(all.len())
}

/// Merges `list` (descriptors and manifest bytes) into the subject's `sha256-<hex>` index
/// and puts it back when it changed. A small manifest is embedded in its entry (`data`):
/// a pull through the fallback then reads a signature with no request of its own.
fn update_fallback(
    t: &Transport,
    repo: &str,
    subject: &str,
    list: &[(&gcr_store::Descriptor, &[u8])],
) -> Result<()> {
    let tag = fallback_tag(subject);
    let mut index: serde_json::Value = match get_manifest(t, repo, &tag, None) {
        Ok(f) if matches!(f.parsed, Parsed::Index { .. }) => serde_json::from_slice(&f.bytes)
            .map_err(|e| RegistryError::protocol(&t.host, format!("index {tag}: {e}")))?,
        Ok(_) => {
            return Err(RegistryError::protocol(
                &t.host,
                format!("its tag {repo}:{tag} is not an image index, so the referrers of {subject} cannot be listed there; delete that tag"),
            ))
        }
        Err(RegistryError::NotFound(_)) => {
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        }
        Err(e) => return Err(e),
    };
    let Some(entries) = index.get_mut("manifests").and_then(|m| m.as_array_mut()) else {
        return Err(RegistryError::protocol(
            &t.host,
            format!("index {repo}:{tag} has no manifests list; delete that tag"),
        ));
    };
    let before = entries.len();
    for (d, bytes) in list {
        let present = entries
            .iter()
            .any(|e| e.get("digest").and_then(|x| x.as_str()) == Some(d.digest.as_str()));
        if !present {
            let entry = gcr_store::Descriptor {
                data: gcr_store::embed(bytes),
                ..(*d).clone()
            };
            entries.push(serde_json::to_value(entry).map_err(|e| {
                RegistryError::Usage(format!("cannot encode referrer {}: {e}", d.digest))
            })?);
        }
    }
    if entries.len() == before {
        return Ok(());
    }
    let bytes = serde_json::to_vec(&index)
        .map_err(|e| RegistryError::Usage(format!("cannot encode index {tag}: {e}")))?;
    let mut resp = t.send(
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", OCI_INDEX)],
        &ReqBody::Bytes(&bytes),
    )?;
    if !resp.status().is_success() {
        return Err(RegistryError::protocol(
            &t.host,
            format!(
                "putting the referrers index {repo}:{tag} failed with {}",
                describe(&mut resp)
            ),
        ));
    }
    Ok(())
}

mod tags;
mod walk;
pub(crate) use walk::{commit, known, prefetch, pull_referrers, Prefetched, StoreTmp};
