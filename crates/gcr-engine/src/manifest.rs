//! MiniContainer manifests (seed 002) as a deployment unit: `gcr manifest verify`, `sign`,
//! `apply` (`manifest_apply`) and `plan` (`manifest_plan`). Files are read here (a JSON
//! manifest or an `.llc` archive, recognized by its zip signature) with size limits, parsed
//! and checked by gcr-trust, and checked against what only the engine knows: the image
//! reference's syntax (gcr-core) and whether the signer's key is one of the store's keys.
//! Every refusal is an [`McError`] with the seed's code and the field at fault.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use gcr_trust::minicontainer::{self as mc, Llc};
pub use gcr_trust::minicontainer::{Code, Manifest, McError, Signer};

use crate::Engine;

/// A manifest read from a file, with the archive it came in.
pub struct Loaded {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub archive: Option<Llc>,
}

/// What `gcr manifest verify` found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManifestReport {
    pub file: String,
    /// `blake3:<hex>` of the signed canonical payload.
    pub digest: String,
    /// `mc:<tenant>/<name>@<digest>`.
    pub reference: String,
    pub image: String,
    /// The provenance's signing slot.
    pub kid: String,
    #[serde(rename = "KeyID")]
    pub key_id: String,
    /// The store's key of that id, if any.
    pub signer: Option<String>,
    /// True when the signer is a key of this store (or the key given with --key).
    pub trusted: bool,
    pub grants: usize,
    pub artifacts: usize,
    /// Artifact files in the `.llc` archive (0 for a plain manifest).
    pub archive_artifacts: usize,
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, McError> {
    let f = std::fs::File::open(path).map_err(|e| {
        McError::schema(
            "",
            format!("cannot read manifest file {}: {e}", path.display()),
        )
    })?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf).map_err(|e| {
        McError::schema(
            "",
            format!("cannot read manifest file {}: {e}", path.display()),
        )
    })?;
    if buf.len() as u64 > limit {
        return Err(McError::schema(
            "",
            format!("{} is larger than {limit} bytes", path.display()),
        ));
    }
    Ok(buf)
}

/// Reads, parses and checks a manifest file or `.llc` archive (no signature check yet).
pub fn load(path: &Path) -> Result<Loaded, McError> {
    let bytes = read_limited(path, mc::MAX_ARCHIVE)?;
    let (json, archive) = if mc::is_zip(&bytes) {
        let llc = mc::read_llc(&bytes)?;
        (llc.manifest.clone(), Some(llc))
    } else {
        (bytes, None)
    };
    let manifest = Manifest::parse(&json)?;
    if let Some(a) = &archive {
        a.check(&manifest)?;
    }
    if let Err(e) = gcr_core::Reference::parse(&manifest.deploy.image) {
        return Err(McError::schema(
            "deploy.image",
            format!("'{}' is not an image reference: {e}", manifest.deploy.image),
        ));
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        manifest,
        archive,
    })
}

impl Engine {
    /// Verifies a loaded manifest's signatures; `key` (a store key name or a PEM public
    /// key file) is the signer it must have, else any key of the store is trusted.
    pub fn manifest_check(&self, l: &Loaded, key: Option<&str>) -> Result<ManifestReport, McError> {
        let m = &l.manifest;
        let s = mc::verify_provenance(m)?;
        let keys = self.keys();
        let (signer, trusted) = match key {
            Some(k) => {
                let want = if keys.exists(k) {
                    keys.public(k)
                } else {
                    gcr_trust::keystore::read_key_file(Path::new(k))
                        .and_then(|pem| gcr_trust::PublicKey::from_pem(k, &pem))
                }
                .map_err(|e| McError::new(Code::Forbidden, "provenance.kid", e.to_string()))?;
                if want.id() != s.key_id {
                    return Err(McError::new(
                        Code::Forbidden,
                        "provenance.kid",
                        format!(
                            "the manifest is signed by key id {}, not by the given key {k} ({})",
                            s.key_id,
                            want.id()
                        ),
                    ));
                }
                (Some(k.to_string()), true)
            }
            None => {
                let name = keys.name_of(&s.key_id);
                let trusted = name.is_some();
                (name, trusted)
            }
        };
        Ok(ManifestReport {
            file: l.path.display().to_string(),
            reference: reference(m, &s.digest),
            digest: s.digest,
            image: m.deploy.image.clone(),
            kid: s.kid,
            key_id: s.key_id,
            signer,
            trusted,
            grants: m.grants.len(),
            artifacts: m.artifacts.len(),
            archive_artifacts: l.archive.as_ref().map_or(0, |a| a.artifacts.len()),
        })
    }

    /// `gcr manifest verify FILE [--key K]`.
    pub fn manifest_verify(
        &self,
        path: &Path,
        key: Option<&str>,
    ) -> Result<ManifestReport, McError> {
        let l = load(path)?;
        self.manifest_check(&l, key)
    }

    /// `gcr manifest sign FILE --key NAME [-o OUT]`: signs the grants and the provenance
    /// with a store key and writes the manifest (in place, atomically, unless `out`).
    pub fn manifest_sign(
        &self,
        path: &Path,
        key: &str,
        password: Option<&[u8]>,
        out: Option<&Path>,
    ) -> Result<ManifestReport, McError> {
        let l = load(path)?;
        if l.archive.is_some() {
            return Err(McError::schema(
                "archive",
                "gcr signs manifest.json files, not .llc archives; sign manifest.json, then pack it",
            ));
        }
        let forbidden =
            |e: gcr_trust::TrustError| McError::new(Code::Forbidden, "key", e.to_string());
        let private = self.keys().private(key, password).map_err(forbidden)?;
        let doc = mc::sign(&l.manifest.doc, &private, key)?;
        let mut text =
            serde_json::to_vec_pretty(&doc).map_err(|e| McError::internal("", e.to_string()))?;
        text.push(b'\n');
        // What was written must read back as a valid, signed manifest.
        let signed = Loaded {
            path: out.unwrap_or(path).to_path_buf(),
            manifest: Manifest::parse(&text)?,
            archive: None,
        };
        let report = self.manifest_check(&signed, Some(key))?;
        write_atomic(out.unwrap_or(path), &text)?;
        Ok(report)
    }
}

/// `mc:<tenant>/<name>@<digest>`, the seed's reference to one manifest version.
pub fn reference(m: &Manifest, digest: &str) -> String {
    let name = m.deploy_name();
    let short = name
        .strip_prefix(&format!("{}-", mc::dns_label(&m.owner.tenant)))
        .unwrap_or(&name)
        .to_string();
    format!("mc:{}/{short}@{digest}", m.owner.tenant)
}

/// Writes `path` through a temporary file in its directory, fsynced and renamed.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), McError> {
    let io = |e: std::io::Error| {
        McError::internal(
            "",
            format!(
                "cannot write {}: {e}; check the directory's permissions and free space",
                path.display()
            ),
        )
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(data).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
