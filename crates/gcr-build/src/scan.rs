//! Secret scanning of the build context: before any step runs, every file a copy step
//! takes from the context (after `.gcrignore`) is searched for private keys, cloud access
//! keys and tokens (the rules of [`rules`], a subset of gitleaks' defaults). The search
//! uses the bytes read for the file's digest, so a file is read once (and runs on a
//! second thread while the walk goes on, see [`Worker`]); a file the
//! file-metadata index already knows unchanged was scanned clean when it was indexed (only
//! clean files are indexed while scanning; see `context::FileIndex`). Files over
//! [`MAX_SCAN_BYTES`] and binary files (a NUL byte in their first 8000 bytes, git's test)
//! are not searched. A hit refuses the build unless the file is under a path given with
//! `--allow-secret`; messages name the file, line and rule and never the secret.

pub mod rules;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::OnceLock;
use std::thread::JoinHandle;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use sha2::{Digest as _, Sha256};

use crate::error::{BuildError, Result};
use rules::{Check, Rule, RULES};

/// Files larger than this are not scanned (their content is hashed as usual).
pub const MAX_SCAN_BYTES: u64 = 1 << 20;

/// How many leading bytes are searched for a NUL byte to call a file binary.
const BINARY_SNIFF: usize = 8000;

/// Hits reported per file at most (the rest of the file is not searched further).
const MAX_HITS_PER_FILE: usize = 8;

/// Bytes of a match prefix shown at most.
const MAX_PREVIEW: usize = 48;

/// One possible secret in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The rule's id.
    pub rule: &'static str,
    /// What the rule finds ("an AWS access key id").
    pub what: &'static str,
    /// 1-based line of the match's start.
    pub line: usize,
    /// The match's non-secret prefix followed by `…` (never the secret itself).
    pub preview: String,
}

/// The compiled rules: one set to learn which rules match, and each rule alone to find
/// where.
pub struct Scanner {
    set: RegexSet,
    each: Vec<Regex>,
}

static SCANNER: OnceLock<std::result::Result<Scanner, String>> = OnceLock::new();

/// The scanner, compiled on first use (about as long as reading a few hundred small files:
/// a build that reads no file never compiles it).
pub fn scanner() -> Result<&'static Scanner> {
    SCANNER
        .get_or_init(Scanner::compile)
        .as_ref()
        .map_err(|e| BuildError::Usage(format!("the secret-scanning rules do not compile: {e}")))
}

/// A digest of the rule table and limits (without compiling the rules): the file index
/// trusts earlier verdicts only when they were reached under the same rules.
pub fn rules_digest() -> &'static str {
    static DIGEST: OnceLock<String> = OnceLock::new();
    DIGEST.get_or_init(|| {
        let mut h = Sha256::new();
        for r in RULES {
            h.update(format!("{}\0{}\0{}\0{:?}\n", r.id, r.pattern, r.show, r.check).as_bytes());
        }
        h.update(format!("{MAX_SCAN_BYTES} {BINARY_SNIFF} {MAX_HITS_PER_FILE}").as_bytes());
        format!("sha256:{}", hex::encode(h.finalize()))
    })
}

