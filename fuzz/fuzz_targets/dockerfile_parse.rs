//! Fuzz target: arbitrary bytes as a Dockerfile, and every word of it expanded. Parsing
//! and expansion must never panic; an error always names a line inside the text; parsing
//! is deterministic; an expansion never exceeds its cap.
#![no_main]

use gcr_core::dockerfile::words::{expand, expand_words, MAX_EXPANSION};
use gcr_core::dockerfile::{parse, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vars: Vec<(String, String)> = vec![("A".into(), "x".repeat(64)), ("E".into(), String::new())];
    for w in text.split_whitespace().take(64) {
        if let Ok(s) = expand(w, '\\', &vars) {
            assert!(s.len() <= MAX_EXPANSION);
        }
        let _ = expand_words(w, '`', &vars);
    }
    match parse("Dockerfile", text) {
        Ok(df) => {
            assert_eq!(Ok(df.clone()), parse("Dockerfile", text), "deterministic");
            assert!(!df.stages.is_empty());
            for s in &df.stages {
                for i in &s.instructions {
                    if let Kind::Env(p) | Kind::Label(p) = &i.kind {
                        for (k, v) in p {
                            let _ = expand(k, df.escape, &vars);
                            let _ = expand(v, df.escape, &vars);
                        }
                    }
                }
            }
        }
        Err(e) => {
            let lines = 1 + text.matches('\n').count();
            assert!(e.line >= 1 && e.line <= lines + 1, "line {} of {lines}", e.line);
        }
    }
});
