//! Fuzz target: arbitrary strings as image references. Parsing must never panic, and an
//! accepted reference must be stable: its full and familiar forms parse back to itself.
#![no_main]

use gcr_core::reference::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Reference::parse(s) {
        let full = r.full();
        assert_eq!(
            Reference::parse(&full).as_ref(),
            Ok(&r),
            "full form {full} of {s:?}"
        );
        let familiar = r.familiar();
        assert_eq!(
            Reference::parse(&familiar).as_ref(),
            Ok(&r),
            "familiar form {familiar} of {s:?}"
        );
        let _ = r.name_tag();
    }
});
