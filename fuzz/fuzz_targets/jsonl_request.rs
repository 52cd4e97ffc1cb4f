//! Fuzz target: arbitrary bytes as one JSONL protocol request line (`gcr system service
//! --jsonl`). Decoding must never panic; a decoded request has a non-empty type and an id
//! that reads back from its own JSON; an error names no id it could not read; the error
//! and answer lines it leads to serialize as one line of JSON.
#![no_main]

use gcr_core::jsonl::{self, decode_line, Id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = |v: &serde_json::Value| {
        let s = serde_json::to_string(v).expect("answers serialize");
        assert!(!s.contains('\n'), "an answer spans lines: {s}");
        let back: serde_json::Value = serde_json::from_str(&s).expect("answers parse back");
        assert_eq!(&back, v);
    };
    match decode_line(data) {
        Ok(req) => {
            assert!(!req.kind.is_empty());
            assert_eq!(Id::from_value(&req.id.to_value()), Some(req.id.clone()));
            assert!(req.fields.contains_key("id") && req.fields.contains_key("type"));
            line(&jsonl::ok(&req.id, serde_json::Value::Null));
            line(&jsonl::ack(&req.id));
            for k in ["target", "image", "all", "cmd"] {
                let _ = req.str(k);
                let _ = req.flag(k, false);
                let _ = req.strings(k);
            }
        }
        Err(e) => {
            assert!(!e.reason.is_empty());
            line(&jsonl::error(e.id.as_ref(), "invalid_request", None, &e.reason));
        }
    }
});
