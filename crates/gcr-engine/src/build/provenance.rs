//! Build provenance: every `gcr build` attaches an SLSA provenance v1 statement (an in-toto
//! Statement v1, RFC 8785 canonical JSON) to the image it built, as an OCI 1.1 referrer of
//! artifact type `application/vnd.in-toto+json`. With a signing key (`--sign-key`, or
//! `build.signKey` in `<root>/config.json`) it also attaches two Sigstore bundles made as
//! `gcr sign` makes them: the signed provenance, and a signed statement whose predicate is
//! the build's reproducible record (gcr-build's `record`, whose digest the provenance names
//! as its byproduct). Everything in the statement comes from the spec, the context and the
//! base image, never from the clock or the host's paths, so two builds of one spec give the
//! same bytes; a cached rebuild finds its referrers already there and writes nothing.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use gcr_build::record::{self, RECORD_MEDIA_TYPE};
use gcr_build::{Built, Event};
use gcr_trust::statement::{Statement, PAYLOAD_TYPE, STATEMENT_V1};
use gcr_trust::{PrivateKey, Subject, BUNDLE_MEDIA_TYPE};

use crate::{Engine, EngineError};

/// `predicateType` of SLSA provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// `buildType`: gcr's `.gcr` build format (`format: gcr-v1.0`), build type version 1.
pub const BUILD_TYPE: &str = "https://gcr.dev/build/gcr-v1.0@v1";
/// `predicateType` of the signed build record.
pub const RECORD_PREDICATE: &str = "https://gcr.dev/attestations/build-record/v1";
/// Annotation holding the digest of a referrer's one layer (finds it again without a write).
const PAYLOAD_ANNOTATION: &str = "dev.gcr.payload.digest";

/// `"sha256:<hex>"` → `{"sha256": "<hex>"}` (an in-toto DigestSet).
fn digest_set(d: &str) -> Value {
    match d.split_once(':') {
        Some((alg, hex)) => json!({ alg: hex }),
        None => json!({ "sha256": d }),
    }
}

fn sha256_prefixed(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// The SLSA provenance predicate of a build, from its transcript and record digest.
pub fn predicate(transcript: &Value, record_digest: &str) -> Value {
    let s = |p: &str| transcript.pointer(p).and_then(Value::as_str);
    let mut deps = Vec::new();
    if let (Some(name), Some(d)) = (s("/base/name"), s("/base/manifest_digest")) {
        deps.push(json!({
            "name": "base", "uri": format!("oci:{name}"), "digest": digest_set(d),
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
        }));
    }
    for i in transcript
        .get("inputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("");
        match f("kind") {
            "dependency" => deps.push(json!({
                "name": f("name"), "uri": f("source"), "digest": digest_set(f("digest")),
                "annotations": {"version": f("version")},
            })),
            "copy" => deps.push(json!({
                "name": format!("context:{}", if f("src").is_empty() { "." } else { f("src") }),
                "digest": digest_set(f("digest")),
                "annotations": {"files": i.get("files").cloned().unwrap_or(Value::Null)},
            })),
            _ => {}
        }
    }
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "spec": {
                    "path": s("/spec_path").unwrap_or(""),
                    "digest": digest_set(s("/spec_file_digest").unwrap_or("")),
                },
            },
            "internalParameters": {
                "created": s("/created").unwrap_or(""),
                "hermetic": transcript.get("hermetic").cloned().unwrap_or(Value::Null),
                "specDigest": s("/spec_digest").unwrap_or(""),
            },
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {
                "id": "https://gcr.dev/gcr",
                "version": {"gcr": s("/gcr_version").unwrap_or("")},
            },
            "metadata": {},
            "byproducts": [{
                "name": "build-transcript",
                "mediaType": RECORD_MEDIA_TYPE,
                "digest": digest_set(record_digest),
            }],
        },
    })
}

/// A statement about `subject` with the given predicate.
fn statement(subject: &Subject, predicate_type: &str, predicate: Value) -> Statement {
    Statement {
        statement_type: STATEMENT_V1.into(),
        subject: vec![subject.clone()],
        predicate_type: predicate_type.into(),
        predicate,
    }
}

