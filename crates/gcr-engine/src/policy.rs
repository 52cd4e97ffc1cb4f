//! The policy gate: `create`, `run`, `start`, `build` (its base) and `pull` consult the
//! image policy (`<root>/policy.json` or `--policy FILE`, containers-policy.json) and the
//! run policy (`<root>/run-policy.json` or `--run-policy FILE`) before anything exists:
//! no record, directory, cgroup or mount is made for a refused container. Without either
//! file the gate costs one failed open() each and changes nothing.
//!
//! Images are judged in one of two transports: `docker` when the store recorded pulling
//! the image's config blob from a registry (`registry_blob_sources`), else `gcr` (built,
//! imported or loaded here). The image verdict (scope, requirements, verified signers,
//! registry) is cached in `<run dir>/policy/` (0700) keyed by the policy files' digest, the
//! store, the name and the image id, so a run whose verdict is cached neither opens the
//! database nor verifies Ed25519 again; only allows are cached (a refused image may be
//! signed next). Run rules are evaluated every time (pure, microseconds). Ceilings fill in
//! a container's missing limits before its config is stored. Refusals are `policy` events
//! (`to_state` `deny`, cause the rule); an allow is written into the container's stored
//! config (`Policy`) and its `create` event's cause.

mod facts;
mod gate;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use gcr_trust::policy::image::ImagePolicy;
use gcr_trust::policy::run::RunPolicy;

pub use gate::{CheckReport, RunCheck};
pub use gcr_trust::policy::image::ImageDecision;

use crate::EngineError;

/// The policy files given on the command line (or by env), if any.
#[derive(Debug, Default)]
struct Files {
    image: Option<PathBuf>,
    run: Option<PathBuf>,
}

static FILES: OnceLock<Files> = OnceLock::new();

/// Sets the policy files for this process (`--policy`, `--run-policy`); without them the
/// store's `policy.json` and `run-policy.json` are used when they exist.
pub fn configure(image: Option<PathBuf>, run: Option<PathBuf>) {
    let _ = FILES.set(Files { image, run });
}

/// The image policy file: its bytes, compiled on first use. A run whose verdict is cached
/// (keyed by the files' digest, so only bytes that compiled before have one) never
/// compiles it: the hot path pays two reads and a hash, not a parse of every scope.
pub struct ImageFile {
    pub path: PathBuf,
    bytes: Vec<u8>,
    compiled: OnceLock<Result<ImagePolicy, String>>,
}

impl ImageFile {
    /// The compiled image policy; an error naming the file, line and column.
    pub fn policy(&self) -> Result<&ImagePolicy, EngineError> {
        self.compiled
            .get_or_init(|| {
                crate::timing::mark("policy: image policy compiled");
                ImagePolicy::parse(&self.path.display().to_string(), &self.bytes)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| EngineError::Usage(e.clone()))
    }
}

/// The policies of this process and the digest of their files.
pub struct Loaded {
    pub image: Option<ImageFile>,
    pub run: Option<(PathBuf, RunPolicy)>,
    /// sha256 hex over both files' bytes.
    pub digest: String,
}

static LOADED: OnceLock<Option<Loaded>> = OnceLock::new();

/// Reads `given` (must exist) or `default` (may be missing).
fn read(
    given: Option<&PathBuf>,
    default: PathBuf,
) -> Result<Option<(PathBuf, Vec<u8>)>, EngineError> {
    let (path, must) = match given {
        Some(p) => (p.clone(), true),
        None => (default, false),
    };
    match std::fs::read(&path) {
        Ok(b) => Ok(Some((path, b))),
        Err(e) if !must && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::Usage(format!(
            "cannot read policy file {}: {e}; check the path",
            path.display()
        ))),
    }
}

/// The `keyPath` values of an image policy's bytes, in order (none without the word, so a
/// policy without key files pays one search, not a parse).
fn key_paths(bytes: &[u8]) -> Vec<String> {
    if !bytes.windows(9).any(|w| w == b"\"keyPath\"") {
        return Vec::new();
    }
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("keyPath", serde_json::Value::String(p)) => out.push(p.clone()),
                        _ => walk(x, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        walk(&v, &mut out);
    }
    out
}

fn usage(e: gcr_trust::policy::PolicyError) -> EngineError {
    EngineError::Usage(e.to_string())
}

/// Reads the policy files and compiles the run policy (once per process; the image policy
/// compiles when first needed, see [`ImageFile`]); None when there are none.
pub fn load(root: &Path) -> Result<Option<&'static Loaded>, EngineError> {
    if let Some(l) = LOADED.get() {
        return Ok(l.as_ref());
    }
    crate::timing::mark("policy: load");
    let files = FILES.get_or_init(Files::default);
    let image = read(files.image.as_ref(), root.join("policy.json"))?;
    let run = read(files.run.as_ref(), root.join("run-policy.json"))?;
    if image.is_none() && run.is_none() {
        return Ok(LOADED.get_or_init(|| None).as_ref());
    }
    let mut h = Sha256::new();
    for f in [&image, &run] {
        match f {
            Some((_, b)) => {
                h.update((b.len() as u64).to_le_bytes());
                h.update(b);
            }
            None => h.update(u64::MAX.to_le_bytes()),
        }
    }
    // A verdict also depends on the keys `keyPath`s name: their bytes join the digest, so
    // a replaced (rotated, revoked) key file is never judged by an older verdict.
    if let Some((_, b)) = &image {
        for key in key_paths(b) {
            match std::fs::read(&key) {
                Ok(k) => {
                    h.update((k.len() as u64).to_le_bytes());
                    h.update(&k);
                }
                Err(_) => h.update((u64::MAX - 1).to_le_bytes()),
            }
        }
    }
    let digest = hex::encode(h.finalize());
    crate::timing::mark("policy: files read and hashed");
    let image = image.map(|(path, bytes)| ImageFile {
        path,
        bytes,
        compiled: OnceLock::new(),
    });
    let run = match run {
        Some((p, b)) => {
            let pol = RunPolicy::parse(&p.display().to_string(), &b).map_err(usage)?;
            Some((p, pol))
        }
        None => None,
    };
    let loaded = Loaded { image, run, digest };
    Ok(LOADED.get_or_init(|| Some(loaded)).as_ref())
}

/// The error of a refusal: printed by the CLI as the POLICY_DENY JSON line, exit 125.
pub fn deny(rule: &str, reason: &str) -> EngineError {
    EngineError::PolicyDeny {
        rule: rule.to_string(),
        reason: reason.to_string(),
    }
}

/// The JSON line of a refusal.
pub fn deny_json(rule: &str, reason: &str) -> String {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        code: &'a str,
        rule: &'a str,
        reason: &'a str,
    }
    let line = Line {
        code: "POLICY_DENY",
        rule,
        reason,
    };
    serde_json::to_string(&line).unwrap_or_default()
}
