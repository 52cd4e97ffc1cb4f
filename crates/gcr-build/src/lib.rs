//! gcr-build turns a `.gcr` spec (SPEC.md §3) into an image in a gcr store: one
//! deterministic layer per copy step, dependency and command (sorted tar entries, mtime =
//! created, fixed gzip header), an image config and manifest in canonical JSON, a step cache
//! keyed by hash(parent chain ID, canonical step, input digests), a file-metadata index so an
//! unchanged context is not re-read, and a build transcript stored with the image.
//! Commands run through a [`Runner`] supplied by the engine (which owns the runtime).

mod builder;
pub mod cache;
mod config;
pub mod context;
mod copy;
mod deps;
pub mod diff;
mod error;
pub mod ignore;
mod layout;
pub mod record;
pub mod scan;
mod upper;

use std::path::PathBuf;

pub use builder::{build, load_spec, BuildOptions, Built};
pub use error::{BuildError, Result};

/// One command to run inside the image under construction.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// A unique id for the run (container id style).
    pub id: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// Overlay lower directories, top layer first (never empty).
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Where the overlay is mounted.
    pub target: PathBuf,
    /// `build.network: host`; otherwise the command gets a loopback-only network.
    pub network_host: bool,
    /// Ids of the build secrets to mount at `/run/secrets/<id>` (the runner holds the
    /// values; they never pass through this crate).
    pub secrets: Vec<String>,
}

/// Runs build commands (implemented by the engine with gcr-runtime).
pub trait Runner {
    /// Runs the command to completion, passing each output line (stdout and stderr) to
    /// `output`; returns its exit code, or why it could not be started.
    fn run(
        &self,
        req: &RunRequest,
        output: &mut dyn FnMut(&str),
    ) -> std::result::Result<i32, String>;
}

/// Progress of a build, one value per event (`--progress json` prints them as they come).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        name: String,
        spec: String,
        copies: usize,
        dependencies: usize,
        commands: usize,
    },
    Base {
        base: String,
        id: Option<String>,
    },
    Section {
        kind: &'static str,
        count: usize,
    },
    Step {
        index: usize,
        kind: &'static str,
        description: String,
        cached: bool,
        duration_ms: f64,
        layer: String,
        files: Option<usize>,
    },
    Output {
        index: usize,
        line: String,
    },
    /// An attestation attached to the built image as an OCI referrer (emitted by the
    /// engine after `Done`): `provenance` (SLSA v1 statement), or a signed bundle of the
    /// provenance or of the build record.
    Attestation {
        kind: String,
        predicate_type: String,
        referrer: String,
        key_id: Option<String>,
    },
    Done {
        id: String,
        manifest: String,
        size: u64,
        tags: Vec<String>,
        steps: usize,
        cached: usize,
        duration_ms: f64,
    },
}
