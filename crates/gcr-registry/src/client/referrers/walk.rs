//! The pull half of referrers: list the referrers of the pulled manifest on the registry,
//! fetch, verify and stage those the store lacks (off the store's thread, while the image's
//! layers download), then move them into the CAS and index them once the image is recorded.
//!
//! The walk is pipelined: the referrers of a level are fetched while their own referrers
//! are listed, so a signature without referrers of its own costs no extra round trip. The
//! first listing asks the referrers API and reads the `sha256-<hex>` fallback tag at once,
//! so a registry without the API costs no extra round trip either. The empty config
//! (`{}`, shared by nearly every artifact) is never downloaded: its bytes are known, so it
//! is written locally, once per pull, and its digest checked like any other blob's.

use super::fallback_tag;
use crate::cas::{self, Staged};
use crate::client::fetch::{fetch_blob, NoBar};
use crate::client::pull::get_manifest;
use crate::client::transport::{describe, ReqBody, Transport};
use crate::client::{parallel, short, Progress, JOBS};
use crate::error::{RegistryError, Result};
use crate::media::{self, Descriptor, Parsed, MAX_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use gcr_store::{parse_referrer, Store, EMPTY_BLOB};
use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// How many levels of referrers of referrers a pull follows.
const MAX_DEPTH: usize = 4;
/// The most referrers one pull brings (a registry cannot make a pull endless).
const MAX_REFERRERS: usize = 1000;
/// Digest of the empty blob `{}` (the OCI empty descriptor's).
pub(crate) const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

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

    /// Moves a staged file that [`flush`] made durable into the CAS as `digest` (no-op if
    /// present), off the store's thread: a pull's referrers reach the CAS while the image
    /// downloads, as its layers do, and only their rows wait for the image's.
    fn persist(&self, s: Staged, digest: &str) -> Result<()> {
        let Some(hex) = digest
            .strip_prefix("sha256:")
            .filter(|h| media::valid_digest(digest) && !h.contains('/'))
        else {
            return Err(RegistryError::Usage(format!("bad digest {digest}")));
        };
        let dest = self.blobs.join(hex);
        if dest.exists() {
            return Ok(());
        }
        s.file
            .persist(&dest)
            .map_err(|e| RegistryError::io("cannot move blob into", &dest, e.error))?;
        Ok(())
    }

    /// True when the CAS holds `digest` (checked well-formed by the caller).
    fn has(&self, digest: &str) -> bool {
        digest
            .strip_prefix("sha256:")
            .is_some_and(|h| self.blobs.join(h).exists())
    }
}

/// A referrer fetched and verified, its manifest and blobs staged (and, once its level is
/// done, flushed).
struct Got {
    subject: String,
    digest: String,
    bytes: Vec<u8>,
    staged: Vec<(String, Staged)>,
    /// Its config is the empty blob, which the store lacked (written once, by the walk).
    empty: bool,
}

/// Referrers fetched from the registry, not yet in the store: what [`prefetch`] found,
/// in subject order, and the error that ended its walk, if any.
pub(crate) struct Prefetched {
    subject: String,
    got: Vec<Got>,
    error: Option<RegistryError>,
    /// Requests sent to list referrers (for tests).
    listings: usize,
    /// Blobs downloaded (for tests).
    downloads: usize,
}

impl Prefetched {
    /// How many referrer listings and blob downloads the walk sent.
    #[cfg(test)]
    pub(crate) fn requests(&self) -> (usize, usize) {
        (self.listings, self.downloads)
    }
}

/// The digests of the referrers the store already has for `subject` (and theirs): a
/// prefetch skips fetching them.
pub(crate) fn known(store: &Store, subject: &str) -> HashSet<String> {
    store
        .referrer_closure(subject)
        .map(|v| v.into_iter().map(|d| d.digest).collect())
        .unwrap_or_default()
}

/// One piece of a level of the walk; a level's jobs run at once.
enum Job<'a> {
    /// Fetch, verify and stage a referrer of a subject.
    Fetch(&'a str, &'a Descriptor),
    /// List a referrer's own referrers.
    List(&'a str),
    /// List the own referrers of a level's referrers on a registry without the referrers
    /// API: one tag list tells which have a fallback tag (one job, one request).
    ListTagged(Vec<&'a str>),
    /// Write the empty blob locally.
    Empty,
}

impl Job<'_> {
    /// True when the job needs no request: a referrer whose manifest the listing embeds
    /// (its blobs are embedded too, or fetched then), or the empty blob.
    fn is_local(&self) -> bool {
        match self {
            Job::Fetch(_, d) => d.data.is_some(),
            Job::List(_) | Job::ListTagged(_) => false,
            Job::Empty => true,
        }
    }
}

