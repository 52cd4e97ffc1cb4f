//! OCI 1.1 referrers on the wire (distribution spec 1.1), both ways.
//!
//! Push: after the image, each referrer of the store (and theirs, subjects first) goes up
//! with its blobs, its manifest put by digest. A registry with the referrers API answers
//! with an `OCI-Subject` header and indexes it itself; without that header, the client
//! keeps the subject's `sha256-<hex>` tag as an image index of its referrers (fetched,
//! merged, put back), the spec's fallback.
//!
//! Pull: the referrers of the pulled manifest are listed through
//! `GET /v2/<name>/referrers/<digest>` (200 with an index), else the fallback tag (404 =
//! none); every referrer the store lacks is fetched and verified like an image (manifest
//! digest, blob sizes and digests), then indexed by the store; then the same for their own
//! referrers, a few levels deep. A registry that answers neither way costs the pull
//! nothing but a warning.

use super::fetch::{fetch_blob, NoBar};
use super::pull::get_manifest;
use super::push::{push_blob, Blob};
use super::transport::{describe, header, ReqBody, Transport};
use super::{parallel, short, Progress, JOBS};
use crate::cas::{self, Staged};
use crate::error::{RegistryError, Result};
use crate::media::{self, Descriptor, Parsed, MAX_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use gcr_store::{parse_referrer, Store};
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// How many levels of referrers of referrers a pull follows.
const MAX_DEPTH: usize = 4;
/// The most referrers one pull brings (a registry cannot make a pull endless).
const MAX_REFERRERS: usize = 1000;

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
    let mut fallback: BTreeMap<String, Vec<&gcr_store::Descriptor>> = BTreeMap::new();
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
            fallback.entry(subj.clone()).or_default().push(d);
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

/// Merges `list` into the subject's `sha256-<hex>` index and puts it back when it changed.
fn update_fallback(
    t: &Transport,
    repo: &str,
    subject: &str,
    list: &[&gcr_store::Descriptor],
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
    for d in list {
        let present = entries
            .iter()
            .any(|e| e.get("digest").and_then(|x| x.as_str()) == Some(d.digest.as_str()));
        if !present {
            entries.push(serde_json::to_value(d).map_err(|e| {
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

/// What the fetch threads need of the store (a `Store` stays on its own thread).
pub(crate) struct StoreTmp {
    tmp: PathBuf,
    blobs: PathBuf,
}

impl StoreTmp {
    pub(crate) fn new(store: &Store) -> StoreTmp {
        StoreTmp {
            tmp: cas::tmp_dir(store),
            blobs: store.root().join("blobs/sha256"),
        }
    }

    /// True when the CAS holds `digest` (checked well-formed by the caller).
    fn has(&self, digest: &str) -> bool {
        digest
            .strip_prefix("sha256:")
            .is_some_and(|h| self.blobs.join(h).exists())
    }
}

/// A referrer fetched and verified, its manifest and blobs staged and flushed.
struct Got {
    subject: String,
    digest: String,
    bytes: Vec<u8>,
    staged: Vec<(String, Staged)>,
}

/// Referrers fetched from the registry, not yet in the store: what [`prefetch`] found,
/// in subject order, and the error that ended its walk, if any.
pub(crate) struct Prefetched {
    subject: String,
    got: Vec<Got>,
    error: Option<RegistryError>,
}

/// The digests of the referrers the store already has for `subject` (and theirs): a
/// prefetch skips fetching them.
pub(crate) fn known(store: &Store, subject: &str) -> HashSet<String> {
    store
        .referrer_closure(subject)
        .map(|v| v.into_iter().map(|d| d.digest).collect())
        .unwrap_or_default()
}

/// Network half of a pull's referrers, safe on any thread (no store connection): lists the
/// referrers of `subject` level by level and fetches, verifies and stages those not in
/// `known`. A pull runs it while the image's layers download.
pub(crate) fn prefetch(
    st: &StoreTmp,
    t: &Transport,
    repo: &str,
    subject: &str,
    known: &HashSet<String>,
) -> Prefetched {
    let mut out = Prefetched {
        subject: subject.to_string(),
        got: Vec::new(),
        error: None,
    };
    let no_api = AtomicBool::new(false);
    let mut seen: HashSet<String> = HashSet::new();
    let mut level = vec![subject.to_string()];
    for _ in 0..MAX_DEPTH {
        if level.is_empty() {
            break;
        }
        let found = match parallel(&level, JOBS, |s| list_remote(t, repo, s, &no_api)) {
            Ok(f) => f,
            Err(e) => {
                out.error = Some(e);
                break;
            }
        };
        let mut wanted: Vec<(String, Descriptor)> = Vec::new();
        let mut next = Vec::new();
        for (s, list) in level.iter().zip(found) {
            for d in list {
                if seen.len() >= MAX_REFERRERS || !seen.insert(d.digest.clone()) {
                    continue;
                }
                next.push(d.digest.clone());
                if !known.contains(&d.digest) {
                    wanted.push((s.clone(), d));
                }
            }
        }
        match parallel(&wanted, JOBS, |(s, d)| fetch_referrer(st, t, repo, s, d)) {
            Ok(got) => out.got.extend(got),
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
        level = next;
    }
    out
}

/// Store half: moves what [`prefetch`] staged into the CAS and indexes it (the subject
/// must be recorded by now); returns how many referrers are new. Failures are reported
/// through `progress`, never failing the pull.
pub(crate) fn commit(store: &Store, p: Prefetched, progress: &dyn Progress) -> usize {
    let mut added = 0;
    let mut error = p.error;
    for g in p.got {
        let r = (|| -> Result<()> {
            for (digest, s) in g.staged {
                s.commit(store, &digest)?;
            }
            store.index_referrer(&g.bytes)?;
            Ok(())
        })();
        if let Err(e) = r {
            error = Some(e);
            break;
        }
        added += 1;
        progress.message(&format!(
            "referrer {} of {}: pulled",
            short(&g.digest),
            short(&g.subject)
        ));
    }
    if let Some(e) = error {
        progress.message(&format!(
            "warning: the referrers of {} were not all pulled: {e}",
            short(&p.subject)
        ));
    }
    added
}

/// Both halves, one after the other (a re-pull of an image already stored).
pub(crate) fn pull_referrers(
    store: &Store,
    t: &Transport,
    repo: &str,
    subject: &str,
    progress: &dyn Progress,
) -> usize {
    let p = prefetch(
        &StoreTmp::new(store),
        t,
        repo,
        subject,
        &known(store, subject),
    );
    commit(store, p, progress)
}

/// Lists the referrers of `subject` on the registry: the referrers API, else the fallback
/// tag. Only OCI image manifests with a well-formed digest are kept.
fn list_remote(
    t: &Transport,
    repo: &str,
    subject: &str,
    no_api: &AtomicBool,
) -> Result<Vec<Descriptor>> {
    let mut resp = if no_api.load(Ordering::Relaxed) {
        None
    } else {
        Some(t.send(
            "GET",
            &format!("/v2/{repo}/referrers/{subject}"),
            &[("Accept", OCI_INDEX)],
            &ReqBody::Empty,
        )?)
    };
    let status = resp.as_ref().map_or(404, |r| r.status().as_u16());
    let manifests = if let (200, Some(resp)) = (status, resp.as_mut()) {
        let mut bytes = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                RegistryError::protocol(&t.host, format!("reading the referrers of {subject}: {e}"))
            })?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(RegistryError::protocol(
                &t.host,
                format!("the referrers index of {subject} is over the 4 MiB limit"),
            ));
        }
        match media::parse_manifest(&bytes, Some(OCI_INDEX)) {
            Ok((_, Parsed::Index { manifests })) => manifests,
            Ok(_) | Err(_) => {
                return Err(RegistryError::protocol(
                    &t.host,
                    format!("its referrers answer for {subject} is not an image index"),
                ))
            }
        }
    } else if matches!(status, 404 | 405 | 400) {
        // No referrers API: the fallback tag (absent = no referrers). The answer is read
        // to its end, so the connection serves the next request.
        if let Some(r) = resp.as_mut() {
            let _ = describe(r);
        }
        no_api.store(true, Ordering::Relaxed);
        match get_manifest(t, repo, &fallback_tag(subject), None) {
            Ok(f) => match f.parsed {
                Parsed::Index { manifests } => manifests,
                Parsed::Image { .. } => Vec::new(),
            },
            Err(RegistryError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e),
        }
    } else {
        let why = resp.as_mut().map(describe).unwrap_or_default();
        return Err(RegistryError::protocol(
            &t.host,
            format!("listing the referrers of {subject} failed with {why}"),
        ));
    };
    Ok(manifests
        .into_iter()
        .filter(|d| d.media_type == OCI_MANIFEST && media::valid_digest(&d.digest))
        .collect())
}

/// Fetches and verifies one referrer manifest and stages the blobs the store lacks.
fn fetch_referrer(
    store_tmp: &StoreTmp,
    t: &Transport,
    repo: &str,
    subject: &str,
    d: &Descriptor,
) -> Result<Got> {
    let f = get_manifest(t, repo, &d.digest, Some(&d.digest))?;
    let m = parse_referrer(&f.bytes)?;
    if m.subject != subject {
        return Err(RegistryError::protocol(
            &t.host,
            format!(
                "referrer {} listed for {subject} names {} as its subject",
                d.digest, m.subject
            ),
        ));
    }
    let mut staged = Vec::new();
    if !store_tmp.has(&f.digest) {
        // Staged and flushed here too, so indexing it later costs no fsync.
        let mut s = Staged::new(&store_tmp.tmp)?;
        s.write(&f.bytes)?;
        s.file
            .as_file()
            .sync_all()
            .map_err(|e| RegistryError::io("cannot fsync", s.file.path(), e))?;
        staged.push((f.digest.clone(), s));
    }
    for b in &m.blobs {
        if store_tmp.has(&b.digest) || staged.iter().any(|(x, _)| *x == b.digest) {
            continue;
        }
        let desc = Descriptor {
            media_type: b.media_type.clone(),
            digest: b.digest.clone(),
            size: b.size,
            platform: None,
            artifact_type: None,
            annotations: None,
        };
        let s = fetch_blob(t, &store_tmp.tmp, repo, &desc, &NoBar)?;
        // Flushed here, in parallel with the other referrers' blobs: the commit's own
        // fsync then finds nothing left to write.
        s.file
            .as_file()
            .sync_all()
            .map_err(|e| RegistryError::io("cannot fsync", s.file.path(), e))?;
        staged.push((b.digest.clone(), s));
    }
    Ok(Got {
        subject: subject.to_string(),
        digest: f.digest,
        bytes: f.bytes,
        staged,
    })
}
