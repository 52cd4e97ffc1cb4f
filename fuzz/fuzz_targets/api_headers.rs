//! Fuzz target: arbitrary bytes as an `X-Registry-Auth` header (base64url JSON naming a
//! registry user), as a build's `X-Registry-Config` (credentials by registry) and as the
//! first bytes of a tar an archive GET reads its path stat from.
//! Neither may panic; a bad header is a 400 with a sentence; a stat has a name and a mode.
#![no_main]

use gcr_api::fuzzing::{archive_stat, registry_auth, registry_config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    if let Err(e) = registry_auth(&header) {
        assert_eq!(e.status, 400, "a bad X-Registry-Auth is a 400: {e:?}");
        assert!(e.message.contains("X-Registry-Auth"), "{}", e.message);
    }
    if let Err(e) = registry_config(&header) {
        assert_eq!(e.status, 400, "a bad X-Registry-Config is a 400: {e:?}");
        assert!(e.message.contains("X-Registry-Config"), "{}", e.message);
    }
    if let Some(stat) = archive_stat(data) {
        assert!(stat["name"].is_string() && stat["mode"].is_u64(), "{stat}");
    }
});