enum Done {
    Got(Got),
    /// Subjects and their referrers.
    Listed(Vec<(String, Vec<Descriptor>)>),
    Empty(Staged),
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
        listings: 0,
        downloads: 0,
    };
    let no_api = AtomicBool::new(false);
    let tags = OnceLock::new();
    let mut seen: HashSet<String> = HashSet::new();
    let first = list_first(t, repo, subject, &no_api);
    out.listings += 1;
    let mut level = match first {
        Ok(list) => admit(subject, list, &mut seen),
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    let mut empty_wanted = !st.has(EMPTY_DIGEST);
    let downloads = std::sync::atomic::AtomicUsize::new(0);
    for depth in 0..MAX_DEPTH {
        if level.is_empty() {
            break;
        }
        let mut jobs: Vec<Job> = Vec::new();
        let listed = depth + 1 < MAX_DEPTH;
        let tagged = listed && no_api.load(Ordering::Relaxed);
        for (s, d) in &level {
            if !known.contains(&d.digest) {
                jobs.push(Job::Fetch(s, d));
            }
            if listed && !tagged {
                jobs.push(Job::List(&d.digest));
            }
        }
        if tagged {
            jobs.push(Job::ListTagged(
                level.iter().map(|(_, d)| d.digest.as_str()).collect(),
            ));
        }
        if empty_wanted && jobs.iter().any(|j| matches!(j, Job::Fetch(..))) {
            empty_wanted = false;
            jobs.push(Job::Empty);
        }
        let run = |j: &Job| match j {
            Job::Fetch(s, d) => fetch_referrer(st, t, repo, s, d, &downloads).map(Done::Got),
            Job::List(d) => list_remote(t, repo, d, &no_api, &tags)
                .map(|l| Done::Listed(vec![(d.to_string(), l)])),
            Job::ListTagged(ds) => ds
                .iter()
                .map(|d| list_remote(t, repo, d, &no_api, &tags).map(|l| (d.to_string(), l)))
                .collect::<Result<Vec<_>>>()
                .map(Done::Listed),
            Job::Empty => stage_empty(st).map(Done::Empty),
        };
        // What needs the network runs on fetch threads; what the listing carried (gcr's
        // fallback indexes embed each referrer) is written and flushed on this one, one
        // file after the other: a few small fsyncs cost less CPU in a row than at once.
        let (local, remote): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(Job::is_local);
        let done = std::thread::scope(|sc| {
            let h = (!remote.is_empty()).then(|| sc.spawn(|| parallel(&remote, JOBS, run)));
            let here = local
                .iter()
                .map(run)
                .collect::<Result<Vec<Done>>>()
                .and_then(flush_done);
            let there = h.map_or(Ok(Vec::new()), |h| {
                h.join()
                    .unwrap_or_else(|_| Err(RegistryError::Usage("a fetch thread stopped".into())))
            });
            let mut all = here?;
            all.extend(flush_done(there?)?);
            Ok(all)
        });
        let done = match done {
            Ok(d) => d,
            Err(e) => {
                out.error = Some(e);
                break;
            }
        };
        // Into the CAS as soon as they are flushed (the empty blob with the first referrer
        // that needs it): only their rows wait for the image.
        let mut next = Vec::new();
        let mut empty = None;
        let mut got = Vec::new();
        for d in done {
            match d {
                Done::Got(g) => got.push(g),
                Done::Listed(lists) => {
                    for (s, list) in lists {
                        out.listings += 1;
                        next.extend(admit(&s, list, &mut seen));
                    }
                }
                Done::Empty(s) => empty = Some(s),
            }
        }
        for mut g in got {
            let needs = g.empty.then(|| empty.take()).flatten();
            let staged = needs
                .map(|s| (EMPTY_DIGEST.to_string(), s))
                .into_iter()
                .chain(std::mem::take(&mut g.staged));
            let mut persisted = Ok(());
            for (digest, s) in staged {
                persisted = persisted.and_then(|()| st.persist(s, &digest));
            }
            match persisted {
                Ok(()) => out.got.push(g),
                Err(e) => out.error = Some(e),
            }
        }
        level = next;
    }
    out.downloads = downloads.into_inner();
    out
}

/// fsyncs every file the jobs `done` staged: each was [`kick`]ed when written, so the
/// fsyncs find the writes under way or done; the walk's own thread makes them, once each.
fn flush_done(done: Vec<Done>) -> Result<Vec<Done>> {
    for d in &done {
        match d {
            Done::Got(g) => {
                for (_, s) in &g.staged {
                    flush(s)?;
                }
            }
            Done::Empty(s) => flush(s)?,
            Done::Listed(..) => {}
        }
    }
    Ok(done)
}

