//! Trust commands: named keys (`gcr key generate|list|import|export|rm`), `gcr sign` and
//! `gcr verify`, composed from gcr-trust (keys, DSSE, in-toto, Sigstore bundles) and
//! gcr-store (the image's blobs, and its OCI 1.1 referrers where signatures live).
//!
//! `sign` checks the image's manifest, config and layer blobs against their digests,
//! signs an in-toto statement about the manifest (sha256 and blake3) and attaches the
//! Sigstore bundle as a referrer of the manifest. `verify` repeats the blob checks, then
//! accepts the image only if one of its signature referrers (or a given bundle file)
//! verifies with the given key and covers exactly this manifest.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use gcr_trust::statement::Statement;
use gcr_trust::{KeyStore, PublicKey, Subject, TrustError, BUNDLE_MEDIA_TYPE, DSSE_MEDIA_TYPE};

pub use gcr_trust::{KeyInfo, Verified};

use crate::{Engine, EngineError};

impl From<TrustError> for EngineError {
    fn from(e: TrustError) -> EngineError {
        match e {
            TrustError::KeyNotFound(_) => EngineError::NotFound(e.to_string()),
            TrustError::KeyExists(_) => EngineError::Conflict(e.to_string()),
            _ => EngineError::Internal(e.to_string()),
        }
    }
}

/// What `gcr sign` made.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Signed {
    pub image: String,
    pub manifest_digest: String,
    #[serde(rename = "KeyID")]
    pub key_id: String,
    /// The referrer (artifact manifest) holding the bundle.
    pub referrer: String,
}

/// One signature that verified, with where it came from and who made it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifiedSignature {
    /// The key name when the key is in the store, else the key file given.
    pub signer: String,
    #[serde(flatten)]
    pub verified: Verified,
    /// The referrer digest, or the bundle file given.
    pub source: String,
}

/// What `gcr verify` checked and found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyReport {
    pub image: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digests: Vec<String>,
    pub signatures: Vec<VerifiedSignature>,
}

/// A signature to try: where it came from, and its bytes or why they could not be read.
pub(crate) type Candidate = (String, Result<Vec<u8>, EngineError>);

/// An image whose manifest, config and layer blobs match their digests.
struct Checked {
    manifest_digest: String,
    manifest: Vec<u8>,
    config_digest: String,
    layers: Vec<String>,
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn damaged(what: &str, digest: &str, image: &str, actual: &str) -> EngineError {
    EngineError::Internal(format!(
        "{what} {digest} of image {image} is damaged (its content hashes to sha256:{actual}); remove the image and pull or load it again"
    ))
}

impl Engine {
    /// The key store under the root.
    pub fn keys(&self) -> KeyStore {
        KeyStore::new(self.root())
    }

    /// `gcr key generate NAME`.
    pub fn key_generate(
        &self,
        name: &str,
        password: Option<&[u8]>,
    ) -> Result<KeyInfo, EngineError> {
        let info = self.keys().generate(name, password)?;
        // The audit ledger records key generation (the key is a file; its event follows).
        crate::container::record::event(
            self.store()?.conn(),
            "key",
            &info.key_id,
            name,
            None,
            Some("generate"),
            info.algorithm,
        )?;
        Ok(info)
    }

    /// `gcr key import NAME FILE`.
    pub fn key_import(
        &self,
        name: &str,
        file: &Path,
        password: Option<&[u8]>,
    ) -> Result<KeyInfo, EngineError> {
        let pem = gcr_trust::keystore::read_key_file(file)?;
        let what = format!("key file {}", file.display());
        Ok(self.keys().import(name, &what, &pem, password)?)
    }

    /// `gcr key list`.
    pub fn key_list(&self) -> Result<Vec<KeyInfo>, EngineError> {
        Ok(self.keys().list()?)
    }

    /// `gcr key export NAME`: the public key, PKIX PEM.
    pub fn key_export(&self, name: &str) -> Result<String, EngineError> {
        Ok(self.keys().public(name)?.to_pem())
    }

    /// `gcr key rm NAME`.
    pub fn key_remove(&self, name: &str) -> Result<(), EngineError> {
        Ok(self.keys().remove(name)?)
    }

    /// True when the stored private key NAME needs a password.
    pub fn key_is_encrypted(&self, name: &str) -> Result<bool, EngineError> {
        Ok(self.keys().is_encrypted(name)?)
    }

