//! `build.secrets`: each entry is an id (a plain name, or `{id: NAME, source: SECRET}`),
//! mounted at `/run/secrets/<id>` during the build's command steps. Ids are Docker secret
//! names (they become file names); two entries may not share an id.

use super::{Cx, Obj};
use crate::spec::error::SpecError;
use crate::spec::model::BuildSecret;
use crate::spec::yaml::Kind;

const SECRET: &[&str] = &["id", "source"];

/// Docker's secret names: 1 to 64 of `[A-Za-z0-9_.-]`, first and last a letter or digit.
fn secret_name(s: &str, what: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not a valid {what}; use 1 to 64 letters, digits, '_', '.' or '-', starting and ending with a letter or digit"
        ))
    }
}

pub(super) fn build_secrets(cx: &Cx, obj: &Obj) -> Result<Vec<BuildSecret>, SpecError> {
    let mut out: Vec<BuildSecret> = Vec::new();
    let Some(list) = obj.get("secrets") else {
        return Ok(out);
    };
    let example = "[{id: npmrc, source: npm-token}]";
    for (i, item) in cx.list(list, "build.secrets", example)?.iter().enumerate() {
        let path = format!("build.secrets[{i}]");
        let s = if matches!(item.kind, Kind::Scalar { .. }) {
            BuildSecret {
                id: cx.with(item, &path, |s| secret_name(s, "secret id"))?,
                source: None,
            }
        } else {
            let o = cx.object(item, &path, SECRET)?;
            BuildSecret {
                id: cx.with(cx.required(&o, "id", "npmrc")?, &o.path("id"), |s| {
                    secret_name(s, "secret id")
                })?,
                source: cx.opt(&o, "source", |s| secret_name(s, "secret name"))?,
            }
        };
        if out.iter().any(|o| o.id == s.id) {
            return Err(cx.err(
                item,
                &path,
                format!("the secret id '{}' is listed twice; keep one entry", s.id),
            ));
        }
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::spec::parse_spec_bytes;

    fn spec(secrets: &str) -> String {
        format!("format: gcr-v1.0\nname: app\nversion: '1'\nbase: scratch\nbuild:\n  secrets: {secrets}\n")
    }

    #[test]
    fn build_secrets_parse_in_both_forms() {
        let s = parse_spec_bytes(
            "t.gcr",
            spec("[npmrc, {id: tok, source: api-token}]").as_bytes(),
        )
        .unwrap();
        let got: Vec<(&str, Option<&str>)> = s
            .build
            .secrets
            .iter()
            .map(|b| (b.id.as_str(), b.source.as_deref()))
            .collect();
        assert_eq!(got, [("npmrc", None), ("tok", Some("api-token"))]);
    }

    #[test]
    fn bad_build_secrets_name_the_line() {
        for (bad, says) in [
            ("[../x]", "not a valid secret id"),
            ("[a, a]", "listed twice"),
            ("[{source: x}]", "missing required field"),
            ("[{id: a, mode: 1}]", "unknown field"),
            ("[{id: a, source: 'b c'}]", "not a valid secret name"),
            ("npmrc", "expected a list"),
        ] {
            let e = parse_spec_bytes("t.gcr", spec(bad).as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(says) && e.contains("build.secrets"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_spec_without_secrets_serializes_as_before() {
        let s = parse_spec_bytes("t.gcr", spec("[]").as_bytes()).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert!(v["build"].get("secrets").is_none());
    }
}
