//! Fuzz target: arbitrary bytes as an image policy (containers-policy.json) and as a run
//! policy. Parsing must never panic; an accepted image policy must answer a scope lookup
//! and an evaluation for any reference it is asked about, and a run policy an evaluation.
#![no_main]

use gcr_trust::policy::dockerref::DockerRef;
use gcr_trust::policy::image::{ImageFacts, ImagePolicy};
use gcr_trust::policy::run::{RunPolicy, RunRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ImagePolicy::parse("fuzz.json", data) {
        for s in ["docker.io/library/busybox:latest", "127.0.0.1:5000/a/b@sha256:00", "x.example.com/y"] {
            let r = DockerRef::parse(s);
            let _ = p.lookup("docker", r.as_ref());
            let d = p.evaluate(&ImageFacts {
                transport: "gcr",
                reference: r.as_ref(),
                manifest: data,
                signatures: &[],
            });
            assert!(!d.rule.is_empty());
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(r) = DockerRef::parse(s) {
            let _ = r.scopes();
        }
    }
    if let Ok(p) = RunPolicy::parse("fuzz.json", data) {
        let _ = p.evaluate(&RunRequest::default(), &[]);
    }
});
