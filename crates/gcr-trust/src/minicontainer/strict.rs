//! JSON that refuses what a signed document must not hold: duplicate object keys (two
//! readers could see two different documents under one signature), nesting deeper than 32
//! levels, and numbers that are not integers in the signed range (RFC 8785 would print a
//! float differently than it was written).

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::error::McError;

const MAX_DEPTH: usize = 32;

/// The document in `bytes`, strictly read.
pub fn from_slice(bytes: &[u8]) -> Result<Value, McError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict::deserialize(&mut de)
        .map_err(|e| McError::schema("", format!("the manifest is not valid JSON ({e})")))?;
    de.end()
        .map_err(|e| McError::schema("", format!("the manifest has text after its end ({e})")))?;
    let v = v.0;
    if depth(&v) > MAX_DEPTH {
        return Err(McError::schema(
            "",
            format!("the manifest nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(v)
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

/// Integers beyond 2^53 lose precision in the JavaScript numbers RFC 8785 is defined on.
const MAX_SAFE: u64 = (1 << 53) - 1;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Value, E> {
        if n.unsigned_abs() > MAX_SAFE {
            return Err(E::custom(format!("the integer {n} is beyond ±2^53")));
        }
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Value, E> {
        if n > MAX_SAFE {
            return Err(E::custom(format!("the integer {n} is beyond 2^53")));
        }
        Ok(Value::Number(Number::from(n)))
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Value, E> {
        Err(E::custom(format!(
            "the number {n} is not an integer; manifests hold integers only"
        )))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.insert(k.clone(), v).is_some() {
                return Err(A::Error::custom(format!("the key \"{k}\" appears twice")));
            }
        }
        Ok(Value::Object(out))
    }
}
