//! Fuzz target: arbitrary bytes as a manifest or index received from a registry, and as a
//! `WWW-Authenticate` header. Parsing must never panic; an accepted document has only
//! well-formed sha256 digests, and platform selection over it must not panic either.
#![no_main]

use gcr_registry::auth::Challenge;
use gcr_registry::media::{parse_manifest, select_platform, valid_digest, Parsed, Platform};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ct = data.first().map(|b| match b % 3 {
        0 => "application/vnd.oci.image.index.v1+json",
        1 => "application/vnd.docker.distribution.manifest.v2+json",
        _ => "application/json",
    });
    match parse_manifest(data, ct) {
        Ok((_, Parsed::Index { manifests })) => {
            assert!(manifests.iter().all(|d| valid_digest(&d.digest)));
            let _ = select_platform(&manifests, &Platform::host());
        }
        Ok((
            _,
            Parsed::Image {
                config,
                layers,
                subject,
                ..
            },
        )) => {
            assert!(valid_digest(&config.digest));
            assert!(layers.iter().all(|d| valid_digest(&d.digest)));
            assert!(subject.iter().all(|d| valid_digest(&d.digest)));
        }
        Err(e) => assert!(!e.is_empty()),
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(c) = Challenge::parse(s) {
            let _ = c.param("realm");
        }
    }
});
