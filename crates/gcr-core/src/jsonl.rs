//! The JSONL protocol's lines (seed GATOS §7), without any I/O: a request line decoded into
//! a [`Request`] (an object with a `type` and an `id`), or a [`LineError`] saying which
//! field is wrong; and the shapes of the answers: `ack`, `progress`, the final `ok` line and
//! the error line `{"ok":false,"id":…,"error":{"code":…,"rule":…,"reason":…}}`.
//! `gcr system service --jsonl` (crate gcr-api) serves it.

use serde_json::{json, Map, Value};

/// The longest request line read (bytes, without its newline).
pub const MAX_LINE: usize = 1 << 20;

/// The longest request id (characters of a string id).
pub const MAX_ID: usize = 256;

/// A request's id: a string or an integer, echoed as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    Str(String),
    Num(i64),
}

impl Id {
    pub fn to_value(&self) -> Value {
        match self {
            Id::Str(s) => Value::String(s.clone()),
            Id::Num(n) => Value::from(*n),
        }
    }

    /// Reads an id from a JSON value (a `cancel`'s `target` too).
    pub fn from_value(v: &Value) -> Option<Id> {
        match v {
            Value::String(s) if !s.is_empty() && s.chars().count() <= MAX_ID => {
                Some(Id::Str(s.clone()))
            }
            Value::Number(n) => n.as_i64().map(Id::Num),
            _ => None,
        }
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Str(s) => f.write_str(s),
            Id::Num(n) => write!(f, "{n}"),
        }
    }
}

/// One decoded request line: its type, its id, and the whole object (the type's fields).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub kind: String,
    pub id: Id,
    pub fields: Map<String, Value>,
}

impl Request {
    /// A string field; absent or null is None, another type is an error naming it.
    pub fn str(&self, k: &str) -> Result<Option<&str>, String> {
        match self.fields.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("field '{k}' must be a string")),
        }
    }

    /// A boolean field (absent or null: `default`).
    pub fn flag(&self, k: &str, default: bool) -> Result<bool, String> {
        match self.fields.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("field '{k}' must be true or false")),
        }
    }

    /// A list of strings (a single string is a list of one).
    pub fn strings(&self, k: &str) -> Result<Vec<String>, String> {
        match self.fields.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(format!("field '{k}' must be a list of strings")),
                })
                .collect(),
            Some(_) => Err(format!("field '{k}' must be a list of strings")),
        }
    }
}

/// Why a line is not a request; the id when one could be read (so the error line names it).
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    pub id: Option<Id>,
    pub reason: String,
}

fn bad(id: Option<Id>, reason: impl Into<String>) -> LineError {
    LineError {
        id,
        reason: reason.into(),
    }
}

/// Decodes one request line (its newline stripped; a trailing `\r` is allowed).
pub fn decode_line(line: &[u8]) -> Result<Request, LineError> {
    if line.len() > MAX_LINE {
        return Err(bad(
            None,
            format!(
                "the request line is {} bytes, longer than the limit of {MAX_LINE}; send one JSON object per line",
                line.len()
            ),
        ));
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let v: Value = serde_json::from_slice(line).map_err(|e| {
        bad(
            None,
            format!("the line is not JSON ({e}); send one JSON object per line"),
        )
    })?;
    let Value::Object(fields) = v else {
        return Err(bad(
            None,
            "the line is not a JSON object; send {\"type\":…,\"id\":…}",
        ));
    };
    let id = match fields.get("id") {
        None | Some(Value::Null) => {
            return Err(bad(
                None,
                "field 'id' is missing; every request needs an id (a string or an integer)",
            ))
        }
        Some(v) => Id::from_value(v).ok_or_else(|| {
            bad(
                None,
                format!("field 'id' must be a non-empty string of at most {MAX_ID} characters or an integer"),
            )
        })?,
    };
    let kind = match fields.get("type") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        None | Some(Value::Null) => {
            return Err(bad(
                Some(id),
                "field 'type' is missing; name the request type, e.g. \"ping\"",
            ))
        }
        Some(_) => return Err(bad(Some(id), "field 'type' must be a non-empty string")),
    };
    Ok(Request { kind, id, fields })
}

/// `{"id":…,"ack":true}`: a long operation began.
pub fn ack(id: &Id) -> Value {
    json!({ "id": id.to_value(), "ack": true })
}

/// `{"id":…,"progress":…}`.
pub fn progress(id: &Id, p: Value) -> Value {
    json!({ "id": id.to_value(), "progress": p })
}

/// `{"id":…,"ok":true,"result":…}`.
pub fn ok(id: &Id, result: Value) -> Value {
    json!({ "id": id.to_value(), "ok": true, "result": result })
}

/// `{"ok":false,"id":…,"error":{"code":…,"rule":…,"reason":…}}`; `id` null when the line
/// named none.
pub fn error(id: Option<&Id>, code: &str, rule: Option<&str>, reason: &str) -> Value {
    json!({
        "ok": false,
        "id": id.map_or(Value::Null, Id::to_value),
        "error": { "code": code, "rule": rule, "reason": reason },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let r = decode_line(br#"{"type":"ping","id":"a1"}"#).unwrap();
        assert_eq!((r.kind.as_str(), &r.id), ("ping", &Id::Str("a1".into())));
        let r = decode_line(b"{\"type\":\"ps\",\"id\":7,\"all\":true}\r").unwrap();
        assert_eq!(r.id, Id::Num(7));
        assert_eq!(r.flag("all", false), Ok(true));
        assert!(r.str("all").is_err());
        let e = decode_line(b"nope").unwrap_err();
        assert!(e.reason.contains("not JSON") && e.id.is_none());
        let e = decode_line(br#"{"type":"ping"}"#).unwrap_err();
        assert!(e.reason.contains("'id'"));
        let e = decode_line(br#"{"type":"ping","id":""}"#).unwrap_err();
        assert!(e.reason.contains("'id'"));
        let e = decode_line(br#"{"type":"ping","id":1.5}"#).unwrap_err();
        assert!(e.reason.contains("'id'"));
        let e = decode_line(br#"{"id":"x"}"#).unwrap_err();
        assert_eq!(e.id, Some(Id::Str("x".into())));
        assert!(e.reason.contains("'type'"));
        let e = decode_line(br#"[1]"#).unwrap_err();
        assert!(e.reason.contains("not a JSON object"));
        let huge = vec![b' '; MAX_LINE + 1];
        assert!(decode_line(&huge).unwrap_err().reason.contains("longer"));
        let v = error(None, "invalid_request", None, "x");
        assert_eq!(v["id"], Value::Null);
        assert_eq!(v["error"]["rule"], Value::Null);
    }
}
