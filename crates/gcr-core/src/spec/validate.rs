//! Field rules of the spec, one function per kind of value. Each takes the scalar text
//! and returns the normalized value or a message saying what is expected; the parser
//! adds file, position and field path.

use super::model::{Base, Owner, Port, Protocol, Source, FORMAT};
use crate::digest::Digest;
use crate::reference::{is_valid_tag, validate_repository, Reference};

pub(crate) type Check<T> = Result<T, String>;

pub(crate) fn format(s: &str) -> Check<String> {
    if s == FORMAT {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unsupported format '{s}'; this gcr reads format: {FORMAT}"
        ))
    }
}

pub(crate) fn name(s: &str) -> Check<String> {
    match validate_repository(s) {
        Ok(()) => Ok(s.to_string()),
        Err(_) if s.bytes().any(|c| c.is_ascii_uppercase()) => {
            Err(format!("'{s}' is not a valid image name: it must be lowercase"))
        }
        Err(_) => Err(format!(
            "'{s}' is not a valid image name; use lowercase letters and digits separated by '.', '_', '-' or '/', e.g. myapp or team/myapp"
        )),
    }
}

pub(crate) fn version(s: &str) -> Check<String> {
    if is_valid_tag(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not a valid version (it becomes the image tag); use up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-', e.g. 1.0.0"
        ))
    }
}

pub(crate) fn base(s: &str) -> Check<Base> {
    if s == "scratch" {
        return Ok(Base::Scratch);
    }
    if s.starts_with("sha256:") || s.starts_with("blake3:") {
        return s.parse::<Digest>().map(Base::Id).map_err(|e| e.to_string());
    }
    Reference::parse(s).map(Base::Image).map_err(|e| {
        format!("{e}; base must be scratch, an image reference such as alpine:3.20, or sha256:<image id>")
    })
}

pub(crate) fn digest(s: &str) -> Check<Digest> {
    s.parse::<Digest>().map_err(|e| e.to_string())
}

fn clean_components<'a>(s: &'a str, what: &str) -> Check<Vec<&'a str>> {
    if s.contains('\0') {
        return Err(format!("{what} contains a NUL byte"));
    }
    let mut out: Vec<&str> = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(format!(
                        "'{s}' escapes the build context; use a path inside the spec file's directory"
                    ));
                }
            }
            p => out.push(p),
        }
    }
    Ok(out)
}

/// A path relative to the build context: not absolute, not escaping it after normalization.
pub(crate) fn context_path(s: &str) -> Check<String> {
    if s.is_empty() {
        return Err("the path is empty; use a path relative to the spec file, e.g. ./app/".into());
    }
    if s.starts_with('/') {
        return Err(format!(
            "'{s}' is absolute; use a path relative to the spec file's directory, e.g. ./app/"
        ));
    }
    let parts = clean_components(s, "the path")?;
    if parts.is_empty() {
        return Ok(".".to_string());
    }
    let mut out = parts.join("/");
    if s.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

/// An absolute path inside the image, without `..`.
pub(crate) fn image_path(s: &str) -> Check<String> {
    if !s.starts_with('/') {
        return Err(format!(
            "'{s}' must be an absolute path in the image, e.g. /app/"
        ));
    }
    if s.split('/').any(|p| p == "..") {
        return Err(format!("'{s}' contains '..'; write the path without it"));
    }
    let parts = clean_components(s, "the path")?;
    let mut out = format!("/{}", parts.join("/"));
    if s.ends_with('/') && !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn owner(s: &str) -> Check<Owner> {
    let parsed = s.split_once(':').and_then(|(u, g)| {
        Some(Owner {
            uid: parse_u32(u)?,
            gid: parse_u32(g)?,
        })
    });
    parsed.ok_or_else(|| format!("'{s}' is not an owner; use numeric uid:gid, e.g. 1000:1000"))
}

/// Dependency names and versions: also used in the default destination path.
pub(crate) fn dep_word(s: &str, what: &str) -> Check<String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'+'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not a valid {what}; use letters, digits, '.', '_', '-' or '+', starting with a letter or digit"
        ))
    }
}

pub(crate) fn source(s: &str) -> Check<Source> {
    if let Some(path) = s.strip_prefix("file://") {
        if path.starts_with('/') {
            if path.contains('\0') {
                return Err("the source contains a NUL byte".into());
            }
            return Ok(Source::File(path.to_string()));
        }
        return context_path(path).map(Source::File);
    }
    for scheme in ["http://", "https://"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "'{s}' is not a valid URL; use e.g. https://example.com/pkg.tgz"
                ));
            }
            return Ok(Source::Http(s.to_string()));
        }
    }
    Err(format!(
        "'{s}' is not a supported source; use file:///path/to/file, file://relative/path or http(s)://host/path"
    ))
}

pub(crate) fn env_key(s: &str) -> Check<String> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not a valid environment variable name; use letters, digits and '_', not starting with a digit"
        ))
    }
}

pub(crate) fn port(s: &str) -> Check<Port> {
    let err = || {
        format!(
            "'{s}' is not a port; use a number from 1 to 65535 with /tcp or /udp, e.g. 8080/tcp"
        )
    };
    let (num, protocol) = match s.split_once('/') {
        Some((n, "tcp")) => (n, Protocol::Tcp),
        Some((n, "udp")) => (n, Protocol::Udp),
        Some(_) => return Err(err()),
        None => (s, Protocol::Tcp),
    };
    match parse_u32(num) {
        Some(n @ 1..=65535) => Ok(Port {
            number: n as u16,
            protocol,
        }),
        _ => Err(err()),
    }
}

