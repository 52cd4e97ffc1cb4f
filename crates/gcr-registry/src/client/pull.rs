//! `gcr pull`: resolve a reference to a manifest (through an index by platform), fetch the
//! config and the layers the store lacks in parallel, verify every byte against its digest,
//! and only then move the blobs into the CAS and record the image in one transaction.
//! A first pull GETs the manifest at once; a re-pull (the tag is stored) asks with a HEAD
//! first, so an unchanged image costs one manifest HEAD (and one referrers query) and no
//! GET, which registries such as Docker Hub count against pull limits.
//! The image's OCI 1.1 referrers follow it (`referrers`), unless asked not to.

use super::fetch::{fetch_blob, NoBar};
use super::referrers;
use super::transport::{describe, header, ConnectOptions, ReqBody, Transport};
use super::{parallel, short, Progress, JOBS};
use crate::cas::{self, Staged};
use crate::error::{RegistryError, Result};
use crate::media::{self, Descriptor, Parsed, Platform, ACCEPT_MANIFESTS, MAX_MANIFEST};
use gcr_core::Reference;
use gcr_store::{NewImage, NewLayer, Store};
use std::io::Read;

/// Largest image config accepted.
const MAX_CONFIG: u64 = 32 * 1024 * 1024;

/// Options of a pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Platform to select from an index; default the host's.
    pub platform: Option<Platform>,
    pub connect: ConnectOptions,
    /// Skip the image's OCI 1.1 referrers (signatures, attestations); by default they
    /// come along.
    pub no_referrers: bool,
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReport {
    /// The normalized reference pulled.
    pub reference: String,
    /// Image id (config digest).
    pub id: String,
    /// Digest of what the reference points to (an index or a manifest).
    pub digest: String,
    /// Layers downloaded / already present.
    pub downloaded: usize,
    pub existing: usize,
    /// Bytes of the blobs downloaded (layers and config; 0 when up to date).
    pub bytes: u64,
    /// True when nothing had to be downloaded.
    pub up_to_date: bool,
    /// Referrers new to the store.
    pub referrers: usize,
}

/// A manifest document fetched and verified.
pub(super) struct Fetched {
    pub(super) bytes: Vec<u8>,
    pub(super) digest: String,
    pub(super) media_type: String,
    pub(super) parsed: Parsed,
}

