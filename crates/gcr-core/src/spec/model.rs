//! The typed `.gcr` spec (format `gcr-v1.0`), SPEC.md §3. Values are already validated
//! and normalized by the parser: paths are cleaned, sizes are bytes, durations are
//! [`Duration`]s, signals are canonical names. `Serialize` gives a stable JSON form
//! (feed it to [`crate::canonical_json`] for hashing).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::digest::Digest;
use crate::reference::Reference;
use crate::time::Timestamp;
use crate::units::format_duration;

/// The only format this parser accepts.
pub const FORMAT: &str = "gcr-v1.0";

/// A whole `.gcr` spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spec {
    /// Always [`FORMAT`].
    pub format: String,
    /// Image repository name (OCI rules), e.g. `myapp`.
    pub name: String,
    /// Image tag, e.g. `1.0.0`.
    pub version: String,
    pub base: Base,
    pub build: Build,
    pub runtime: Runtime,
    pub metadata: Metadata,
}

/// What the image starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// An empty root filesystem.
    Scratch,
    /// An image by reference (normalized, e.g. `docker.io/library/alpine:3.20`).
    Image(Reference),
    /// A local image by ID (`sha256:<hex>`).
    Id(Digest),
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base::Scratch => f.write_str("scratch"),
            Base::Image(r) => write!(f, "{r}"),
            Base::Id(d) => write!(f, "{d}"),
        }
    }
}

impl Serialize for Base {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `build:`; every field defaults to empty.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Build {
    pub copy: Vec<CopyStep>,
    pub dependencies: Vec<Dependency>,
    pub commands: Vec<Command>,
    pub network: BuildNetwork,
    /// Sorted by name, so key order in the file does not change the image.
    pub env: BTreeMap<String, String>,
    /// Secrets mounted at `/run/secrets/<id>` during each command step, never in a layer.
    /// Left out of the serialized form when empty (specs without secrets keep their digest).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<BuildSecret>,
}

/// One `build.secrets` entry: `{id: npmrc, source: npm-token}` or just `npmrc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildSecret {
    /// The file name under `/run/secrets/` and the id of `gcr build --secret id=…`.
    pub id: String,
    /// A stored secret (`gcr secret create`) giving the value when no `--secret id=…`
    /// flag does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One `build.copy` entry; each produces one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyStep {
    /// Relative to the build context, normalized (`./app/` becomes `app/`; the context
    /// itself is `.`). A trailing `/` is kept when it was written.
    pub src: String,
    /// Absolute path in the image, normalized; trailing `/` kept when written.
    pub dest: String,
    /// Optional pin: digest of the layer this copy produces.
    pub hash: Option<Digest>,
    /// Default `0:0`.
    pub owner: Owner,
}

/// Numeric `uid:gid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// One `build.dependencies` entry: an external input verified by `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    pub source: Source,
    pub hash: Digest,
    /// Absolute; default `/opt/deps/<name>-<version>/`.
    pub dest: String,
    /// Unpack `.tar`/`.tar.gz`/`.tgz` instead of copying the file.
    pub extract: bool,
}

/// Where a dependency comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `file://<path>`: `path` is absolute, or relative to the build context (normalized,
    /// never escaping it).
    File(String),
    /// `http://…` or `https://…`, the URL as written.
    Http(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "file://{p}"),
            Source::Http(u) => f.write_str(u),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A command: a string runs under `/bin/sh -c` (shell form), a list is exec form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

impl Command {
    /// The argv to execute: `["/bin/sh", "-c", s]` for shell form.
    pub fn to_argv(&self) -> Vec<String> {
        match self {
            Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
            Command::Exec(v) => v.clone(),
        }
    }
}

/// `build.network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildNetwork {
    /// Hermetic (default).
    #[default]
    None,
    /// The host's network; marks the build non-hermetic.
    Host,
}

/// `runtime:`; becomes the image config.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Runtime {
    pub entrypoint: Option<Command>,
    pub cmd: Option<Command>,
    /// Absolute.
    pub workdir: Option<String>,
    /// `name`, `uid`, `name:group` or `uid:gid`.
    pub user: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub resources: Resources,
    pub ports: Vec<Port>,
    /// Absolute paths.
    pub volumes: Vec<String>,
    pub read_only_rootfs: bool,
    /// Canonical signal name, e.g. `SIGTERM`, `SIGRTMIN+3`.
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
}

/// `runtime.resources`; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Resources {
    /// Bytes.
    pub memory: Option<u64>,
    /// CPUs (> 0), e.g. 1.0 or 0.5.
    pub cpu: Option<f64>,
    pub pids: Option<u64>,
    /// Bytes of writable layer.
    pub storage: Option<u64>,
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// An exposed port, printed `3000/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port {
    pub number: u16,
    pub protocol: Protocol,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        write!(f, "{}/{p}", self.number)
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `runtime.healthcheck`, with Docker's defaults filled in (interval 30s, timeout 30s,
/// retries 3, start_period 0s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    pub command: Command,
    #[serde(serialize_with = "ser_duration")]
    pub interval: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    pub retries: u32,
    #[serde(serialize_with = "ser_duration")]
    pub start_period: Duration,
}

impl Healthcheck {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_RETRIES: u32 = 3;
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// `metadata:`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Metadata {
    pub author: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// Image `created`; `None` means SOURCE_DATE_EPOCH, else the Unix epoch (the build
    /// decides; see [`Metadata::created_or`]).
    pub created: Option<Timestamp>,
}

impl Metadata {
    /// `created`, else the given SOURCE_DATE_EPOCH seconds, else 1970-01-01T00:00:00Z.
    pub fn created_or(&self, source_date_epoch: Option<i64>) -> Timestamp {
        self.created
            .or(source_date_epoch.map(Timestamp::from_unix))
            .unwrap_or(Timestamp::EPOCH)
    }
}
