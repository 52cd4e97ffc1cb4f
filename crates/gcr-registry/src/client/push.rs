//! `gcr push`: upload the blobs of a stored image that the registry lacks (HEAD first,
//! a cross-repository mount when gcr knows another repository of that registry holds the
//! blob, else a monolithic upload), in parallel, then put the manifest byte for byte, then
//! the image's OCI 1.1 referrers (`referrers`).

use super::transport::{describe, header, ConnectOptions, ReqBody, Transport};
use super::{parallel, short, Progress, JOBS};
use crate::cas;
use crate::error::{RegistryError, Result};
use crate::media::{self, Parsed};
use gcr_core::Reference;
use gcr_store::Store;
use std::path::PathBuf;

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The normalized destination.
    pub reference: String,
    /// The manifest digest (identical to the local one).
    pub digest: String,
    pub size: u64,
    pub uploaded: usize,
    pub existing: usize,
    pub mounted: usize,
    /// Referrers pushed after the image (signatures, attestations).
    pub referrers: usize,
}

pub(super) enum Outcome {
    Existed,
    Mounted,
    Uploaded,
}

pub(super) struct Blob {
    pub(super) digest: String,
    pub(super) size: u64,
    pub(super) path: PathBuf,
    pub(super) mount_from: Option<String>,
}

/// Pushes the stored image `image` to `dest` (default: the image's own name).
pub fn push(
    store: &Store,
    image: &str,
    dest: Option<&str>,
    opts: &ConnectOptions,
    progress: &dyn Progress,
) -> Result<PushReport> {
    let resolved = store.resolve_image(image)?;
    let target = dest.unwrap_or(image);
    let r = Reference::parse(target).map_err(|e| {
        RegistryError::Usage(format!("{e}; give the destination as HOST/NAME[:TAG]"))
    })?;
    if dest.is_none() && target.starts_with("sha256:") {
        return Err(RegistryError::Usage(
            "give a destination (gcr push IMAGE HOST/NAME[:TAG]) when naming an image by id".into(),
        ));
    }
    let manifest = store.read_blob(&resolved.manifest_digest)?;
    let (_, parsed) = media::parse_manifest(&manifest, Some(&resolved.manifest_media_type))
        .map_err(|e| {
            RegistryError::Usage(format!(
                "the stored manifest of {image} is unusable: {e}; run 'gcr doctor'"
            ))
        })?;
    let Parsed::Image { config, layers, .. } = parsed else {
        return Err(RegistryError::Usage(format!(
            "{image} is an index; push one of its images"
        )));
    };
    let repo = r.repository().to_string();
    let mut blobs: Vec<Blob> = Vec::new();
    for d in layers.iter().chain(std::iter::once(&config)) {
        if blobs.iter().any(|b| b.digest == d.digest) {
            continue;
        }
        if !store.has_blob(&d.digest) {
            return Err(RegistryError::Store(gcr_store::StoreError::BlobMissing(
                d.digest.clone(),
            )));
        }
        blobs.push(Blob {
            digest: d.digest.clone(),
            size: d.size,
            path: store.blob_path(&d.digest)?,
            mount_from: cas::source_of(store, r.registry(), &repo, &d.digest),
        });
    }
    let mut scopes = vec![format!("repository:{repo}:pull,push")];
    for b in &blobs {
        if let Some(f) = &b.mount_from {
            let s = format!("repository:{f}:pull");
            if !scopes.contains(&s) && scopes.len() < 8 {
                scopes.push(s);
            }
        }
    }
    let t = Transport::new(r.registry(), scopes, opts)?;
    let gone = || {
        RegistryError::Usage(format!(
            "the push of {image} was cancelled: its client left before the manifest was put"
        ))
    };
    let outcomes = parallel(&blobs, JOBS, |b| {
        if progress.cancelled() {
            return Err(gone());
        }
        push_blob(&t, &repo, b, progress)
    })?;
    if progress.cancelled() {
        return Err(gone());
    }
    let tag = r
        .tag()
        .map(str::to_string)
        .unwrap_or_else(|| resolved.manifest_digest.clone());
    let mut resp = t.send(
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", resolved.manifest_media_type.as_str())],
        &ReqBody::Bytes(&manifest),
    )?;
    if !resp.status().is_success() {
        return Err(RegistryError::protocol(
            &t.host,
            format!(
                "putting manifest {}/{repo}:{tag} failed with {}",
                t.host,
                describe(&mut resp)
            ),
        ));
    }
    if let Some(d) = header(&resp, "docker-content-digest") {
        if d.starts_with("sha256:") && d != resolved.manifest_digest {
            return Err(RegistryError::Digest {
                what: format!("manifest stored by {}", t.host),
                expected: resolved.manifest_digest.clone(),
                actual: d.to_string(),
            });
        }
    }
    let digests: Vec<String> = blobs.iter().map(|b| b.digest.clone()).collect();
    let _ = cas::record_sources(store, r.registry(), &repo, &digests);
    let referrers =
        super::referrers::push_referrers(store, &t, &repo, &resolved.manifest_digest, progress)?;
    let count = |k: fn(&Outcome) -> bool| outcomes.iter().filter(|o| k(o)).count();
    let report = PushReport {
        reference: r.full(),
        digest: resolved.manifest_digest.clone(),
        size: manifest.len() as u64,
        uploaded: count(|o| matches!(o, Outcome::Uploaded)),
        existing: count(|o| matches!(o, Outcome::Existed)),
        mounted: count(|o| matches!(o, Outcome::Mounted)),
        referrers,
    };
    progress.message(&format!(
        "{tag}: digest: {} size: {}",
        report.digest, report.size
    ));
    Ok(report)
}

