//! Container DNA (`gcr inspect --dna`, the `Dna` field of `gcr ps --format json`): one
//! digest over what defines a container, made of three parts:
//! - `image`: the manifest digest of the container's image;
//! - `signers`: the sorted key ids of the store's keys that verify one of the image's
//!   signature referrers (the engine's verification code; empty when none does);
//! - `runtime`: `sha256:` of the RFC 8785 canonical JSON of [`RuntimeDefinition`], built
//!   from the stored record only (command, env names, workdir, user, limits, capabilities
//!   and security switches, mounts, network mode and published ports, init).
//!
//! The DNA is `sha256:` of the canonical JSON of the parts. Identity and state (id, name,
//! hostname, addresses, anonymous volume names, env values, times) are left out, so two
//! containers made with the same image and flags share a DNA, and a stop/start keeps it.
//! Signers are verified once per manifest per process ([`DnaCache`]), so `ps` of many
//! containers of one image verifies once.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::record::Record;
use crate::volumes::plan::{Plan, Planned};
use crate::{Engine, EngineError};

/// Version of [`RuntimeDefinition`]'s shape; part of the hashed document.
pub const RUNTIME_DEFINITION_VERSION: u32 = 1;

/// What defines a container at run time, as hashed into the `runtime` part.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuntimeDefinition {
    /// [`RUNTIME_DEFINITION_VERSION`].
    pub version: u32,
    /// The resolved argv (entrypoint and command).
    pub command: Vec<String>,
    /// Names of the environment variables, sorted and unique (values are left out).
    pub env_names: Vec<String>,
    pub workdir: String,
    pub user: User,
    pub limits: Limits,
    pub security: Security,
    /// Sorted by destination.
    pub mounts: Vec<Mount>,
    pub network: Network,
    /// `--init`.
    pub init: bool,
}

/// The process's user and groups.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Resource limits (absent = unlimited).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Limits {
    /// `--memory`, bytes.
    pub memory: Option<u64>,
    /// `--memory-swap`, bytes (-1 = unlimited).
    pub memory_swap: Option<i64>,
    /// `--cpus` in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
}

/// The capability set and the other isolation switches.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Security {
    /// `CAP_` names of the effective set, in number order.
    pub capabilities: Vec<String>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub seccomp: bool,
    pub read_only_rootfs: bool,
}

/// One mount. Anonymous volumes have no source (their names are random).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Mount {
    /// `volume`, `anonymous-volume`, `bind` or `tmpfs`.
    pub kind: &'static str,
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    pub options: Vec<String>,
}

/// The network mode and what is published.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Network {
    pub mode: String,
    /// `-p` as given, sorted.
    pub publish: Vec<String>,
    /// `-P`.
    pub publish_all: bool,
}

/// The three parts the DNA digest covers.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DnaParts {
    /// The image manifest digest.
    pub image: String,
    /// Key ids that verify a signature of the image, sorted.
    pub signers: Vec<String>,
    /// `sha256:` of the canonical [`RuntimeDefinition`].
    pub runtime: String,
}

/// A container's DNA, its parts, and the runtime definition behind the `runtime` part.
#[derive(Debug, Clone, Serialize)]
pub struct Dna {
    pub dna: String,
    pub parts: DnaParts,
    pub runtime_definition: RuntimeDefinition,
}

/// Per-process memo: image id -> manifest digest, manifest digest -> verified signers,
/// and the store's public keys (read once, when the first signed image is met).
#[derive(Debug, Default)]
pub struct DnaCache {
    manifests: HashMap<String, String>,
    signers: HashMap<String, Vec<String>>,
    keys: Option<Vec<gcr_trust::PublicKey>>,
}