pub(crate) fn user(s: &str) -> Check<String> {
    let ok = !s.is_empty()
        && s.len() <= 256
        && s.matches(':').count() <= 1
        && !s.starts_with(':')
        && !s.ends_with(':')
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b':'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("'{s}' is not a user; use a name or uid, optionally with :group or :gid, e.g. appuser or 1000:1000"))
    }
}

/// Non-empty text without control characters other than tab (tags, author, ...).
pub(crate) fn text(s: &str, what: &str) -> Check<String> {
    if s.trim().is_empty() {
        return Err(format!(
            "the {what} is empty; remove the field or give a value"
        ));
    }
    Ok(s.to_string())
}

pub(crate) fn cpu(s: &str) -> Check<f64> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1_000_000.0 && !s.starts_with(['+', '.']) => {
            Ok(v)
        }
        _ => Err(format!(
            "'{s}' is not a CPU count; use a number greater than 0, e.g. 1.0 or 0.5"
        )),
    }
}

pub(crate) fn positive_int(s: &str, example: &str) -> Check<u64> {
    match (s.bytes().all(|b| b.is_ascii_digit()), s.parse::<u64>()) {
        (true, Ok(v)) if v > 0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number greater than 0; use e.g. {example}"
        )),
    }
}

pub(crate) fn id(s: &str) -> Check<u32> {
    parse_u32(s)
        .ok_or_else(|| format!("'{s}' is not a numeric id; use a number from 0 to 4294967295"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(context_path("./app/").unwrap(), "app/");
        assert_eq!(context_path("app").unwrap(), "app");
        assert_eq!(context_path("./").unwrap(), ".");
        assert_eq!(context_path("a/../b//c/.").unwrap(), "b/c");
        assert_eq!(context_path("a/..").unwrap(), ".");
        assert!(context_path("../x")
            .unwrap_err()
            .contains("escapes the build context"));
        assert!(context_path("a/../../x").unwrap_err().contains("escapes"));
        assert!(context_path("/etc/passwd")
            .unwrap_err()
            .contains("is absolute"));
        assert!(context_path("").is_err());
        assert_eq!(image_path("/app/").unwrap(), "/app/");
        assert_eq!(image_path("/").unwrap(), "/");
        assert_eq!(image_path("//a/./b").unwrap(), "/a/b");
        assert!(image_path("app/")
            .unwrap_err()
            .contains("must be an absolute path"));
        assert!(image_path("/a/../b").unwrap_err().contains("contains '..'"));
    }

    #[test]
    fn scalars() {
        assert_eq!(
            owner("1000:100").unwrap(),
            Owner {
                uid: 1000,
                gid: 100
            }
        );
        assert!(owner("root:root").is_err());
        assert!(owner("1000").is_err());
        assert!(owner("1:2:3").is_err());
        assert_eq!(port("3000/tcp").unwrap().to_string(), "3000/tcp");
        assert_eq!(port("53/udp").unwrap().protocol, Protocol::Udp);
        assert_eq!(port("80").unwrap().to_string(), "80/tcp");
        for p in ["0/tcp", "65536/tcp", "80/sctp", "/tcp", "x/tcp", "-1"] {
            assert!(port(p).is_err(), "{p}");
        }
        assert!(env_key("NODE_ENV").is_ok() && env_key("_x1").is_ok());
        assert!(env_key("1X").is_err() && env_key("A-B").is_err() && env_key("").is_err());
        assert!(cpu("1.0").is_ok() && cpu("0.5").is_ok() && cpu("2").is_ok());
        for c in ["0", "-1", "nan", "inf", "abc", ""] {
            assert!(cpu(c).is_err(), "{c}");
        }
        assert_eq!(positive_int("256", "256"), Ok(256));
        assert!(positive_int("0", "256").is_err() && positive_int("-3", "1").is_err());
        assert!(user("appuser").is_ok() && user("1000:1000").is_ok());
        assert!(user("a b").is_err() && user(":x").is_err());
    }

    #[test]
    fn sources() {
        assert_eq!(
            source("file:///abs/x.tgz").unwrap(),
            Source::File("/abs/x.tgz".into())
        );
        assert_eq!(
            source("file://deps/x.tgz").unwrap(),
            Source::File("deps/x.tgz".into())
        );
        assert!(source("file://../x.tgz").unwrap_err().contains("escapes"));
        assert!(matches!(
            source("https://example.com/a.tgz").unwrap(),
            Source::Http(_)
        ));
        assert!(source("https:///a").is_err());
        assert!(source("ftp://x/y")
            .unwrap_err()
            .contains("not a supported source"));
        assert!(source("/abs/x").is_err());
    }

    #[test]
    fn names_versions_bases() {
        assert!(name("myapp").is_ok() && name("team/my-app").is_ok());
        assert!(name("MyApp").unwrap_err().contains("must be lowercase"));
        assert!(name("my app").is_err());
        assert!(version("1.0.0").is_ok());
        assert!(version("-1").is_err());
        assert_eq!(base("scratch").unwrap(), Base::Scratch);
        assert!(matches!(base("alpine:3.20").unwrap(), Base::Image(_)));
        let d = Digest::sha256_of(b"x").to_string();
        assert!(matches!(base(&d).unwrap(), Base::Id(_)));
        assert!(base("sha256:abc").is_err());
        assert!(base("Alpine").unwrap_err().contains("must be lowercase"));
        assert!(format("gcr-v1.0").is_ok());
        assert_eq!(
            format("gcr-v2").unwrap_err(),
            "unsupported format 'gcr-v2'; this gcr reads format: gcr-v1.0"
        );
    }
}
