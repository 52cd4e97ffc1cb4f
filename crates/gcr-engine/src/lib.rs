//! gcr-engine: the application layer. Image commands, the container lifecycle (create, run,
//! start, stop, kill, pause, rm, ...), the per-container supervisor, logs and events,
//! composed from gcr-store (disk) and gcr-runtime (Linux execution). Both front-ends (the
//! CLI now, the API daemon later) call only this crate.

/// The runc personality (`gcr-runc`, `gcr oci`), for the CLI.
pub use gcr_oci as oci;
pub mod audit;
pub mod build;
pub mod children;
pub mod container;
pub mod docker_events;
pub mod events;
pub mod housekeeper;
pub mod idempotency;
pub mod image_io;
pub mod images;
pub mod logfile;
pub mod logs;
pub mod manifest;
pub mod manifest_apply;
pub mod manifest_plan;
pub mod metrics;
pub mod names;
pub mod network;
pub mod ocispec;
pub mod policy;
pub mod prestart;
pub mod prune;
pub mod registry;
pub mod resolve;
mod rundir;
pub mod secrets;
pub mod storecell;
pub mod timing;
pub mod trash;
pub mod trust;
pub mod usage;
pub mod volumes;

// What the CLI uses of the crates below the engine, so that it talks to the engine only.
pub use gcr_build::Event as BuildEvent;
pub use gcr_core::dockerfile::words::glob_match as dockerfile_glob;
pub use gcr_core::lifecycle::{humanize_ago, State};
pub use gcr_core::Reference;
pub use gcr_store::{tree_size, ArchiveFormat, DoctorOptions, Progress, StoreError};

/// Sizes as the CLI reads and prints them.
pub mod units {
    pub use gcr_core::units::{format_size_binary, human_size, parse_size};
}

/// The port-publishing relay daemon (`gcr __proxy`).
pub mod proxy {
    pub use gcr_net::dns::Resolver;
    pub use gcr_net::proxy::{daemonize, serve, Relay};
    pub use gcr_net::Proto;
}

use std::path::{Path, PathBuf};

use gcr_store::Store;

/// Errors of the engine; each maps to a Docker-compatible exit code.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
    /// gcr refused to do what was asked (a build whose context holds secrets): exit 125.
    #[error("{0}")]
    Refused(String),
    /// A registry refused the credentials (or asked for some): the API's 401.
    #[error("{0}")]
    Unauthorized(String),
    /// The container's command could not be started: exit 126 or 127.
    #[error("{msg}")]
    Exec { msg: String, code: i32 },
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] gcr_store::StoreError),
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// Refused by policy (see [`policy`]): the CLI prints the POLICY_DENY JSON line, exit 125.
    #[error("{}", crate::policy::deny_json(rule, reason))]
    PolicyDeny { rule: String, reason: String },
}

impl EngineError {
    /// Exit code for commands other than `run`: 1, or 2 for usage errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Usage(_) => 2,
            EngineError::PolicyDeny { .. } => 125,
            EngineError::Refused(_) => 125,
            EngineError::Exec { code, .. } => *code,
            _ => 1,
        }
    }

    /// Exit code for `run`/`start -a`/`exec`: 125 when gcr failed, 126/127 for the command.
    pub fn run_exit_code(&self) -> i32 {
        match self {
            EngineError::Exec { code, .. } => *code,
            _ => 125,
        }
    }
}

/// An open engine: the store plus the run-time state directory.
pub struct Engine {
    pub store: storecell::StoreCell,
    root: PathBuf,
    run_dir: PathBuf,
}

impl Engine {
    /// Opens (creating if needed) the store at `root`; run-time state goes to `run_dir`.
    pub fn open(root: &Path, run_dir: &Path) -> Result<Engine, EngineError> {
        timing::mark("store: opening");
        let store = storecell::StoreCell::ready(Store::open(root)?);
        timing::mark("store: open");
        Ok(Engine {
            store,
            root: root.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
        })
    }

    /// An engine whose store opens when first used or on a helper thread meanwhile (see
    /// [`storecell`]): for a foreground `gcr run`, which can prepare its container from the
    /// image cache first, and may leave its store work to the housekeeper.
    pub fn open_deferred(root: &Path, run_dir: &Path) -> Engine {
        Engine {
            store: storecell::StoreCell::deferred(root.to_path_buf()),
            root: root.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
        }
    }

    /// The store, waiting for it when it is still opening (see [`storecell`]); the error of
    /// an open that failed.
    pub fn store(&self) -> Result<&Store, EngineError> {
        self.store.wait()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The directory of one container in the store.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// The run-time directory of one container.
    pub fn container_run_dir(&self, id: &str) -> PathBuf {
        self.run_dir.join(id)
    }
}

/// The host's cgroup layout as gcr sees it (`V1`/`V2`), for `gcr info`.
pub fn cgroup_version() -> Option<String> {
    gcr_runtime::cgroups::CgroupManager::detect()
        .ok()
        .map(|m| format!("{:?}", m.version()))
}