    /// `gcr sign IMAGE --key NAME`: signs the image's manifest and attaches the bundle.
    pub fn sign(
        &self,
        image: &str,
        key_name: &str,
        password: Option<&[u8]>,
    ) -> Result<Signed, EngineError> {
        let key = self.keys().private(key_name, password)?;
        let checked = self.check_image(image)?;
        let name = self.subject_name(image, &checked.manifest_digest);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let time = gcr_core::time::format_rfc3339(now);
        let statement =
            Statement::signature(Subject::for_manifest(&name, &checked.manifest), &time);
        let bundle = gcr_trust::verify::sign(&statement, &key)?;
        let mut notes = BTreeMap::new();
        notes.insert("dev.sigstore.bundle.content".into(), "dsse-envelope".into());
        notes.insert(
            "dev.sigstore.bundle.predicateType".into(),
            statement.predicate_type.clone(),
        );
        notes.insert("org.opencontainers.image.created".into(), time);
        let referrer = self.store()?.put_referrer(
            &checked.manifest_digest,
            BUNDLE_MEDIA_TYPE,
            notes,
            BUNDLE_MEDIA_TYPE,
            &bundle,
        )?;
        // The audit ledger records the signature: the manifest, the key, the referrer.
        crate::container::record::event(
            self.store()?.conn(),
            "image",
            &checked.manifest_digest,
            image,
            None,
            Some("sign"),
            &format!("{} {referrer}", key.public().id()),
        )?;
        Ok(Signed {
            image: image.to_string(),
            manifest_digest: checked.manifest_digest,
            key_id: key.public().id().to_string(),
            referrer,
        })
    }

    /// `gcr verify IMAGE --key KEY [--bundle FILE]`: KEY is a stored key's name or a PEM
    /// key file. Succeeds only when the image's blobs are intact and a signature by the
    /// key covers its manifest; the error names what failed otherwise.
    pub fn verify(
        &self,
        image: &str,
        key: &str,
        bundle: Option<&Path>,
    ) -> Result<VerifyReport, EngineError> {
        let (public, signer) = self.verification_key(key)?;
        let checked = self.check_image(image)?;
        let want = Subject::for_manifest("", &checked.manifest);
        let candidates = match bundle {
            Some(file) => {
                let bytes = read_file(file)?;
                vec![(file.display().to_string(), Ok(bytes))]
            }
            None => self.signature_referrers(&checked.manifest_digest)?,
        };
        if candidates.is_empty() {
            return Err(EngineError::NotFound(format!(
                "image {image} has no signature; sign it with `gcr sign {image} --key NAME`"
            )));
        }
        let mut signatures = Vec::new();
        let mut failures = Vec::new();
        for (source, bytes) in candidates {
            let what = if bundle.is_some() {
                format!("bundle file {source}")
            } else {
                format!("signature {source}")
            };
            let result = bytes.and_then(|b| {
                gcr_trust::verify::verify(&what, &b, &public, &want).map_err(EngineError::from)
            });
            match result {
                Ok(verified) => signatures.push(VerifiedSignature {
                    signer: signer.clone(),
                    verified,
                    source,
                }),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if signatures.is_empty() {
            let detail = failures.join("; ");
            return Err(EngineError::Internal(if failures.len() == 1 {
                detail
            } else {
                format!(
                    "no signature of image {image} verifies with key {}: {detail}",
                    public.id()
                )
            }));
        }
        Ok(VerifyReport {
            image: image.to_string(),
            manifest_digest: checked.manifest_digest,
            config_digest: checked.config_digest,
            layer_digests: checked.layers,
            signatures,
        })
    }

    /// Key ids of the store's keys with which a signature referrer of manifest
    /// `manifest_digest` verifies, sorted; empty when it has no signature or none verifies.
    /// The manifest is checked against its digest; layers are not re-hashed (`verify`
    /// does that). `keys` is the store's public keys, read here on first need and kept
    /// by the caller for the next manifest. Used by container DNA. A verdict, once
    /// reached, is remembered in the store (`signature_verdicts`: its inputs are all
    /// content-addressed), so the next `ps` looks it up instead of verifying again.
    pub(crate) fn verified_signers(
        &self,
        manifest_digest: &str,
        keys: &mut Option<Vec<PublicKey>>,
    ) -> Result<Vec<String>, EngineError> {
        let candidates = self.signature_referrer_digests(manifest_digest)?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let publics = match keys {
            Some(k) => k,
            None => keys.insert(self.store_public_keys()?),
        };
        if publics.is_empty() {
            return Ok(Vec::new());
        }
        let memo = self.store()?.signature_verdicts(manifest_digest)?;
        let mut want = None;
        let mut ids = BTreeSet::new();
        let mut reached = Vec::new();
        for digest in candidates {
            let mut bytes = None;
            for key in publics.iter() {
                let ok = match memo.get(&(digest.clone(), key.id().to_string())) {
                    Some(ok) => *ok,
                    None => {
                        let want = match &want {
                            Some(w) => w,
                            None => want.insert(self.manifest_subject(manifest_digest)?),
                        };
                        let b = bytes.get_or_insert_with(|| self.referrer_layer(&digest));
                        // An unreadable signature is no verdict: nothing is remembered.
                        let Ok(b) = b else { continue };
                        let what = format!("signature {digest}");
                        let ok = gcr_trust::verify::verify(&what, b, key, want).is_ok();
                        reached.push((digest.clone(), key.id().to_string(), ok));
                        ok
                    }
                };
                if ok {
                    ids.insert(key.id().to_string());
                }
            }
        }
        // A memo that cannot be written (a read-only store) costs the next call a verify.
        let _ = self
            .store()?
            .record_signature_verdicts(manifest_digest, &reached);
        Ok(ids.into_iter().collect())
    }

    /// The signature subject of stored manifest `manifest_digest`, checked against it.
    fn manifest_subject(&self, manifest_digest: &str) -> Result<Subject, EngineError> {
        let manifest = self.store()?.read_blob(manifest_digest)?;
        let actual = sha256_hex(&manifest);
        if manifest_digest.strip_prefix("sha256:") != Some(actual.as_str()) {
            return Err(damaged(
                "manifest",
                manifest_digest,
                manifest_digest,
                &actual,
            ));
        }
        Ok(Subject::for_manifest("", &manifest))
    }

    /// The public halves of the store's keys (`<root>/keys/*.pub`), without reading the
    /// private ones; a public key that does not parse is skipped (`gcr key list` names it).
    fn store_public_keys(&self) -> Result<Vec<PublicKey>, EngineError> {
        let dir = self.root().join("keys");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(EngineError::Io(
                    format!("cannot read the key directory {}", dir.display()),
                    e,
                ))
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                name.to_str()?.strip_suffix(".pub").map(str::to_string)
            })
            .collect();
        names.sort();
        let keys = self.keys();
        Ok(names.iter().filter_map(|n| keys.public(n).ok()).collect())
    }

