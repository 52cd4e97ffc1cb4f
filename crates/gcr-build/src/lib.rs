//! gcr-build turns a `.gcr` spec (SPEC.md §3) into an image in a gcr store: one
//! deterministic layer per copy step, dependency and command (sorted tar entries, mtime =
//! created, fixed gzip header), an image config and manifest in canonical JSON, a step cache
//! keyed by hash(parent chain ID, canonical step, input digests), a file-metadata index so an
//! unchanged context is not re-read, and a build transcript stored with the image.
//! Commands run through a [`Runner`] supplied by the engine (which owns the runtime).

mod builder;
pub mod cache;
pub mod compress;
mod config;
pub mod context;
mod copy;
mod deps;
pub mod diff;
pub mod dockerfile;
mod error;
pub mod ignore;
mod layout;
pub mod record;
pub mod scan;
mod step;
mod upper;
pub use upper::drop_file_stub;

use std::path::PathBuf;

pub use builder::{build, load_spec, BuildOptions, Built};
pub use error::{BuildError, Result};

/// One command to run inside the image under construction.
/// The network of a build's command steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuildNet {
    /// A loopback-only network (hermetic).
    None,
    /// The host's network (non-hermetic).
    Host,
    /// The default bridge network, as docker build gives RUN steps (non-hermetic; the
    /// default of Dockerfile builds).
    #[default]
    Bridge,
}

impl BuildNet {
    /// The name `--network` and `RUN --network` use (`default` for the bridge).
    pub fn as_str(self) -> &'static str {
        match self {
            BuildNet::None => "none",
            BuildNet::Host => "host",
            BuildNet::Bridge => "default",
        }
    }
}

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
    /// The step's network (`.gcr` specs: none unless `build.network: host`; Dockerfiles:
    /// the default bridge network unless `--network` says otherwise).
    pub network: BuildNet,
    /// The build secrets to mount (the runner holds the values; they never pass through
    /// this crate).
    pub secrets: Vec<StepSecret>,
    /// `USER` of the step (`name|uid[:group|gid]`, resolved by the runner in the image's
    /// own files); empty for root.
    pub user: String,
    /// Extra mounts (a Dockerfile's `RUN --mount`).
    pub mounts: Vec<StepMount>,
}

/// A build secret mounted into a command step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSecret {
    pub id: String,
    /// Absolute path in the container (default `/run/secrets/<id>`).
    pub target: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl StepSecret {
    /// The secret `id` at `/run/secrets/<id>`, root's, mode 0400 (BuildKit's default).
    pub fn default_for(id: &str) -> StepSecret {
        StepSecret {
            id: id.to_string(),
            target: format!("/run/secrets/{id}"),
            uid: 0,
            gid: 0,
            mode: 0o400,
        }
    }
}

/// An extra mount of a command step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepMount {
    /// A host directory or file (a build context path, a cache directory).
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs { target: String, size: Option<u64> },
    /// The merged, read-only view of layer directories (top first): another stage or
    /// image (`--mount=type=bind,from=STAGE`).
    Layers {
        lowers: Vec<PathBuf>,
        target: String,
    },
}

/// Runs build commands (implemented by the engine with gcr-runtime).
pub trait Runner: Sync {
    /// Runs the command to completion, passing each output line (stdout and stderr) to
    /// `output`; returns its exit code, or why it could not be started.
    fn run(
        &self,
        req: &RunRequest,
        output: &mut dyn FnMut(&str),
    ) -> std::result::Result<i32, String>;
}

/// What happened to a step in an [`Event::Progress`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    Start {
        text: String,
    },
    /// A line the step's command printed.
    Line {
        line: String,
    },
    Done {
        cached: bool,
        duration_ms: f64,
    },
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
    /// A Dockerfile step as a terminal display shows it, sent the moment it happens (also
    /// from stages building in parallel, whose other events come when their wave ends):
    /// `id` names the step, `label` is BuildKit's `[stage n/m]`.
    Progress {
        id: String,
        label: String,
        #[serde(flatten)]
        phase: Phase,
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
