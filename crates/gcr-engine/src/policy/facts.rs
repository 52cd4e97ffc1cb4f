//! The image verdict of the policy gate: which transport and identity an image has in the
//! store, what the image policy says about it, its registry and the store's keys that
//! verified its signatures; cached in the run dir for the next run of the same image
//! under the same policy files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use gcr_trust::policy::dockerref::DockerRef;
use gcr_trust::policy::image::{ImageDecision, ImageFacts, Signature};

use super::Loaded;
use crate::{Engine, EngineError};

/// What the gate knows about one image under one policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// None when there is no image policy.
    pub image: Option<ImageDecision>,
    /// `host[:port]` the image was pulled from, or `local`.
    pub registry: String,
    /// Key ids of the store's keys whose signatures of the image verify (only computed
    /// when the run policy names signers).
    pub signers: Vec<String>,
}

/// An image's identity in the policy's terms.
pub struct Identity {
    pub transport: &'static str,
    pub reference: Option<DockerRef>,
    pub registry: String,
}

fn cache_path(run_dir: &Path, root: &Path, digest: &str, name: &str, id: &str) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut h = Sha256::new();
    for part in [
        digest.as_bytes(),
        root.as_os_str().as_bytes(),
        name.as_bytes(),
        id.as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    run_dir
        .join("policy")
        .join(hex::encode(&h.finalize()[..16]))
}

fn save(path: &Path, v: &Verdict) {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let Some(dir) = path.parent() else { return };
    let _ = std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir);
    let Ok(bytes) = serde_json::to_vec(v) else {
        return;
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes));
    if written.is_ok() {
        let _ = std::fs::rename(&tmp, path);
    } else {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The image reference as the user gave it, normalized; None when it names an id.
fn named(image_ref: &str, id: &str) -> Option<gcr_core::Reference> {
    let hexpart = image_ref.strip_prefix("sha256:").unwrap_or(image_ref);
    let is_hex = hexpart.len() >= 4 && hexpart.bytes().all(|b| b.is_ascii_hexdigit());
    if image_ref.starts_with("sha256:")
        || (is_hex && id.trim_start_matches("sha256:").starts_with(hexpart))
    {
        return None;
    }
    gcr_core::Reference::parse(image_ref).ok()
}

pub(super) fn docker_ref(r: &gcr_core::Reference) -> DockerRef {
    DockerRef {
        name: r.name(),
        tag: r.tag().map(str::to_string).or_else(|| {
            r.digest()
                .is_none()
                .then(|| gcr_core::reference::DEFAULT_TAG.to_string())
        }),
        digest: r.digest().map(|d| d.to_string()),
    }
}

impl Engine {
    /// Transport, identity and registry of image `id` named `image_ref`.
    pub(crate) fn policy_identity(
        &self,
        image_ref: &str,
        id: &str,
        manifest_digest: &str,
    ) -> Result<Identity, EngineError> {
        let sources: Vec<(String, String)> = {
            let conn = self.store()?.conn();
            let mut st = conn.prepare_cached(
                "SELECT registry, repository FROM registry_blob_sources WHERE digest = ?1 ORDER BY registry, repository",
            )?;
            let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let name = named(image_ref, id);
        if sources.is_empty() {
            return Ok(Identity {
                transport: "gcr",
                reference: name.as_ref().map(docker_ref),
                registry: "local".into(),
            });
        }
        Ok(match name {
            Some(r) => Identity {
                transport: "docker",
                registry: r.registry().to_string(),
                reference: Some(docker_ref(&r)),
            },
            None => Identity {
                transport: "docker",
                registry: sources[0].0.clone(),
                reference: Some(DockerRef {
                    name: format!("{}/{}", sources[0].0, sources[0].1),
                    tag: None,
                    digest: Some(manifest_digest.to_string()),
                }),
            },
        })
    }

    /// The image decision for image `id` (manifest `manifest_digest`) in `ident`.
    pub(crate) fn image_decision(
        &self,
        loaded: &Loaded,
        ident: &Identity,
        manifest_digest: &str,
    ) -> Result<Option<ImageDecision>, EngineError> {
        let Some(file) = &loaded.image else {
            return Ok(None);
        };
        let policy = file.policy()?;
        let manifest = self.store()?.read_blob(manifest_digest)?;
        let candidates = self.signature_referrers(manifest_digest)?;
        let owned: Vec<(String, Vec<u8>)> = candidates
            .into_iter()
            .filter_map(|(s, b)| b.ok().map(|b| (s, b)))
            .collect();
        let sigs: Vec<Signature<'_>> = owned
            .iter()
            .map(|(s, b)| Signature {
                source: s,
                bytes: b,
            })
            .collect();
        Ok(Some(policy.evaluate(&ImageFacts {
            transport: ident.transport,
            reference: ident.reference.as_ref(),
            manifest: &manifest,
            signatures: &sigs,
        })))
    }

    /// The verdict for image `id` named `image_ref`, from the run dir's cache when this
    /// policy allowed it before.
    pub(crate) fn policy_verdict(
        &self,
        loaded: &Loaded,
        image_ref: &str,
        id: &str,
    ) -> Result<Verdict, EngineError> {
        let path = cache_path(self.run_dir(), self.root(), &loaded.digest, image_ref, id);
        if let Some(v) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Verdict>(&b).ok())
        {
            return Ok(v);
        }
        let manifest_digest = self.store()?.resolve_image(id)?.manifest_digest;
        let ident = self.policy_identity(image_ref, id, &manifest_digest)?;
        let image = self.image_decision(loaded, &ident, &manifest_digest)?;
        let wants_signers = loaded
            .run
            .as_ref()
            .is_some_and(|(_, r)| !r.signers.is_empty());
        let signers = if wants_signers {
            self.verified_signers(&manifest_digest, &mut None)?
        } else {
            Vec::new()
        };
        let v = Verdict {
            image,
            registry: ident.registry,
            signers,
        };
        if v.image.as_ref().is_none_or(|d| d.allowed)
            && crate::rundir::ensure(self.run_dir()).is_ok()
        {
            save(&path, &v);
        }
        Ok(v)
    }
}
