//! MiniContainer manifests (`ll.minicontainer.v1`, seed 002): one signed JSON document that
//! names an owner, its key slots, encrypted artifacts, the grants that let a runner read
//! them, and a container deployment. This module parses a manifest strictly (every field of
//! the seed, nothing else, no duplicate keys) into [`Manifest`], checks its consistency
//! (`schema`), computes its provenance digest and Ed25519 signature (`provenance`) and reads
//! `.llc` archives (`archive`). Every refusal is an [`McError`]: one of the seed's canonical
//! codes, the field at fault as a JSON path, and a sentence saying what to fix.

mod archive;
mod error;
mod parse;
mod provenance;
mod schema;
mod strict;

pub use archive::{is_zip, read_llc, Llc, MAX_ARCHIVE, MAX_ARTIFACT};
pub use error::{Code, McError};
pub use provenance::{
    digest, grant_payload, payload, sign, verify_provenance, Signer, PROVENANCE_ALG,
};
pub use schema::{is_env_name, GRANT_SCHEME};

use std::collections::BTreeMap;

/// The `type` every manifest carries.
pub const MANIFEST_TYPE: &str = "ll.minicontainer.v1";
/// The largest `manifest.json` read.
pub const MAX_MANIFEST: usize = 1024 * 1024;

/// A manifest as parsed: the typed fields, and the JSON document they came from (what the
/// provenance signature covers).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub version: String,
    pub owner: Owner,
    pub slots: Slots,
    pub artifacts: Vec<Artifact>,
    pub grants: Vec<Grant>,
    pub deploy: Deploy,
    pub ledger_refs: Vec<String>,
    pub ts: String,
    pub provenance: Option<Provenance>,
    /// The document itself.
    pub doc: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct Owner {
    pub user_id: String,
    pub tenant: String,
}

#[derive(Debug, Clone, Default)]
pub struct Slots {
    pub signing: Vec<SigningSlot>,
    pub api: Vec<ApiSlot>,
    pub crypto: Vec<CryptoSlot>,
}

/// A signing key: `pub` is the raw 32-byte Ed25519 public key in hex.
#[derive(Debug, Clone)]
pub struct SigningSlot {
    pub kid: String,
    pub pub_hex: String,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct ApiSlot {
    pub token_id: String,
    pub scopes: Vec<String>,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct CryptoSlot {
    pub kid: String,
    pub alg: String,
    pub status: String,
}

/// An encrypted artifact (a secret): `hash` is `blake3:<hex>` of its clear value.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub id: String,
    pub kind: String,
    pub hash: String,
    pub enc: String,
}

/// A grant: the right of audience `aud` to read artifact `artifact_id` for `ttl`, signed
/// (`sig`, `ed25519:<base64>`) by an active signing slot; `sig` is absent only before
/// `gcr manifest sign`.
#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub artifact_id: String,
    pub scope: Vec<String>,
    pub ttl: String,
    pub aud: String,
    pub sig: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Deploy {
    pub engine: String,
    pub image: String,
    pub entrypoint: Vec<String>,
    /// In document order.
    pub env: Vec<(String, String)>,
    pub ports: Vec<Port>,
    pub memory_bytes: Option<u64>,
    pub read_only_rootfs: bool,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    /// 0: any free host port.
    pub host: u16,
    pub container: u16,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub provider: String,
    pub project_id: Option<String>,
    pub service: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Provenance {
    pub kid: String,
    pub alg: String,
    pub sig: String,
}

impl Manifest {
    /// Parses and checks a manifest: JSON without duplicate keys, every field typed and
    /// known, the fields consistent with each other (see `schema`). Signatures are not
    /// checked here (see [`verify_provenance`]).
    pub fn parse(bytes: &[u8]) -> Result<Manifest, McError> {
        if bytes.len() > MAX_MANIFEST {
            return Err(McError::schema(
                "",
                format!(
                    "the manifest is {} bytes, more than the 1 MiB limit",
                    bytes.len()
                ),
            ));
        }
        let doc = strict::from_slice(bytes)?;
        let m = parse::manifest(doc)?;
        schema::check(&m)?;
        Ok(m)
    }

    /// The grant of this id.
    pub fn grant(&self, id: &str) -> Option<&Grant> {
        self.grants.iter().find(|g| g.id == id)
    }

    /// The artifact of this id.
    pub fn artifact(&self, id: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.id == id)
    }

    /// The grants the environment refers to (`VAR=grant://ID`), by variable.
    pub fn env_grants(&self) -> BTreeMap<String, &Grant> {
        self.deploy
            .env
            .iter()
            .filter_map(|(k, v)| {
                let id = v.strip_prefix(GRANT_SCHEME)?;
                Some((k.clone(), self.grant(id)?))
            })
            .collect()
    }

    /// The name the deployment goes by: `<tenant>-<service>` of its first target with a
    /// service, else `<tenant>-<user_id>`; usable as a container, pod or secret name.
    pub fn deploy_name(&self) -> String {
        let service = self
            .deploy
            .targets
            .iter()
            .find_map(|t| t.service.clone())
            .unwrap_or_else(|| self.owner.user_id.clone());
        let raw = format!("{}-{}", self.owner.tenant, service);
        dns_label(&raw)
    }
}

/// `s` as a DNS label (RFC 1123: lowercase letters, digits and '-', at most 63, starting and
/// ending with a letter or digit), as Kubernetes names need.
pub fn dns_label(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(63);
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "minicontainer".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests;
