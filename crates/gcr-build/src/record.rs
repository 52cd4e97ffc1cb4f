//! The reproducible record of a build: the part of its transcript that depends only on
//! the spec, the context and the base image. Timings, cache hits, the spec's path as typed
//! and tags are left out, and the spec is named by its file name (its path relative to the
//! context), so two builds of one spec, in two directories or from a warm cache, give the
//! same record. Its canonical JSON digest is the provenance's `byproducts` entry; a signed
//! build attaches it as the predicate of a signed statement.

use serde_json::{json, Map, Value};

/// Media type gcr gives the record when it names it as a byproduct.
pub const RECORD_MEDIA_TYPE: &str = "application/vnd.gcr.build.transcript.v1+json";

/// Step fields that are the same however the step was obtained (built or cached).
const STEP_FIELDS: &[&str] = &["index", "kind", "definition", "layer", "diff_id", "size"];

/// The reproducible record of `transcript` (as stored by [`crate::build`]).
pub fn reproducible(transcript: &Value) -> Value {
    let steps: Vec<Value> = transcript
        .get("steps")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| {
                    let kept: Map<String, Value> = STEP_FIELDS
                        .iter()
                        .filter_map(|k| s.get(*k).map(|v| ((*k).to_string(), v.clone())))
                        .collect();
                    Value::Object(kept)
                })
                .collect()
        })
        .unwrap_or_default();
    let field = |k: &str| transcript.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "gcr_version": field("gcr_version"),
        "spec": {
            "path": field("spec_path"),
            "file_digest": field("spec_file_digest"),
            "digest": field("spec_digest"),
        },
        "base": field("base"),
        "created": field("created"),
        "hermetic": field("hermetic"),
        "inputs": field("inputs"),
        "steps": steps,
        "image": {
            "id": transcript.pointer("/image/id").cloned().unwrap_or(Value::Null),
            "manifest_digest": transcript.pointer("/image/manifest_digest").cloned().unwrap_or(Value::Null),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_cache_and_tags_are_left_out() {
        let t = |ms: f64, hit: &str, spec: &str| {
            json!({
                "gcr_version": "1", "spec": spec, "spec_path": "app.gcr",
                "spec_file_digest": "sha256:aa", "spec_digest": "sha256:bb",
                "base": {"name": "scratch"}, "created": "1970-01-01T00:00:00Z", "hermetic": true,
                "inputs": [], "steps": [{"index": 1, "kind": "copy", "definition": {}, "cache": hit,
                    "duration_ms": ms, "layer": "sha256:cc", "diff_id": "sha256:dd", "size": 3}],
                "image": {"id": "sha256:ee", "manifest_digest": "sha256:ff", "tags": ["x"]},
                "cache": {"hits": 0}, "duration_ms": ms,
            })
        };
        let a = reproducible(&t(1.5, "miss", "/tmp/a/app.gcr"));
        let b = reproducible(&t(0.2, "hit", "/srv/b/app.gcr"));
        assert_eq!(a, b);
        assert_eq!(a["spec"]["path"], "app.gcr");
        assert_eq!(a["steps"][0]["layer"], "sha256:cc");
        assert!(a["steps"][0].get("cache").is_none());
        assert!(a.pointer("/image/tags").is_none());
        assert!(!a.to_string().contains("/tmp/a"));
    }
}