pub(super) fn push_blob(
    t: &Transport,
    repo: &str,
    b: &Blob,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let id = short(&b.digest);
    let head = t.send(
        "HEAD",
        &format!("/v2/{repo}/blobs/{}", b.digest),
        &[],
        &ReqBody::Empty,
    )?;
    if head.status().is_success() {
        progress.end(&id, "Layer already exists");
        return Ok(Outcome::Existed);
    }
    let start = match &b.mount_from {
        Some(from) => format!("/v2/{repo}/blobs/uploads/?mount={}&from={from}", b.digest),
        None => format!("/v2/{repo}/blobs/uploads/"),
    };
    let mut resp = t.send("POST", &start, &[], &ReqBody::Empty)?;
    if resp.status() == 201 && b.mount_from.is_some() {
        progress.end(
            &id,
            &format!("Mounted from {}", b.mount_from.as_deref().unwrap_or("")),
        );
        return Ok(Outcome::Mounted);
    }
    if resp.status() != 202 {
        return Err(RegistryError::protocol(
            &t.host,
            format!(
                "starting the upload of blob {} to {repo} failed with {}",
                b.digest,
                describe(&mut resp)
            ),
        ));
    }
    let loc = header(&resp, "location")
        .ok_or_else(|| {
            RegistryError::protocol(&t.host, "its upload answer has no Location header")
        })?
        .to_string();
    let sep = if loc.contains('?') { '&' } else { '?' };
    let url = format!("{loc}{sep}digest={}", b.digest);
    progress.begin(&id, b.size);
    // A client that left stops the upload at its next chunk.
    let on_sent = |n: u64| {
        progress.advance(&id, n);
        !progress.cancelled()
    };
    let mut resp = t.send(
        "PUT",
        &url,
        &[("Content-Type", "application/octet-stream")],
        &ReqBody::File(&b.path, &on_sent),
    )?;
    if resp.status() != 201 && !resp.status().is_success() {
        return Err(RegistryError::protocol(
            &t.host,
            format!(
                "uploading blob {} to {repo} failed with {}",
                b.digest,
                describe(&mut resp)
            ),
        ));
    }
    progress.end(&id, "Pushed");
    Ok(Outcome::Uploaded)
}
