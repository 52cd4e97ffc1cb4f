//! Fuzz target: arbitrary bytes as what a client sends to `gcr registry serve`. Finding
//! the end of the request head must give the same answer whether the bytes arrive at once
//! or in pieces; parsing the head, its body framing, its target and then its body must
//! never panic, and must keep to the server's limits.
#![no_main]

use gcr_registry::server::body::BodyReader;
use gcr_registry::server::parse_request_head;
use gcr_registry::server::wire::{parse_target, BodyKind, HeadScanner, MAX_HEAD, MAX_HEADERS};
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// Feeds `data` to a scanner in pieces of `step` bytes: the absolute end of the head, or
/// the error status.
fn scan(data: &[u8], step: usize) -> Result<Option<usize>, u16> {
    let mut s = HeadScanner::default();
    let mut off = 0;
    for piece in data.chunks(step.max(1)) {
        match s.feed(piece) {
            Ok(Some(n)) => return Ok(Some(off + n)),
            Ok(None) => off += piece.len(),
            Err(e) => return Err(e.status),
        }
    }
    Ok(None)
}

fuzz_target!(|data: &[u8]| {
    let step = usize::from(data.first().copied().unwrap_or(1) % 17) + 1;
    let whole = scan(data, data.len());
    assert_eq!(whole, scan(data, step), "pieces of {step} bytes");
    if let Ok(Some(end)) = whole {
        assert!(end <= MAX_HEAD);
    }
    let Ok(head) = parse_request_head(data) else {
        return;
    };
    let Ok(Some(end)) = whole else {
        panic!("a head parsed that the scanner did not end");
    };
    assert!(!head.method.is_empty() && !head.target.is_empty());
    assert!(head.headers.len() <= MAX_HEADERS);
    let _ = (head.keep_alive(), head.expects_continue());
    if let Ok(t) = parse_target(&head.target) {
        assert!(t.path.starts_with('/'));
    }
    let Ok(kind) = head.body_kind() else {
        return;
    };
    let limit = 1 << 16;
    let mut body = BodyReader::new(&data[end..], kind, limit);
    let mut out = Vec::new();
    if body.read_to_end(&mut out).is_ok() {
        assert!(out.len() as u64 <= limit);
        if let BodyKind::Length(n) = kind {
            assert_eq!(out.len() as u64, n);
        }
    }
});