/// The referrers of `subject` in `list` not seen before (within the pull's limit).
fn admit(
    subject: &str,
    list: Vec<Descriptor>,
    seen: &mut HashSet<String>,
) -> Vec<(String, Descriptor)> {
    let mut out = Vec::new();
    for d in list {
        if seen.len() >= MAX_REFERRERS || !seen.insert(d.digest.clone()) {
            continue;
        }
        out.push((subject.to_string(), d));
    }
    out
}

/// Store half: indexes what [`prefetch`] put into the CAS (the subject must be recorded by
/// now), all referrers in one transaction (one by one if that fails, so those that can be
/// kept are); returns how many referrers are new. Failures are reported through
/// `progress`, never failing the pull.
pub(crate) fn commit(store: &Store, p: Prefetched, progress: &dyn Progress) -> usize {
    let mut added = 0;
    let mut error = p.error;
    let all: Vec<&[u8]> = p.got.iter().map(|g| g.bytes.as_slice()).collect();
    let batch = store.index_referrers(&all).is_ok();
    for Got {
        subject,
        digest,
        bytes,
        ..
    } in &p.got
    {
        if !batch {
            if let Err(e) = store.index_referrer(bytes) {
                error = Some(e.into());
                break;
            }
        }
        added += 1;
        progress.message(&format!(
            "referrer {} of {}: pulled",
            short(digest),
            short(subject)
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

/// The first listing of a pull: the referrers API and the fallback tag asked at once (a
/// registry without the API then costs no extra round trip). The API's answer wins when
/// it has one; the tag's is used only when the API is missing.
fn list_first(
    t: &Transport,
    repo: &str,
    subject: &str,
    no_api: &AtomicBool,
) -> Result<Vec<Descriptor>> {
    std::thread::scope(|sc| {
        let tag = sc.spawn(|| fallback_list(t, repo, subject));
        let api = list_api(t, repo, subject);
        let tag = tag
            .join()
            .unwrap_or_else(|_| Err(RegistryError::Usage("a listing thread stopped".into())));
        match api? {
            Some(list) => Ok(list),
            None => {
                no_api.store(true, Ordering::Relaxed);
                tag
            }
        }
    })
}

/// Lists the referrers of `subject`: the referrers API unless the registry was found
/// without one, else the fallback tag (when the repository's tag list, read once, has it).
fn list_remote(
    t: &Transport,
    repo: &str,
    subject: &str,
    no_api: &AtomicBool,
    tags: &OnceLock<Option<HashSet<String>>>,
) -> Result<Vec<Descriptor>> {
    if !no_api.load(Ordering::Relaxed) {
        if let Some(list) = list_api(t, repo, subject)? {
            return Ok(list);
        }
        no_api.store(true, Ordering::Relaxed);
    }
    let listed = tags.get_or_init(|| super::tags::all_tags(t, repo));
    if listed
        .as_ref()
        .is_some_and(|l| !l.contains(&fallback_tag(subject)))
    {
        return Ok(Vec::new());
    }
    fallback_list(t, repo, subject)
}

/// The referrers API's answer for `subject`: `None` when the registry has no such API
/// (404, 405, 400; the answer is read to its end, so the connection serves the next
/// request).
fn list_api(t: &Transport, repo: &str, subject: &str) -> Result<Option<Vec<Descriptor>>> {
    let mut resp = t.send(
        "GET",
        &format!("/v2/{repo}/referrers/{subject}"),
        &[("Accept", OCI_INDEX)],
        &ReqBody::Empty,
    )?;
    let status = resp.status().as_u16();
    if matches!(status, 404 | 405 | 400) {
        let _ = describe(&mut resp);
        return Ok(None);
    }
    if status != 200 {
        return Err(RegistryError::protocol(
            &t.host,
            format!(
                "listing the referrers of {subject} failed with {}",
                describe(&mut resp)
            ),
        ));
    }
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
        Ok((_, Parsed::Index { manifests })) => Ok(Some(keep_manifests(manifests))),
        Ok(_) | Err(_) => Err(RegistryError::protocol(
            &t.host,
            format!("its referrers answer for {subject} is not an image index"),
        )),
    }
}

/// The referrers of `subject` by the `sha256-<hex>` fallback tag (absent = none).
fn fallback_list(t: &Transport, repo: &str, subject: &str) -> Result<Vec<Descriptor>> {
    match get_manifest(t, repo, &fallback_tag(subject), None) {
        Ok(f) => match f.parsed {
            Parsed::Index { manifests } => Ok(keep_manifests(manifests)),
            Parsed::Image { .. } => Ok(Vec::new()),
        },
        Err(RegistryError::NotFound(_)) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Only OCI image manifests with a well-formed digest are referrers here.
fn keep_manifests(manifests: Vec<Descriptor>) -> Vec<Descriptor> {
    manifests
        .into_iter()
        .filter(|d| d.media_type == OCI_MANIFEST && media::valid_digest(&d.digest))
        .collect()
}

/// Writes the empty blob `{}` into a staged file and checks its digest.
fn stage_empty(st: &StoreTmp) -> Result<Staged> {
    let mut s = Staged::new(&st.tmp)?;
    s.write(EMPTY_BLOB)?;
    let actual = s.digest();
    if actual != EMPTY_DIGEST {
        return Err(RegistryError::Digest {
            what: "the empty blob".into(),
            expected: EMPTY_DIGEST.into(),
            actual,
        });
    }
    kick(&s);
    Ok(s)
}

/// Starts writing a staged file back (`sync_file_range`, not waiting), as soon as it is
/// written; [`flush_done`] makes it durable with the others of its level.
fn kick(s: &Staged) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range on a descriptor the staged file owns; no memory is passed.
    unsafe {
        libc::sync_file_range(
            s.file.as_file().as_raw_fd(),
            0,
            0,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// fsyncs a staged file (before it moves into the CAS).
fn flush(s: &Staged) -> Result<()> {
    s.file
        .as_file()
        .sync_all()
        .map_err(|e| RegistryError::io("cannot fsync", s.file.path(), e))
}

/// Fetches and verifies one referrer manifest and stages the blobs the store lacks (the
/// empty config excepted: [`stage_empty`] writes it once for all).
fn fetch_referrer(
    st: &StoreTmp,
    t: &Transport,
    repo: &str,
    subject: &str,
    d: &Descriptor,
    downloads: &std::sync::atomic::AtomicUsize,
) -> Result<Got> {
    // A listing may carry the manifest itself (`data`, as gcr's fallback indexes do).
    let (digest, bytes) = match d.embedded() {
        Some(b) => (d.digest.clone(), b),
        None => {
            let f = get_manifest(t, repo, &d.digest, Some(&d.digest))?;
            (f.digest, f.bytes)
        }
    };
    let m = parse_referrer(&bytes)?;
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
    let mut empty = false;
    if !st.has(&digest) {
        let mut s = Staged::new(&st.tmp)?;
        s.write(&bytes)?;
        kick(&s);
        staged.push((digest.clone(), s));
    }
    let blobs = fetch_blobs(st, t, repo, &m.blobs, &staged, &mut empty, downloads)?;
    staged.extend(blobs);
    Ok(Got {
        subject: subject.to_string(),
        digest,
        bytes,
        staged,
        empty,
    })
}

/// Downloads (or takes from their embedded `data`) and verifies the blobs of a
/// referrer the store lacks (not those in `staged` already; the empty blob only noted in
/// `empty`).
fn fetch_blobs(
    st: &StoreTmp,
    t: &Transport,
    repo: &str,
    blobs: &[gcr_store::Descriptor],
    staged: &[(String, Staged)],
    empty: &mut bool,
    downloads: &std::sync::atomic::AtomicUsize,
) -> Result<Vec<(String, Staged)>> {
    let mut out: Vec<(String, Staged)> = Vec::new();
    for b in blobs {
        let have = |x: &(String, Staged)| x.0 == b.digest;
        if st.has(&b.digest) || staged.iter().any(have) || out.iter().any(have) {
            continue;
        }
        if b.digest == EMPTY_DIGEST && b.size == EMPTY_BLOB.len() as u64 {
            *empty = true;
            continue;
        }
        // Small content embedded in the manifest (`data`) needs no request.
        if let Some(bytes) = b
            .data
            .as_deref()
            .and_then(|d| media::embedded(d, &b.digest, b.size))
        {
            let mut s = Staged::new(&st.tmp)?;
            s.write(&bytes)?;
            kick(&s);
            out.push((b.digest.clone(), s));
            continue;
        }
        let desc = Descriptor {
            media_type: b.media_type.clone(),
            digest: b.digest.clone(),
            size: b.size,
            platform: None,
            artifact_type: None,
            annotations: None,
            data: None,
        };
        downloads.fetch_add(1, Ordering::Relaxed);
        let s = fetch_blob(t, &st.tmp, repo, &desc, &NoBar)?;
        kick(&s);
        out.push((b.digest.clone(), s));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
