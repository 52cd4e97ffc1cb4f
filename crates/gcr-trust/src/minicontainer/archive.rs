//! `.llc` archives: a zip holding `manifest.json` and, optionally, encrypted artifacts as
//! `artifacts/<artifact id>`. Read from memory with hostile input in mind: the archive,
//! each entry and the total are size-limited (an entry's declared size is never trusted:
//! reads stop one byte past the limit), names are exactly those two forms (no directories
//! other than `artifacts/`, no `..`, no absolute paths, no duplicates), zip-encrypted
//! entries are refused, and every artifact file must be declared by the manifest.

use std::io::{Cursor, Read};

use super::error::McError;
use super::{Manifest, MAX_MANIFEST};

/// The largest `.llc` file read.
pub const MAX_ARCHIVE: u64 = 64 * 1024 * 1024;
/// The largest artifact entry read.
pub const MAX_ARTIFACT: u64 = 16 * 1024 * 1024;
const MAX_ENTRIES: usize = 1024;
const MAX_TOTAL: u64 = 128 * 1024 * 1024;

/// An archive's contents.
#[derive(Debug, Clone)]
pub struct Llc {
    pub manifest: Vec<u8>,
    /// Artifact id and its (encrypted) bytes, in archive order.
    pub artifacts: Vec<(String, Vec<u8>)>,
}

/// True when `bytes` start like a zip archive.
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> McError {
    McError::schema(field, reason)
}

/// Reads an `.llc` archive.
pub fn read_llc(bytes: &[u8]) -> Result<Llc, McError> {
    if bytes.len() as u64 > MAX_ARCHIVE {
        return Err(bad("archive", "the archive is larger than 64 MiB"));
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        bad(
            "archive",
            format!("the .llc file is not a valid zip archive ({e})"),
        )
    })?;
    if zip.len() > MAX_ENTRIES {
        return Err(bad(
            "archive",
            format!("the archive has more than {MAX_ENTRIES} entries"),
        ));
    }
    let mut manifest = None;
    let mut artifacts: Vec<(String, Vec<u8>)> = Vec::new();
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(|e| {
            bad(
                "archive",
                format!("entry {i} cannot be read ({e}); zip-encrypted entries are not accepted"),
            )
        })?;
        let name = f
            .name()
            .map_err(|e| bad("archive", format!("entry {i} has an unreadable name ({e})")))?
            .to_string();
        let field = format!("archive:{name}");
        if f.encrypted() {
            return Err(bad(
                field,
                "is zip-encrypted; artifacts carry their own encryption",
            ));
        }
        if f.is_dir() {
            if name == "artifacts/" {
                continue;
            }
            return Err(bad(field, "is a directory other than artifacts/"));
        }
        let limit = if name == "manifest.json" {
            MAX_MANIFEST as u64
        } else if let Some(id) = name.strip_prefix("artifacts/") {
            let ok = !id.is_empty()
                && id.len() <= 128
                && id.as_bytes()[0].is_ascii_alphanumeric()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
            if !ok {
                return Err(bad(field, "is not artifacts/<artifact id>"));
            }
            MAX_ARTIFACT
        } else {
            return Err(bad(
                field,
                "is neither manifest.json nor artifacts/<artifact id>",
            ));
        };
        let mut buf = Vec::new();
        (&mut f)
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| bad(&field, format!("cannot be read ({e})")))?;
        if buf.len() as u64 > limit {
            return Err(bad(field, format!("is larger than {limit} bytes")));
        }
        total += buf.len() as u64;
        if total > MAX_TOTAL {
            return Err(bad("archive", "the archive unpacks to more than 128 MiB"));
        }
        if let Some(id) = name.strip_prefix("artifacts/") {
            if artifacts.iter().any(|(a, _)| a == id) {
                return Err(bad(field, "appears twice"));
            }
            artifacts.push((id.to_string(), buf));
        } else if manifest.replace(buf).is_some() {
            return Err(bad(field, "appears twice"));
        }
    }
    let manifest = manifest.ok_or_else(|| {
        bad(
            "archive:manifest.json",
            "is missing; an .llc archive holds manifest.json",
        )
    })?;
    Ok(Llc {
        manifest,
        artifacts,
    })
}

impl Llc {
    /// Checks that every artifact file is one the manifest declares.
    pub fn check(&self, m: &Manifest) -> Result<(), McError> {
        for (id, _) in &self.artifacts {
            if m.artifact(id).is_none() {
                return Err(bad(
                    format!("archive:artifacts/{id}"),
                    format!("artifact '{id}' is not declared under artifacts in manifest.json"),
                ));
            }
        }
        Ok(())
    }
}
