//! Fuzz target: arbitrary bytes as a `.gcr` spec. The parser must never panic; a spec it
//! accepts must serialize to canonical JSON and parse again from the same bytes to the
//! same value (determinism).
#![no_main]

use gcr_core::canonical_json::to_canonical_vec;
use gcr_core::spec::parse_spec_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_spec_bytes("fuzz.gcr", data) {
        Ok(spec) => {
            let json = to_canonical_vec(&spec).expect("an accepted spec serializes");
            let again = parse_spec_bytes("fuzz.gcr", data).expect("parsing is deterministic");
            assert_eq!(json, to_canonical_vec(&again).expect("serializes"));
        }
        Err(e) => {
            // Every error names a position inside the document.
            assert!(e.line >= 1 && e.column >= 1, "{e}");
            assert!(!e.message.is_empty());
        }
    }
});
