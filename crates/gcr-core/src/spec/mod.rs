//! The `.gcr` build spec (format `gcr-v1.0`, SPEC.md §3): typed model, YAML parser with
//! positions, and validation. [`parse_spec`] turns `(file name, text)` into a [`Spec`] or
//! one [`SpecError`] like
//! `app.gcr:12:15: runtime.resources.memory: '512XB' is not a size; use e.g. 512MB`.
//! Unknown keys, duplicate keys, anchors/aliases, tags and documents over 1 MiB are
//! rejected.

mod error;
mod model;
mod parse;
mod validate;
mod yaml;

pub use error::SpecError;
pub use model::*;
pub use parse::{parse_spec, MAX_SPEC_BYTES};

/// Like [`parse_spec`] for raw bytes: invalid UTF-8 is an error naming its position.
pub fn parse_spec_bytes(file: &str, bytes: &[u8]) -> Result<Spec, SpecError> {
    if bytes.len() > MAX_SPEC_BYTES {
        return parse_spec(file, &" ".repeat(MAX_SPEC_BYTES + 1));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_spec(file, text),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            Err(SpecError {
                file: file.to_string(),
                line,
                column,
                path: String::new(),
                message: "the spec is not valid UTF-8; save it as UTF-8".to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests;