    /// The public key `key` names (a stored key, else a PEM file) and the signer's name.
    fn verification_key(&self, key: &str) -> Result<(PublicKey, String), EngineError> {
        let keys = self.keys();
        if keys.exists(key) {
            return Ok((keys.public(key)?, key.to_string()));
        }
        let path = Path::new(key);
        if !path.exists() {
            return Err(EngineError::NotFound(format!(
                "no key named '{key}' and no key file {key}; give a name from `gcr key list` or a PEM public key file"
            )));
        }
        let pem = gcr_trust::keystore::read_key_file(path)?;
        let public = PublicKey::from_pem(&format!("key file {key}"), &pem)?;
        let signer = keys.name_of(public.id()).unwrap_or_else(|| key.to_string());
        Ok((public, signer))
    }

    /// The name a new statement gives its subject: the repository the user named, else
    /// the image's first tag, else its manifest digest.
    fn subject_name(&self, image: &str, manifest_digest: &str) -> String {
        let by_ref = gcr_core::Reference::parse(image)
            .ok()
            .filter(|_| !image.starts_with("sha256:"))
            .map(|r| r.name());
        by_ref
            .or_else(|| {
                let id = self.store().ok()?.resolve_image(image).ok()?.id;
                let tag = self
                    .store()
                    .ok()?
                    .image_tags(&id)
                    .ok()?
                    .into_iter()
                    .next()?;
                gcr_core::Reference::parse(&tag).ok().map(|r| r.name())
            })
            .unwrap_or_else(|| manifest_digest.to_string())
    }

