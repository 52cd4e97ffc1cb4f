//! RFC 8785 vectors, and gcr-core's own canonicalizer (used for image configs and
//! manifests) fuzzed against the crate that signs payloads: both must agree byte for byte.

use serde_json::{json, Value};

use super::to_vec;

fn canon(v: &Value) -> String {
    String::from_utf8(to_vec("test value", v).unwrap()).unwrap()
}

#[test]
fn rfc8785_examples() {
    // RFC 8785 section 3.2.3 (sorting by UTF-16 code units) and 3.2.2 (numbers, strings).
    let v: Value = serde_json::from_str(
        r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
    )
    .unwrap();
    assert_eq!(
        canon(&v),
        "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
    );
    let n: Value = serde_json::from_str(
        r#"{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}"#,
    )
    .unwrap();
    assert_eq!(
        canon(&n),
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
}

#[test]
fn key_metadata_is_plain_sorted_json() {
    let v = json!({"scheme": "ed25519", "keyval": {"public": "ab"}, "keytype": "ed25519"});
    assert_eq!(
        canon(&v),
        r#"{"keytype":"ed25519","keyval":{"public":"ab"},"scheme":"ed25519"}"#
    );
}

/// A small deterministic generator (xorshift), so the fuzz cases are the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_string(r: &mut Rng) -> String {
    const POOL: &[char] = &[
        'a',
        'b',
        'Z',
        '0',
        ' ',
        '"',
        '\\',
        '/',
        '\n',
        '\t',
        '\u{1}',
        '\u{1f}',
        '\u{7f}',
        'é',
        '\u{20ac}',
        '\u{fb33}',
        '\u{1f600}',
        '\u{10ffff}',
        '\u{2028}',
        'ÿ',
    ];
    (0..r.below(8))
        .map(|_| POOL[r.below(POOL.len() as u64) as usize])
        .collect()
}

fn random_number(r: &mut Rng) -> Value {
    match r.below(5) {
        0 => json!(r.next() as i64),
        1 => json!(r.below(1000)),
        2 => json!(f64::from_bits(r.next() >> 2)),
        3 => json!((r.next() as f64) / 3.0),
        _ => json!(r.below(1_000_000) as f64 * 1e-9),
    }
}

fn random_value(r: &mut Rng, depth: u32) -> Value {
    let pick = if depth == 0 { r.below(4) } else { r.below(6) };
    match pick {
        0 => Value::Null,
        1 => Value::Bool(r.below(2) == 1),
        2 => {
            let n = random_number(r);
            if n.as_f64().is_some_and(|f| f.is_finite()) {
                n
            } else {
                Value::Null
            }
        }
        3 => Value::String(random_string(r)),
        4 => Value::Array(
            (0..r.below(4))
                .map(|_| random_value(r, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..r.below(5))
                .map(|_| (random_string(r), random_value(r, depth - 1)))
                .collect(),
        ),
    }
}

#[test]
fn gcr_core_canonical_json_agrees_with_the_crate() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..5000 {
        let v = random_value(&mut r, 4);
        let ours = gcr_core::canonical_json::to_canonical_bytes(&v).unwrap();
        let theirs = to_vec("fuzz value", &v).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs),
            "case {i}: {v:?}"
        );
    }
}
