//! Fuzz target: arbitrary bytes as a request's path and query string (split at the first
//! newline): the `/v1.NN` prefix, Docker's `filters` JSON, booleans, numbers and repeated
//! keys, and `POST /build`'s query (tags, buildargs, labels, networkmode, platform). It
//! must never panic; a refusal is a 400 with a sentence.
#![no_main]

use gcr_api::fuzzing::{build_query, query, versioned_path, Refused};
use libfuzzer_sys::fuzz_target;

fn check<T>(r: &Result<T, Refused>) {
    if let Err(e) = r {
        assert_eq!(e.status, 400, "a bad path or query is a 400: {e:?}");
        assert!(!e.message.trim().is_empty(), "a refusal says why");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (path, raw) = text.split_once('\n').unwrap_or(("/_ping", &text));
    let routed = versioned_path(path);
    check(&routed);
    if let Ok(p) = &routed {
        assert!(path.ends_with(p.as_str()), "{p:?} is a tail of {path:?}");
    }
    let filters = query(raw);
    check(&filters);
    if let Ok(f) = &filters {
        let n = raw.matches("filters").count();
        assert!(n > 0 || f.is_empty(), "filters from a query without any: {f:?}");
    }
    check(&build_query(raw));
});