impl Scanner {
    fn compile() -> std::result::Result<Scanner, String> {
        let set = RegexSetBuilder::new(RULES.iter().map(|r| r.pattern))
            .unicode(false)
            .size_limit(64 << 20)
            .dfa_size_limit(16 << 20)
            .build()
            .map_err(|e| e.to_string())?;
        let each = RULES
            .iter()
            .map(|r| {
                RegexBuilder::new(r.pattern)
                    .unicode(false)
                    .build()
                    .map_err(|e| format!("rule {}: {e}", r.id))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Scanner { set, each })
    }

    /// The hits in one file's bytes, in rule order then position (empty for binary input).
    pub fn scan(&self, bytes: &[u8]) -> Vec<Hit> {
        if is_binary(bytes) {
            return Vec::new();
        }
        let mut hits = Vec::new();
        for i in self.set.matches(bytes).iter() {
            let (rule, re) = (&RULES[i], &self.each[i]);
            for c in re.captures_iter(bytes) {
                let Some(m) = c.get(0) else { continue };
                if !passes(
                    rule,
                    bytes,
                    m.end(),
                    m.as_bytes(),
                    c.get(1).map(|g| g.as_bytes()),
                ) {
                    continue;
                }
                let line = 1 + bytes[..m.start()].iter().filter(|b| **b == b'\n').count();
                let preview = preview(rule, m.as_bytes(), c.get(1).map(|g| g.start() - m.start()));
                hits.push(Hit {
                    rule: rule.id,
                    what: rule.what,
                    line,
                    preview,
                });
                if hits.len() >= MAX_HITS_PER_FILE {
                    return hits;
                }
            }
        }
        hits
    }
}

/// Git's test for binary content: a NUL byte near the start.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_SNIFF)].contains(&0)
}

fn passes(rule: &Rule, file: &[u8], end: usize, m: &[u8], group: Option<&[u8]>) -> bool {
    match rule.check {
        Check::None => true,
        Check::Entropy { bits } => {
            let v = group.unwrap_or(m);
            v.iter().any(u8::is_ascii_alphabetic)
                && v.iter().any(u8::is_ascii_digit)
                && entropy(v) >= bits
        }
        Check::NotExample => !m.ends_with(b"EXAMPLE"),
        Check::HasPrivateKeyField => contains(file, b"\"private_key\""),
        Check::PemBody => pem_body(file.get(end..).unwrap_or_default()),
    }
}

