//! Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) for every payload gcr signs
//! and every key id it computes, through the maintained `serde_json_canonicalizer` crate:
//! object keys sorted by UTF-16 code units, no insignificant whitespace, ECMAScript number
//! forms, minimal string escapes. For the ASCII-only key metadata of a key id it is also
//! byte-identical to the OLPC canonical JSON that securesystemslib uses.

use serde::Serialize;

use crate::error::{Result, TrustError};

/// `value` as RFC 8785 canonical JSON bytes; `what` names it in the error.
pub fn to_vec<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| TrustError::Canonical {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