    /// The image's manifest, config and layer blobs, each checked against its digest.
    fn check_image(&self, image: &str) -> Result<Checked, EngineError> {
        let r = self.store()?.resolve_image(image)?;
        let manifest = self.store()?.read_blob(&r.manifest_digest)?;
        let actual = sha256_hex(&manifest);
        if r.manifest_digest.strip_prefix("sha256:") != Some(actual.as_str()) {
            return Err(damaged("manifest", &r.manifest_digest, image, &actual));
        }
        let m: Value = serde_json::from_slice(&manifest).map_err(|e| {
            EngineError::Internal(format!(
                "manifest {} of image {image} is not valid JSON ({e}); remove the image and pull or load it again",
                r.manifest_digest
            ))
        })?;
        let digest_of = |d: &Value| d.get("digest").and_then(Value::as_str).map(str::to_string);
        let config_digest = m.get("config").and_then(digest_of).unwrap_or_default();
        let config = self.store()?.read_blob(&config_digest)?;
        let actual = sha256_hex(&config);
        if config_digest.strip_prefix("sha256:") != Some(actual.as_str()) {
            return Err(damaged("config", &config_digest, image, &actual));
        }
        // The database's copy (what containers are made from) must be the same bytes.
        let db_config = self.store()?.image_config(&r.id)?;
        let actual = sha256_hex(&db_config);
        if config_digest.strip_prefix("sha256:") != Some(actual.as_str()) {
            return Err(damaged(
                "config (database copy)",
                &config_digest,
                image,
                &actual,
            ));
        }
        let layers: Vec<String> = m
            .get("layers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(digest_of).collect())
            .unwrap_or_default();
        for l in &layers {
            let actual = self.store()?.blob_sha256(l)?;
            if *l != actual {
                let hex = actual.strip_prefix("sha256:").unwrap_or(&actual);
                return Err(damaged("layer", l, image, hex));
            }
        }
        Ok(Checked {
            manifest_digest: r.manifest_digest,
            manifest,
            config_digest,
            layers,
        })
    }

    /// The signature artifacts attached to a manifest: each referrer's name and its one
    /// layer's bytes, or why they could not be read intact.
    pub(crate) fn signature_referrers(
        &self,
        manifest_digest: &str,
    ) -> Result<Vec<Candidate>, EngineError> {
        Ok(self
            .signature_referrer_digests(manifest_digest)?
            .into_iter()
            .map(|d| {
                let bytes = self.referrer_layer(&d);
                (d, bytes)
            })
            .collect())
    }

    /// The digests of the signature referrers (Sigstore bundles, DSSE envelopes) of
    /// manifest `manifest_digest`.
    fn signature_referrer_digests(
        &self,
        manifest_digest: &str,
    ) -> Result<Vec<String>, EngineError> {
        let list = self.store()?.referrers(manifest_digest, None)?;
        Ok(list
            .into_iter()
            .filter(|d| {
                d.artifact_type
                    .as_deref()
                    .is_some_and(|t| t == BUNDLE_MEDIA_TYPE || t == DSSE_MEDIA_TYPE)
            })
            .map(|d| d.digest)
            .collect())
    }

    /// The one layer of referrer `digest`, both blobs checked against their digests.
    fn referrer_layer(&self, digest: &str) -> Result<Vec<u8>, EngineError> {
        let manifest = self.store()?.read_blob(digest)?;
        let actual = sha256_hex(&manifest);
        if digest.strip_prefix("sha256:") != Some(actual.as_str()) {
            return Err(EngineError::Internal(format!(
                "signature referrer {digest} is damaged (its manifest hashes to sha256:{actual}); sign the image again"
            )));
        }
        let m: Value = serde_json::from_slice(&manifest).unwrap_or(Value::Null);
        let layer = m
            .pointer("/layers/0/digest")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                EngineError::Internal(format!(
                    "signature referrer {digest} has no layer; sign the image again"
                ))
            })?;
        let bytes = self.store()?.read_blob(layer)?;
        let actual = sha256_hex(&bytes);
        if layer.strip_prefix("sha256:") != Some(actual.as_str()) {
            return Err(EngineError::Internal(format!(
                "the bundle {layer} of signature {digest} is damaged (it hashes to sha256:{actual}); sign the image again"
            )));
        }
        Ok(bytes)
    }
}

/// Reads a bundle file (at most 16 MiB).
fn read_file(path: &Path) -> Result<Vec<u8>, EngineError> {
    let f = std::fs::File::open(path).map_err(|e| {
        EngineError::Io(
            format!("cannot read bundle file {}; check the path", path.display()),
            e,
        )
    })?;
    let mut out = Vec::new();
    f.take(16 << 20)
        .read_to_end(&mut out)
        .map_err(|e| EngineError::Io(format!("cannot read bundle file {}", path.display()), e))?;
    Ok(out)
}
