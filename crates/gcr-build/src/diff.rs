//! Explains why two builds differ (for `gcr build --verify`): the first differing config
//! field, else the first layer whose digest differs and, inside it, the first differing
//! tar entry (name, header field or content).

use std::io::Read;

use gcr_store::Store;
use serde_json::Value;

/// Compares image `a` in store `sa` with image `b` in store `sb`; `None` when identical.
pub fn explain(sa: &Store, a: &str, sb: &Store, b: &str) -> Option<String> {
    let ca: Value = serde_json::from_slice(&sa.image_config(a).ok()?).ok()?;
    let cb: Value = serde_json::from_slice(&sb.image_config(b).ok()?).ok()?;
    // Layers first: a differing layer also changes `rootfs.diff_ids` in the config.
    let la = sa.image_layers(&sa.resolve_image(a).ok()?.id).ok()?;
    let lb = sb.image_layers(&sb.resolve_image(b).ok()?.id).ok()?;
    if la.len() != lb.len() {
        return Some(format!(
            "the images have {} and {} layers",
            la.len(),
            lb.len()
        ));
    }
    for (i, (x, y)) in la.iter().zip(&lb).enumerate() {
        if x.digest != y.digest {
            let inner = match (sa.open_blob(&x.digest), sb.open_blob(&y.digest)) {
                (Ok(fa), Ok(fb)) => first_entry_diff(fa, fb),
                _ => None,
            };
            return Some(match inner {
                Some(d) => format!("layer {} ({} vs {}): {d}", i + 1, x.digest, y.digest),
                None => format!(
                    "layer {} ({} vs {}): same entries, different compressed bytes",
                    i + 1,
                    x.digest,
                    y.digest
                ),
            });
        }
    }
    first_json_diff("config", &ca, &cb)
}

fn first_json_diff(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => {
                        if let Some(d) = first_json_diff(&p, u, v) {
                            return Some(d);
                        }
                    }
                    (u, v) => return Some(format!("config field {p}: {u:?} vs {v:?}")),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_json_diff(&format!("{path}[{i}]"), u, v)),
        _ if a == b => None,
        _ => Some(format!("config field {path}: {a} vs {b}")),
    }
}

struct Ent {
    name: String,
    header: Vec<u8>,
    data: Vec<u8>,
}

fn entries(f: std::fs::File) -> Option<Vec<Ent>> {
    let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f));
    let mut ar = tar::Archive::new(gz);
    let mut out = Vec::new();
    for e in ar.entries().ok()? {
        let mut e = e.ok()?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let header = e.header().as_bytes().to_vec();
        let mut data = Vec::new();
        e.read_to_end(&mut data).ok()?;
        out.push(Ent { name, header, data });
    }
    Some(out)
}

/// The first differing tar entry of two gzip layers.
pub fn first_entry_diff(a: std::fs::File, b: std::fs::File) -> Option<String> {
    let (ea, eb) = (entries(a)?, entries(b)?);
    for i in 0..ea.len().max(eb.len()) {
        match (ea.get(i), eb.get(i)) {
            (Some(x), Some(y)) => {
                if x.name != y.name {
                    return Some(format!("entry {i} is '{}' vs '{}'", x.name, y.name));
                }
                if x.header != y.header {
                    let field = header_field(&x.header, &y.header);
                    return Some(format!("entry '{}' differs in its {field}", x.name));
                }
                if x.data != y.data {
                    return Some(format!("entry '{}' differs in its content", x.name));
                }
            }
            (Some(x), None) => {
                return Some(format!("entry '{}' is only in the first build", x.name))
            }
            (None, Some(y)) => {
                return Some(format!("entry '{}' is only in the second build", y.name))
            }
            (None, None) => break,
        }
    }
    None
}

/// Names the first differing field of two 512-byte tar headers.
fn header_field(a: &[u8], b: &[u8]) -> &'static str {
    const FIELDS: &[(usize, usize, &str)] = &[
        (0, 100, "name"),
        (100, 108, "mode"),
        (108, 116, "uid"),
        (116, 124, "gid"),
        (124, 136, "size"),
        (136, 148, "mtime"),
        (148, 156, "checksum"),
        (156, 157, "type"),
        (157, 257, "link name"),
        (257, 265, "magic"),
        (265, 297, "user name"),
        (297, 329, "group name"),
        (329, 345, "device numbers"),
        (345, 512, "extended fields"),
    ];
    for (s, e, n) in FIELDS {
        if a.get(*s..*e) != b.get(*s..*e) {
            return n;
        }
    }
    "header"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_first_config_field() {
        let a = json!({"config": {"Env": ["A=1"]}, "created": "x"});
        let b = json!({"config": {"Env": ["A=2"]}, "created": "x"});
        let d = first_json_diff("config", &a, &b).unwrap();
        assert!(d.contains("config.config.Env[0]"), "{d}");
        assert!(first_json_diff("config", &a, &a).is_none());
    }
}
