//! Fuzz target: arbitrary bytes as a build-context file for the secret scanner. It must
//! never panic; hits are deterministic, on a line that exists, with a preview that is
//! short and never the whole match of a token rule; binary input (a NUL byte near the
//! start) has no hits.
#![no_main]

use gcr_build::scan::{is_binary, scanner};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = scanner().expect("the rules compile");
    let hits = s.scan(data);
    assert_eq!(hits, s.scan(data), "scanning is deterministic");
    if is_binary(data) {
        assert!(hits.is_empty());
    }
    let lines = 1 + data.iter().filter(|b| **b == b'\n').count();
    for h in &hits {
        assert!(h.line >= 1 && h.line <= lines, "line {} of {lines}", h.line);
        assert!(h.preview.chars().count() <= 49, "preview {:?}", h.preview);
    }
});