/// Pulls `reference` into `store`.
pub fn pull(
    store: &Store,
    reference: &str,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<PullReport> {
    let r = Reference::parse(reference).map_err(|e| RegistryError::Usage(e.to_string()))?;
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let repo = r.repository().to_string();
    let tag_ref = r.tag().map(|_| r.name_tag());
    // Pull by digest of something already stored: no network at all.
    if let Some(d) = r.digest() {
        if let Some(rep) = local_hit(store, &r, &d.to_string(), &platform, tag_ref.as_deref())? {
            return Ok(rep);
        }
    }
    let t = Transport::new(
        r.registry(),
        vec![format!("repository:{repo}:pull")],
        &opts.connect,
    )?;
    let wanted = match r.digest() {
        Some(d) => d.to_string(),
        None => r.tag().unwrap_or("latest").to_string(),
    };
    // The HEAD's digest, when its media type says "image manifest", is the subject of
    // the referrers: their walk starts now, while the manifest and the layers download.
    let mut head_image = None;
    let repull = tag_ref
        .as_deref()
        .is_some_and(|t| store.resolve_image(t).is_ok());
    if r.digest().is_none() && repull {
        if let Some((d, is_image)) = head_manifest(&t, &repo, &wanted)? {
            if let Some(rep) = local_hit(store, &r, &d, &platform, tag_ref.as_deref())? {
                return up_to_date(store, &t, &repo, rep, opts, progress);
            }
            if is_image {
                head_image = Some(d);
            }
        }
    }
    let st = referrers::StoreTmp::new(store);
    let early = head_image
        .filter(|_| !opts.no_referrers)
        .map(|d| (referrers::known(store, &d), d));
    std::thread::scope(|sc| {
        let early = early.as_ref().map(|(known, d)| {
            let h = sc.spawn(|| referrers::prefetch(&st, &t, &repo, d, known));
            (d.as_str(), h)
        });
        fetch_and_record(
            store, &t, &r, &wanted, &platform, tag_ref, opts, &st, early, progress,
        )
    })
}

/// The referrers' walk started before the manifest was read: its subject and its thread.
type Early<'s, 'a> = Option<(
    &'a str,
    std::thread::ScopedJoinHandle<'s, referrers::Prefetched>,
)>;

/// The rest of a pull that found nothing stored: the manifest (through an index), the
/// config and the layers, the image record, then the referrers (`early`'s walk when its
/// subject is the image's manifest, else one started once the manifest is known).
#[allow(clippy::too_many_arguments)]
fn fetch_and_record<'s, 'a>(
    store: &Store,
    t: &'a Transport,
    r: &Reference,
    wanted: &str,
    platform: &Platform,
    tag_ref: Option<String>,
    opts: &PullOptions,
    st: &'a referrers::StoreTmp,
    early: Early<'s, 'a>,
    progress: &dyn Progress,
) -> Result<PullReport> {
    let repo = r.repository().to_string();
    let top = get_manifest(
        t,
        &repo,
        wanted,
        r.digest().map(|d| d.to_string()).as_deref(),
    )?;
    // Asked by tag and not settled by a HEAD (a first pull, a HEAD without a digest, or
    // one naming an index): the store may hold what the GET names.
    if early.is_none() && r.digest().is_none() {
        if let Some(rep) = local_hit(store, r, &top.digest, platform, tag_ref.as_deref())? {
            return up_to_date(store, t, &repo, rep, opts, progress);
        }
    }
    let mut docs = vec![];
    let image = match &top.parsed {
        Parsed::Index { manifests } => {
            let pick = media::select_platform(manifests, platform).ok_or_else(|| {
                RegistryError::NotFound(format!(
                    "image {} has no manifest for platform {platform}; it offers {}",
                    r.familiar(),
                    media::platforms(manifests)
                ))
            })?;
            let child = get_manifest(t, &repo, &pick.digest, Some(&pick.digest))?;
            if matches!(child.parsed, Parsed::Index { .. }) {
                return Err(RegistryError::protocol(
                    &t.host,
                    format!("index {} points to another index", top.digest),
                ));
            }
            child
        }
        Parsed::Image { .. } => get_manifest_clone(&top),
    };
    let top_digest = top.digest.clone();
    if top.digest != image.digest {
        docs.push(top);
    }
    let Parsed::Image { config, layers, .. } = &image.parsed else {
        return Err(RegistryError::protocol(
            &t.host,
            "the selected manifest is not an image manifest",
        ));
    };
    for l in layers {
        let mt = l.media_type.as_str();
        let ok = mt.is_empty()
            || mt.ends_with(".tar")
            || mt.ends_with(".tar+gzip")
            || mt.ends_with(".tar.gzip")
            || mt.contains("rootfs.diff.tar");
        if !ok {
            return Err(RegistryError::Usage(format!(
                "image {} has a layer of media type '{mt}', which gcr cannot unpack; it may be an artifact, not a container image",
                r.familiar()
            )));
        }
    }
    // The referrers are listed and fetched while the config and the layers download
    // (network only; they are indexed once the image is recorded). An early walk of
    // another subject (the tag moved between HEAD and GET) is ended and dropped.
    let (early, stale) = match early {
        Some((d, h)) if d == image.digest => (Some(h), None),
        other => (None, other.map(|(_, h)| h)),
    };
    let known =
        (!opts.no_referrers && early.is_none()).then(|| referrers::known(store, &image.digest));
    let (rec, prefetched) = std::thread::scope(|sc| {
        let h = known
            .as_ref()
            .map(|k| sc.spawn(|| referrers::prefetch(st, t, &repo, &image.digest, k)));
        let rec = (|| -> Result<(String, usize, usize, u64)> {
            let got = fetch_image(store, t, &repo, &image, config, layers, progress);
            let Blobs {
                cfg_staged,
                cfg_bytes,
                diff_ids,
                missing,
                existing,
                staged,
            } = got?;
            // Everything verified: commit blobs, then the image record.
            let bytes = missing.iter().map(|l| l.size).sum::<u64>()
                + if cfg_staged.is_some() { config.size } else { 0 };
            for (s, l) in staged.into_iter().zip(&missing) {
                s.commit(store, &l.digest)?;
                progress.end(&short(&l.digest), "Pull complete");
            }
            if let Some(s) = cfg_staged {
                s.commit(store, &config.digest)?;
            }
            cas::put_bytes(store, &image.bytes, &image.digest)?;
            for d in &docs {
                cas::put_bytes(store, &d.bytes, &d.digest)?;
            }
            let new = NewImage {
                manifest_digest: image.digest.clone(),
                manifest_media_type: image.media_type.clone(),
                config: cfg_bytes,
                layers: layers
                    .iter()
                    .zip(&diff_ids)
                    .map(|(l, d)| NewLayer {
                        digest: l.digest.clone(),
                        diff_id: d.clone(),
                        media_type: if l.media_type.is_empty() {
                            media::OCI_LAYER_GZIP.to_string()
                        } else {
                            l.media_type.clone()
                        },
                        size: l.size,
                    })
                    .collect(),
                tags: tag_ref.into_iter().collect(),
            };
            let id = store
                .register_images(&[new], "pull")?
                .pop()
                .unwrap_or_default();
            let mut all: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
            all.push(config.digest.clone());
            let _ = cas::record_sources(store, r.registry(), &repo, &all);
            Ok((id, missing.len(), existing, bytes))
        })();
        (rec, h.and_then(|h| h.join().ok()))
    });
    let prefetched = prefetched.or_else(|| early.and_then(|h| h.join().ok()));
    drop(stale.map(|h| h.join()));
    let (id, downloaded, existing, bytes) = rec?;
    let referrers = prefetched.map_or(0, |p| referrers::commit(store, p, progress));
    Ok(PullReport {
        reference: r.full(),
        id,
        digest: top_digest,
        downloaded,
        existing,
        bytes,
        up_to_date: false,
        referrers,
    })
}

/// The config and the layers of an image, fetched and verified, not yet in the CAS.
struct Blobs {
    cfg_staged: Option<Staged>,
    cfg_bytes: Vec<u8>,
    diff_ids: Vec<String>,
    missing: Vec<Descriptor>,
    existing: usize,
    staged: Vec<Staged>,
}

/// Fetches the config (checked against the layer list) and the layers the store lacks.
fn fetch_image(
    store: &Store,
    t: &Transport,
    repo: &str,
    image: &Fetched,
    config: &Descriptor,
    layers: &[Descriptor],
    progress: &dyn Progress,
) -> Result<Blobs> {
    // The config is small: a larger one is refused before anything downloads.
    if config.size > MAX_CONFIG {
        return Err(RegistryError::protocol(
            &t.host,
            format!(
                "config {} is {} bytes, over the 32 MiB limit",
                config.digest, config.size
            ),
        ));
    }
    // Layers the store lacks (each distinct digest once).
    let mut missing: Vec<&Descriptor> = Vec::new();
    let mut existing = 0;
    for l in layers {
        if store.has_blob(&l.digest) {
            existing += 1;
            progress.end(&short(&l.digest), "Already exists");
        } else if !missing.iter().any(|m| m.digest == l.digest) {
            missing.push(l);
        }
    }
    // The config downloads with the layers (one round trip less on the way); the layer
    // list is checked against its diff_ids before anything is committed.
    let tmp = cas::tmp_dir(store);
    let want_cfg = !store.has_blob(&config.digest);
    let jobs: Vec<&Descriptor> = want_cfg
        .then_some(config)
        .into_iter()
        .chain(missing.iter().copied())
        .collect();
    let mut staged = parallel(&jobs, JOBS, |d| {
        let bar: &dyn Progress = if want_cfg && std::ptr::eq(*d, config) {
            &NoBar
        } else {
            progress
        };
        fetch_blob(t, &tmp, repo, d, bar)
    })?;
    let cfg_staged = want_cfg.then(|| staged.remove(0));
    let cfg_bytes = match &cfg_staged {
        Some(s) => std::fs::read(s.file.path())
            .map_err(|e| RegistryError::io("cannot read", s.file.path(), e))?,
        None => store.read_blob(&config.digest)?,
    };
    let cfg: serde_json::Value = serde_json::from_slice(&cfg_bytes).map_err(|e| {
        RegistryError::protocol(
            &t.host,
            format!("image config {} is not valid JSON ({e})", config.digest),
        )
    })?;
    let diff_ids: Vec<String> = cfg
        .get("rootfs")
        .and_then(|x| x.get("diff_ids"))
        .and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    if diff_ids.len() != layers.len() || !diff_ids.iter().all(|d| media::valid_digest(d)) {
        return Err(RegistryError::protocol(
            &t.host,
            format!(
                "manifest {} lists {} layers but its config has {} valid diff_ids",
                image.digest,
                layers.len(),
                diff_ids.len()
            ),
        ));
    }
    Ok(Blobs {
        cfg_staged,
        cfg_bytes,
        diff_ids,
        missing: missing.into_iter().cloned().collect(),
        existing,
        staged,
    })
}

fn get_manifest_clone(f: &Fetched) -> Fetched {
    Fetched {
        bytes: f.bytes.clone(),
        digest: f.digest.clone(),
        media_type: f.media_type.clone(),
        parsed: f.parsed.clone(),
    }
}

/// If `digest` (an index or manifest) is stored and resolves to a stored image for the
/// platform, makes sure the tag points at it and reports "up to date".
fn local_hit(
    store: &Store,
    r: &Reference,
    digest: &str,
    platform: &Platform,
    tag: Option<&str>,
) -> Result<Option<PullReport>> {
    if !media::valid_digest(digest) || !store.has_blob(digest) {
        return Ok(None);
    }
    let mut mdigest = digest.to_string();
    if let Ok(b) = store.read_blob(digest) {
        if let Ok((_, Parsed::Index { manifests })) = media::parse_manifest(&b, None) {
            match media::select_platform(&manifests, platform) {
                Some(d) => mdigest = d.digest.clone(),
                None => return Ok(None),
            }
        }
    }
    let Ok(img) = store.resolve_image(&mdigest) else {
        return Ok(None);
    };
    if img.manifest_digest != mdigest {
        return Ok(None);
    }
    if let Some(t) = tag {
        if !store.image_tags(&img.id)?.iter().any(|x| x == t) {
            store.tag(&img.id, t)?;
        }
    }
    Ok(Some(PullReport {
        reference: r.full(),
        id: img.id,
        digest: digest.to_string(),
        downloaded: 0,
        existing: 0,
        bytes: 0,
        up_to_date: true,
        referrers: 0,
    }))
}

/// A pull that found the image stored: only its referrers new to the store come.
fn up_to_date(
    store: &Store,
    t: &Transport,
    repo: &str,
    mut rep: PullReport,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<PullReport> {
    if !opts.no_referrers {
        let m = store.resolve_image(&rep.id)?.manifest_digest;
        rep.referrers = referrers::pull_referrers(store, t, repo, &m, progress);
    }
    Ok(rep)
}

/// `HEAD` a manifest: its digest, if the registry gives a valid one, and whether its
/// media type is an image manifest's (not an index's).
fn head_manifest(t: &Transport, repo: &str, reference: &str) -> Result<Option<(String, bool)>> {
    let resp = t.send(
        "HEAD",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", ACCEPT_MANIFESTS)],
        &ReqBody::Empty,
    )?;
    if !resp.status().is_success() {
        return Ok(None);
    }
    let is_image = matches!(
        header(&resp, "content-type").map(|c| c.split(';').next().unwrap_or("").trim()),
        Some(media::OCI_MANIFEST) | Some(media::DOCKER_MANIFEST)
    );
    Ok(header(&resp, "docker-content-digest")
        .filter(|d| media::valid_digest(d))
        .map(|d| (d.to_string(), is_image)))
}

/// `GET` a manifest, size-limited and verified (against `expected` and the registry's
/// `Docker-Content-Digest`).
pub(super) fn get_manifest(
    t: &Transport,
    repo: &str,
    reference: &str,
    expected: Option<&str>,
) -> Result<Fetched> {
    let mut resp = t.send(
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", ACCEPT_MANIFESTS)],
        &ReqBody::Empty,
    )?;
    let what = format!("{}/{repo}:{reference}", t.host);
    if resp.status() == 404 {
        return Err(RegistryError::NotFound(format!(
            "manifest for {what} not found; check the name and tag"
        )));
    }
    if !resp.status().is_success() {
        return Err(RegistryError::protocol(
            &t.host,
            format!(
                "fetching manifest {what} failed with {}",
                describe(&mut resp)
            ),
        ));
    }
    if let Some(n) = resp.body().content_length() {
        if n > MAX_MANIFEST {
            return Err(RegistryError::protocol(
                &t.host,
                format!("manifest {what} is {n} bytes, over the 4 MiB limit"),
            ));
        }
    }
    let ctype = header(&resp, "content-type").map(str::to_string);
    let header_digest = header(&resp, "docker-content-digest").map(str::to_string);
    let mut bytes = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::TimedOut || e.to_string().contains("timeout") {
                t.timeout_error()
            } else {
                RegistryError::protocol(&t.host, format!("reading manifest {what} failed: {e}"))
            }
        })?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(RegistryError::protocol(
            &t.host,
            format!("manifest {what} is over the 4 MiB limit"),
        ));
    }
    let digest = media::sha256(&bytes);
    let expected = expected
        .map(str::to_string)
        .or(header_digest.filter(|d| d.starts_with("sha256:")));
    if let Some(e) = expected {
        if e != digest {
            return Err(RegistryError::Digest {
                what: format!("manifest {what}"),
                expected: e,
                actual: digest,
            });
        }
    }
    let (media_type, parsed) = media::parse_manifest(&bytes, ctype.as_deref())
        .map_err(|e| RegistryError::protocol(&t.host, format!("manifest {what}: {e}")))?;
    Ok(Fetched {
        bytes,
        digest,
        media_type,
        parsed,
    })
}