/// Shannon entropy in bits per byte.
pub fn entropy(v: &[u8]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for b in v {
        counts[*b as usize] += 1;
    }
    let n = v.len() as f32;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// What follows a PEM header (`rest`) holds a key: a run of at least 40 base64 bytes
/// (key bodies are lines of 64 or 70; prose that merely names the header has no such
/// words) before the next `-----END`, within 4 KiB.
fn pem_body(rest: &[u8]) -> bool {
    let rest = &rest[..rest.len().min(4096)];
    let end = rest
        .windows(8)
        .position(|w| w == b"-----END")
        .unwrap_or(rest.len());
    let mut run = 0;
    for b in &rest[..end] {
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=') {
            run += 1;
            if run >= 40 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

fn preview(rule: &Rule, m: &[u8], group_start: Option<usize>) -> String {
    let (shown, more) = match group_start {
        _ if rule.show == usize::MAX => (m, false),
        Some(g) => (&m[..g], true),
        None => (&m[..rule.show.min(m.len() / 3)], true),
    };
    let shown = &shown[..shown.len().min(MAX_PREVIEW)];
    let mut s: String = String::from_utf8_lossy(shown)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if more {
        s.push('…');
    }
    s
}

/// Reads a regular file once for its sha256 digest, and returns its bytes for the scan
/// unless it is over [`MAX_SCAN_BYTES`] (then it is streamed through the hash only).
pub(crate) fn read_for_scan(path: &Path, size: u64) -> Result<(String, Option<Vec<u8>>)> {
    if size > MAX_SCAN_BYTES {
        return Ok((crate::context::sha256_file(path)?, None));
    }
    let mut f = std::fs::File::open(path).map_err(BuildError::io("cannot read", path))?;
    let mut bytes = Vec::with_capacity(size as usize + 1);
    // `take` bounds the read if the file grew since its metadata was read.
    (&mut f)
        .take(MAX_SCAN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(BuildError::io("cannot read", path))?;
    if bytes.len() as u64 > MAX_SCAN_BYTES {
        return Ok((crate::context::sha256_file(path)?, None));
    }
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Ok((digest, Some(bytes)))
}

type Found = Vec<(PathBuf, Vec<Hit>)>;

/// Scans files on a second thread (which also compiles the rules) while the build goes on
/// walking, reading and hashing; at most [`QUEUE`] files wait in memory.
pub(crate) struct Worker {
    tx: Option<SyncSender<(PathBuf, Vec<u8>)>>,
    handle: Option<JoinHandle<std::result::Result<Found, String>>>,
}

/// Files queued for the scan thread at most (each at most [`MAX_SCAN_BYTES`]).
const QUEUE: usize = 32;

impl Worker {
    pub(crate) fn start() -> Result<Worker> {
        let (tx, rx) = sync_channel::<(PathBuf, Vec<u8>)>(QUEUE);
        let handle = std::thread::Builder::new()
            .name("gcr-scan".into())
            .spawn(move || {
                let s = scanner().map_err(|e| e.to_string())?;
                let mut found = Vec::new();
                for (path, bytes) in rx {
                    let hits = s.scan(&bytes);
                    if !hits.is_empty() {
                        found.push((path, hits));
                    }
                }
                Ok(found)
            })
            .map_err(BuildError::io(
                "cannot start the secret-scan thread for",
                "the build",
            ))?;
        Ok(Worker {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    /// Queues one file's bytes.
    pub(crate) fn send(&mut self, path: PathBuf, bytes: Vec<u8>) -> Result<()> {
        match &self.tx {
            Some(tx) if tx.send((path, bytes)).is_ok() => Ok(()),
            // The thread ended early: its result says why.
            _ => self.finish().map(|_| ()),
        }
    }

    /// Waits for the queued files; returns the files with hits.
    pub(crate) fn finish(&mut self) -> Result<Found> {
        self.tx = None;
        let Some(h) = self.handle.take() else {
            return Ok(Vec::new());
        };
        match h.join() {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(e)) => Err(BuildError::Usage(e)),
            Err(_) => Err(BuildError::Usage(
                "the secret scan of the build context failed; retry, or report a bug".into(),
            )),
        }
    }
}

/// The `--allow-secret` paths, relative to the context (`""` allows the whole context).
#[derive(Debug, Clone, Default)]
pub struct Allow(Vec<String>);

impl Allow {
    /// Normalizes the given paths against the canonical context `ctx`: relative paths
    /// (`./` and a trailing `/` allowed), or absolute paths inside the context.
    pub fn new(ctx: &Path, paths: &[String]) -> Result<Allow> {
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            let rel = match Path::new(p).strip_prefix(ctx) {
                Ok(r) => r.to_string_lossy().into_owned(),
                Err(_) if p.starts_with('/') => {
                    return Err(BuildError::Usage(format!(
                        "--allow-secret {p} is outside the build context {}; give a path relative to the context",
                        ctx.display()
                    )))
                }
                Err(_) => p.clone(),
            };
            let mut parts = Vec::new();
            for c in rel.split('/') {
                match c {
                    "" | "." => {}
                    ".." => {
                        return Err(BuildError::Usage(format!(
                            "--allow-secret {p} leaves the build context; give a path relative to the context without '..'"
                        )))
                    }
                    c => parts.push(c),
                }
            }
            out.push(parts.join("/"));
        }
        Ok(Allow(out))
    }

    /// Whether the context-relative file `rel` is allowed (it is, or is under, a path).
    pub fn allows(&self, rel: &str) -> bool {
        self.0.iter().any(|a| {
            a.is_empty()
                || rel == a
                || (rel.len() > a.len()
                    && rel.starts_with(a.as_str())
                    && rel.as_bytes()[a.len()] == b'/')
        })
    }
}

/// The refusal: one sentence per hit, naming file, line and rule, and the ways out.
pub fn refusal(found: &[(String, Hit)]) -> BuildError {
    let lines = found
        .iter()
        .map(|(path, h)| {
            format!(
                "{path}:{} has what looks like {} (rule {}, {}); remove it from the file, list the file in .gcrignore, or pass --allow-secret {path} if the image must contain it",
                h.line, h.what, h.rule, h.preview
            )
        })
        .collect();
    BuildError::SecretsFound(lines)
}

#[cfg(test)]
mod tests;