/// The name of the default signing key in `<root>/config.json` (`{"build": {"signKey":
/// "NAME"}}`), if the file exists and names one.
pub fn default_sign_key(root: &Path) -> Result<Option<String>, EngineError> {
    let path = root.join("config.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(EngineError::Io(
                format!("cannot read {}; check its permissions", path.display()),
                e,
            ))
        }
    };
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        EngineError::Usage(format!(
            "{} is not valid JSON ({e}); fix it or remove it",
            path.display()
        ))
    })?;
    match v.pointer("/build/signKey") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(EngineError::Usage(format!(
            "build.signKey in {} must be a key name from `gcr key list`; fix it or remove it",
            path.display()
        ))),
    }
}

impl Engine {
    /// Attaches the provenance of `built` (and, with `key`, the signed provenance and
    /// build record) to its image, reporting each referrer to `emit`.
    pub(crate) fn attach_provenance(
        &self,
        built: &Built,
        key: Option<&PrivateKey>,
        emit: &mut dyn FnMut(&Event),
    ) -> Result<(), EngineError> {
        let store = self.store()?;
        let manifest = store.read_blob(&built.manifest_digest)?;
        let name = built
            .tags
            .first()
            .and_then(|t| gcr_core::Reference::parse(t).ok())
            .map(|r| r.name())
            .unwrap_or_else(|| built.manifest_digest.clone());
        let subject = Subject::for_manifest(&name, &manifest);
        let rec = record::reproducible(&built.transcript);
        let rec_bytes = gcr_trust::canonical::to_vec("the build record", &rec)?;
        let prov = statement(
            &subject,
            SLSA_PROVENANCE_V1,
            predicate(&built.transcript, &sha256_prefixed(&rec_bytes)),
        );
        let existing = store.referrers(&built.manifest_digest, None)?;
        let mut attach = |kind: &str,
                          predicate_type: &str,
                          artifact_type: &str,
                          layer: &[u8],
                          key_id: Option<String>|
         -> Result<(), EngineError> {
            let payload = sha256_prefixed(layer);
            let found = existing.iter().find(|d| {
                d.artifact_type.as_deref() == Some(artifact_type)
                    && d.annotations.get(PAYLOAD_ANNOTATION) == Some(&payload)
            });
            let referrer = match found {
                Some(d) => d.digest.clone(),
                None => {
                    let mut notes = BTreeMap::new();
                    notes.insert(PAYLOAD_ANNOTATION.to_string(), payload);
                    notes.insert("in-toto.io/predicate-type".into(), predicate_type.into());
                    if artifact_type == BUNDLE_MEDIA_TYPE {
                        notes.insert("dev.sigstore.bundle.content".into(), "dsse-envelope".into());
                        notes.insert(
                            "dev.sigstore.bundle.predicateType".into(),
                            predicate_type.into(),
                        );
                    }
                    store.put_referrer(
                        &built.manifest_digest,
                        artifact_type,
                        notes,
                        artifact_type,
                        layer,
                    )?
                }
            };
            emit(&Event::Attestation {
                kind: kind.to_string(),
                predicate_type: predicate_type.to_string(),
                referrer,
                key_id,
            });
            Ok(())
        };
        attach(
            "provenance",
            SLSA_PROVENANCE_V1,
            PAYLOAD_TYPE,
            &prov.to_payload()?,
            None,
        )?;
        if let Some(key) = key {
            let id = Some(key.public().id().to_string());
            let bundle = gcr_trust::verify::sign(&prov, key)?;
            attach(
                "signed provenance",
                SLSA_PROVENANCE_V1,
                BUNDLE_MEDIA_TYPE,
                &bundle,
                id.clone(),
            )?;
            let rec_statement = statement(&subject, RECORD_PREDICATE, rec);
            let bundle = gcr_trust::verify::sign(&rec_statement, key)?;
            attach(
                "signed build record",
                RECORD_PREDICATE,
                BUNDLE_MEDIA_TYPE,
                &bundle,
                id,
            )?;
        }
        Ok(())
    }
}
