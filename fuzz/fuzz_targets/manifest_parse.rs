//! Fuzz target: arbitrary bytes as a MiniContainer manifest, or as an `.llc` archive when
//! they start like a zip. Parsing, archive reading and signature checking must never panic;
//! an accepted manifest's canonical payload must be stable (re-parsing the document gives
//! the same digest), and checking its signature must only ever succeed or refuse.
#![no_main]

use gcr_trust::minicontainer::{self as mc, Manifest};
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    let Ok(m) = Manifest::parse(bytes) else {
        return;
    };
    let digest = mc::digest(&m.doc).expect("an accepted manifest canonicalizes");
    let again =
        Manifest::parse(m.doc.to_string().as_bytes()).expect("an accepted manifest re-parses");
    assert_eq!(mc::digest(&again.doc).unwrap(), digest);
    let _ = mc::verify_provenance(&m);
}

fuzz_target!(|data: &[u8]| {
    if mc::is_zip(data) {
        if let Ok(llc) = mc::read_llc(data) {
            check(&llc.manifest);
        }
    } else {
        check(data);
    }
});