impl RuntimeDefinition {
    /// The definition of the container stored as `r` (no I/O).
    pub fn of(r: &Record) -> RuntimeDefinition {
        let (o, c) = (&r.config.opts, &r.config.resolved);
        let env_names: BTreeSet<String> = c
            .env
            .iter()
            .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_string())
            .collect();
        let mut mounts: Vec<Mount> = Plan::from_value(&c.volume_data)
            .mounts
            .iter()
            .map(mount_of)
            .collect();
        mounts.sort_by(|a, b| a.destination.cmp(&b.destination));
        let mut publish = o.publish.clone();
        publish.sort();
        RuntimeDefinition {
            version: RUNTIME_DEFINITION_VERSION,
            command: c.args.clone(),
            env_names: env_names.into_iter().collect(),
            workdir: c.cwd.clone(),
            user: User {
                uid: c.uid,
                gid: c.gid,
                additional_gids: c.additional_gids.clone(),
            },
            limits: Limits {
                memory: o.memory,
                memory_swap: o.memory_swap,
                nano_cpus: o.cpus.map(|x| (x * 1e9).round() as i64),
                pids_limit: o.pids_limit,
            },
            security: Security {
                capabilities: gcr_runtime::caps::names(c.caps_mask),
                privileged: o.privileged,
                no_new_privileges: c.no_new_privileges,
                seccomp: c.seccomp,
                read_only_rootfs: o.read_only,
            },
            mounts,
            network: Network {
                mode: c.network.clone(),
                publish,
                publish_all: o.publish_all,
            },
            init: o.init,
        }
    }
}

fn mount_of(m: &Planned) -> Mount {
    match m {
        Planned::Volume {
            name,
            dest,
            ro,
            anonymous,
        } => Mount {
            kind: if *anonymous {
                "anonymous-volume"
            } else {
                "volume"
            },
            source: if *anonymous {
                String::new()
            } else {
                name.clone()
            },
            destination: dest.clone(),
            read_only: *ro,
            options: Vec::new(),
        },
        Planned::Bind {
            source,
            dest,
            ro,
            propagation,
        } => Mount {
            kind: "bind",
            source: source.clone(),
            destination: dest.clone(),
            read_only: *ro,
            options: propagation.iter().cloned().collect(),
        },
        Planned::Tmpfs { dest, options } => Mount {
            kind: "tmpfs",
            source: String::new(),
            destination: dest.clone(),
            read_only: false,
            options: options.clone(),
        },
    }
}

/// `sha256:<hex>` of the RFC 8785 canonical JSON of `value`.
fn canonical_digest<T: Serialize>(what: &str, value: &T) -> Result<String, EngineError> {
    let bytes = gcr_trust::canonical::to_vec(what, value)?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(&bytes))))
}

impl Engine {
    /// `gcr inspect --dna CONTAINER`.
    pub fn container_dna(&self, key: &str) -> Result<Dna, EngineError> {
        let r = self.container(key)?;
        self.dna_of(&r, &mut DnaCache::default())
    }

    /// The DNA of the stored container `r`; `cache` carries verified signers between calls.
    pub fn dna_of(&self, r: &Record, cache: &mut DnaCache) -> Result<Dna, EngineError> {
        let image = match cache.manifests.get(&r.image_id) {
            Some(m) => m.clone(),
            None => {
                let found = self.store()?.resolve_image(&r.image_id).map_err(|_| {
                    EngineError::NotFound(format!(
                        "image {} of container {} is no longer in the store, so the container has no DNA; pull or load the image again",
                        r.image_id, r.name
                    ))
                })?;
                cache
                    .manifests
                    .insert(r.image_id.clone(), found.manifest_digest.clone());
                found.manifest_digest
            }
        };
        let signers = match cache.signers.get(&image) {
            Some(s) => s.clone(),
            None => {
                let s = self.verified_signers(&image, &mut cache.keys)?;
                cache.signers.insert(image.clone(), s.clone());
                s
            }
        };
        let definition = RuntimeDefinition::of(r);
        let runtime = canonical_digest(
            &format!("the runtime definition of container {}", r.name),
            &definition,
        )?;
        let parts = DnaParts {
            image,
            signers,
            runtime,
        };
        let dna = canonical_digest(&format!("the DNA of container {}", r.name), &parts)?;
        Ok(Dna {
            dna,
            parts,
            runtime_definition: definition,
        })
    }
}
