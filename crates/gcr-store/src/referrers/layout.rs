//! Referrers in an oci-archive (an OCI image layout): `save` lists them in index.json after
//! their image, without names, as the image layout spec allows; `load` tells them from
//! images by their `subject` and indexes them once the images are recorded.

use super::{parse_referrer, subject_known, OCI_MANIFEST};
use crate::archive::{s, Spool};
use crate::error::{Result, StoreError};
use crate::Store;
use serde_json::Value;

/// True when an index.json entry is a manifest with a `subject` (a referrer, not an
/// image). Anything unreadable is left for the image loader to report.
pub(crate) fn is_referrer_entry(store: &Store, sp: &Spool, desc: &Value) -> Result<bool> {
    if s(desc, "mediaType").is_some_and(|t| t != OCI_MANIFEST) {
        return Ok(false);
    }
    let Some(digest) = s(desc, "digest") else {
        return Ok(false);
    };
    let Ok(f) = sp.blob(digest) else {
        return Ok(false);
    };
    let bytes = store.read_spooled(f)?;
    Ok(serde_json::from_slice::<Value>(&bytes)
        .ok()
        .is_some_and(|m| m.get("subject").is_some_and(Value::is_object)))
}

/// Moves the blobs of the archive's referrers into the CAS and indexes them, each after its
/// subject (an image just loaded, one already stored, or another referrer); returns how
/// many. A referrer whose subject is nowhere is an error.
pub(crate) fn load_referrers(store: &Store, sp: &Spool, mut pending: Vec<String>) -> Result<usize> {
    let mut done = 0;
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        let before = pending.len();
        for digest in pending {
            let bytes = store.read_spooled(sp.blob(&digest)?)?;
            let m = parse_referrer(&bytes)?;
            if !subject_known(store.conn(), &m.subject)? {
                waiting.push((digest, m.subject));
                continue;
            }
            for b in &m.blobs {
                if store.has_blob(&b.digest) {
                    continue;
                }
                let f = sp.blob(&b.digest)?;
                if f.size != b.size {
                    return Err(StoreError::Archive(format!(
                        "blob {} of referrer {digest} has {} bytes but its manifest says {}",
                        b.digest, f.size, b.size
                    )));
                }
                store.commit_file(&f.path, &b.digest)?;
            }
            store.index_referrer(&bytes)?;
            done += 1;
        }
        if waiting.len() == before {
            let (_, subject) = waiting.swap_remove(0);
            return Err(StoreError::ReferrerSubjectMissing(subject));
        }
        pending = waiting.into_iter().map(|(d, _)| d).collect();
    }
    Ok(done)
}
