//! Policy: which images gcr accepts, and what containers of them may do. Two strictly
//! parsed JSON files. The image policy ([`image`]) is the containers-policy.json format
//! (skopeo/podman's `/etc/containers/policy.json`): a mandatory `default`, `transports` →
//! scopes → requirements (`insecureAcceptAnything`, `reject`, `sigstoreSigned` with gcr's
//! Ed25519 keys). The run policy ([`run`]) is gcr's own, deny-by-default: registries,
//! signers, privileges, capabilities, host network, bind mounts, read-only root, non-root
//! user, resource ceilings. Both compile once into plain data ([`image::ImagePolicy`],
//! [`run::RunPolicy`]) and evaluate without I/O: the engine hands in the image's facts
//! (reference, transport, manifest bytes, signature bundles) and the container's flags.
//! An unknown key, a missing mandatory key or a wrong type is an error naming the file,
//! the line and the column.

pub mod dockerref;
pub mod image;
pub mod run;
#[cfg(test)]
mod tests;

use std::path::Path;

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy file {file} line {line} column {column}: {msg}; fix the file (see `man containers-policy.json` and docs/ARCHITECTURE.md)")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("policy file {file}: {msg}")]
    Invalid { file: String, msg: String },
    #[error("cannot read policy file {file}: {source}; check the path and its permissions")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

/// Parses `bytes` as `T` with serde_json, mapping errors to [`PolicyError::Syntax`] with
/// the line and column serde_json reports (unknown keys are named by serde as "unknown
/// field `k`").
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    file: &str,
    bytes: &[u8],
) -> Result<T, PolicyError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let full = e.to_string();
        // serde_json appends " at line L column C": the position is reported separately.
        let msg = match full.rfind(" at line ") {
            Some(i) => full[..i].to_string(),
            None => full,
        };
        let msg = msg
            .replace("unknown field", "unknown key")
            .replace("missing field", "missing key")
            .replace("unknown variant", "unknown type");
        PolicyError::Syntax {
            file: file.to_string(),
            line: e.line(),
            column: e.column(),
            msg,
        }
    })
}

/// Reads a policy file (at most 4 MiB).
pub fn read_file(path: &Path) -> Result<Vec<u8>, PolicyError> {
    use std::io::Read;
    let io = |source| PolicyError::Io {
        file: path.display().to_string(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut out = Vec::new();
    f.take(4 << 20).read_to_end(&mut out).map_err(io)?;
    Ok(out)
}
