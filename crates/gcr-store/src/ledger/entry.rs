//! The entry's canonical JSON written directly, byte for byte what RFC 8785 canonicalization
//! of the entry's JSON value gives (the tests below compare the two on awkward input):
//! `audit verify` recomputes a million of these, and building a `serde_json::Value` per
//! entry was most of its time. The actor, one small object repeated on most rows, is
//! canonicalized through the general path once per distinct string (per thread).

use gcr_core::canonical_json::{format_number, to_canonical_bytes};
use serde_json::Value;
use std::cell::RefCell;

use gcr_core::canonical_json::write_string as string;

fn opt_string(s: Option<&str>, out: &mut Vec<u8>) {
    match s {
        Some(s) => string(s, out),
        None => out.extend_from_slice(b"null"),
    }
}

/// An integer as RFC 8785 writes it (as the double it converts to).
fn number(n: i64, out: &mut Vec<u8>) -> Option<()> {
    out.extend_from_slice(format_number(n as f64).ok()?.as_bytes());
    Some(())
}

/// The canonical form of an actor column (its JSON, or `null` when it is not JSON).
fn actor_bytes(actor: &str) -> Option<Vec<u8>> {
    thread_local! {
        static LAST: RefCell<(String, Vec<u8>)> = const { RefCell::new((String::new(), Vec::new())) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 == actor && !last.1.is_empty() {
            return Some(last.1.clone());
        }
        let v: Value = serde_json::from_str(actor).unwrap_or(Value::Null);
        let b = to_canonical_bytes(&v).ok()?;
        *last = (actor.to_string(), b.clone());
        Some(b)
    })
}

/// The entry's canonical JSON (see `super::Entry::bytes`), or `None` when some part has no
/// canonical form (the caller then takes the general path).
pub(super) fn write(e: &super::Entry<'_>) -> Option<Vec<u8>> {
    let super::Entry {
        index,
        time_ns,
        actor,
        kind,
        object,
        name,
        from,
        to,
        cause,
    } = *e;
    // Keys in RFC 8785 order (by UTF-16 code units): action, actor, cause, from, index,
    // subject {id, kind, name}, time_ns.
    let mut out = Vec::with_capacity(320);
    out.extend_from_slice(b"{\"action\":");
    string(&super::action(kind, from, to, cause), &mut out);
    out.extend_from_slice(b",\"actor\":");
    out.extend_from_slice(&actor_bytes(actor)?);
    out.extend_from_slice(b",\"cause\":");
    opt_string(cause, &mut out);
    out.extend_from_slice(b",\"from\":");
    opt_string(from, &mut out);
    out.extend_from_slice(b",\"index\":");
    number(index, &mut out)?;
    out.extend_from_slice(b",\"subject\":{\"id\":");
    string(object, &mut out);
    out.extend_from_slice(b",\"kind\":");
    string(kind, &mut out);
    out.extend_from_slice(b",\"name\":");
    opt_string(name, &mut out);
    // A decimal string: nanoseconds since the epoch are past 2^53, where RFC 8785's
    // numbers (doubles) would round them.
    out.extend_from_slice(b"},\"time_ns\":");
    string(&time_ns.to_string(), &mut out);
    out.push(b'}');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::Entry;

    #[test]
    fn direct_writer_matches_canonicalization() {
        let actors = [
            r#"{"exe":"/usr/bin/bash","uid":0}"#,
            r#"{"uid":1000,"exe":"/opt/ünï\"cödé\\\n\u0001"}"#,
            r#"{"uid": 1e3, "exe": null, "z": [1.5, -0.0, "\t"]}"#,
            "",
            "not json",
            "null",
            r#"{"exe":"/usr/bin/bash","uid":0}"#,
        ];
        let strs = [
            None,
            Some(""),
            Some("running"),
            Some("a\"b\\c\u{8}\u{c}\n\r\t\u{1f}\u{7f}é€😀"),
            Some("create (policy allow - digest 2ef9ac62dff6e405)"),
        ];
        let nums = [
            0i64,
            1,
            -1,
            9_007_199_254_740_993,
            1_796_281_417_282_748_443,
            i64::MAX,
            i64::MIN,
            123_456_789_012_345_678,
        ];
        let mut n = 0;
        for actor in actors {
            for (i, s) in strs.iter().enumerate() {
                let t = strs[(i + 1) % strs.len()];
                let u = strs[(i + 2) % strs.len()];
                for (j, num) in nums.iter().enumerate() {
                    let kind = s.unwrap_or("container");
                    let args = (*num, nums[(j + 3) % nums.len()], actor, kind);
                    let e = Entry {
                        index: args.0,
                        time_ns: args.1,
                        actor: args.2,
                        kind: args.3,
                        object: "obj\"1",
                        name: *s,
                        from: t,
                        to: u,
                        cause: *s,
                    };
                    let (fast, slow) = (e.bytes(), e.bytes_general());
                    assert_eq!(
                        String::from_utf8_lossy(&fast),
                        String::from_utf8_lossy(&slow)
                    );
                    n += 1;
                }
            }
        }
        assert_eq!(n, actors.len() * strs.len() * nums.len());
    }
}
