//! The corpus: one directory per case under `tests/dockerfile/corpus/`, each a build
//! context with a `Dockerfile` and an optional `case.toml` (a small TOML subset, see
//! `tests/dockerfile/README.md`).

use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone)]
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    /// `--build-arg` values, `K=V`.
    pub build_args: Vec<String>,
    pub target: Option<String>,
    /// `id=ID,src=FILE`, FILE relative to the case directory.
    pub secrets: Vec<String>,
    /// `none` (default) or `host`.
    pub network: String,
    /// `FILE=NAME`: built first from the same context and tagged NAME.
    pub prebuild: Vec<(String, String)>,
    /// The Dockerfile a peer builds instead of `Dockerfile` (a feature it lacks).
    pub buildah_dockerfile: Option<String>,
    pub docker_dockerfile: Option<String>,
    /// Known differences: `[BUILDER ]ITEM: reason`, ITEM a path (covers what is below
    /// it) or `config.Field`; BUILDER limits it to comparisons with that builder.
    pub differences: Vec<String>,
}

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dockerfile/corpus")
}

/// Every case, sorted by name; `GCR_DOCKERFILE_CASES=a,b` keeps the cases whose names
/// contain one of the words.
pub fn corpus() -> Vec<Case> {
    let filter: Vec<String> = std::env::var("GCR_DOCKERFILE_CASES")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("read the corpus directory")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(['.', '_']))
        .filter(|n| filter.is_empty() || filter.iter().any(|f| n.contains(f.as_str())))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| load(&corpus_dir().join(&n)).unwrap_or_else(|e| panic!("case {n}: {e}")))
        .collect()
}

/// Reads a case directory (its `case.toml` when present).
pub fn load(dir: &Path) -> Result<Case, String> {
    let mut c = Case {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        dir: dir.to_path_buf(),
        network: "none".into(),
        ..Case::default()
    };
    if !dir.join("Dockerfile").is_file() {
        return Err("no Dockerfile".into());
    }
    let toml = match std::fs::read_to_string(dir.join("case.toml")) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(c),
        Err(e) => return Err(format!("case.toml: {e}")),
    };
    let mut lines = toml.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let mut line = line.trim().to_string();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |m: &str| format!("case.toml line {}: {m}", i + 1);
        // A list may go on over the following lines, up to a line starting with `]`.
        if line.ends_with('[') {
            for (_, more) in lines.by_ref() {
                let more = more.trim();
                if more.starts_with('#') {
                    continue;
                }
                line.push_str(more);
                if more.starts_with(']') {
                    break;
                }
            }
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| err("expected `key = value`"))?;
        let value = parse_value(value.trim()).map_err(|m| err(&m))?;
        let one = |v: Value| match v {
            Value::Str(s) => Ok(s),
            Value::List(_) => Err(err("expected a string")),
        };
        let list = |v: Value| match v {
            Value::List(l) => Ok(l),
            Value::Str(_) => Err(err("expected a list of strings")),
        };
        match key.trim() {
            "build_args" => c.build_args = list(value)?,
            "target" => c.target = Some(one(value)?),
            "secrets" => c.secrets = list(value)?,
            "network" => c.network = one(value)?,
            "buildah_dockerfile" => c.buildah_dockerfile = Some(one(value)?),
            "docker_dockerfile" => c.docker_dockerfile = Some(one(value)?),
            "differences" => c.differences = list(value)?,
            "prebuild" => {
                for p in list(value)? {
                    let (f, n) = p
                        .split_once('=')
                        .ok_or_else(|| err("prebuild entries are FILE=NAME"))?;
                    c.prebuild.push((f.to_string(), n.to_string()));
                }
            }
            k => return Err(err(&format!("unknown key {k}"))),
        }
    }
    for d in &c.differences {
        let (_, reason) = d
            .split_once(": ")
            .ok_or_else(|| format!("difference {d:?} has no `: reason`"))?;
        if reason.trim().is_empty() {
            return Err(format!("difference {d:?} gives no reason"));
        }
    }
    Ok(c)
}

enum Value {
    Str(String),
    List(Vec<String>),
}

/// A basic string (`"..."` with `\"` and `\\`) or a one-line list of them.
fn parse_value(v: &str) -> Result<Value, String> {
    fn string(s: &str) -> Result<(String, &str), String> {
        let s = s.strip_prefix('"').ok_or("expected a \"string\"")?;
        let mut out = String::new();
        let mut chars = s.char_indices();
        while let Some((i, ch)) = chars.next() {
            match ch {
                '"' => return Ok((out, &s[i + 1..])),
                '\\' => match chars.next() {
                    Some((_, '"')) => out.push('"'),
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, 'n')) => out.push('\n'),
                    _ => return Err("unsupported escape in string".into()),
                },
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }
    let strip_comment = |rest: &str| -> Result<(), String> {
        let rest = rest.trim();
        if rest.is_empty() || rest.starts_with('#') {
            Ok(())
        } else {
            Err(format!("unexpected {rest:?}"))
        }
    };
    if let Some(mut rest) = v.strip_prefix('[') {
        let mut items = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix(']') {
                strip_comment(r)?;
                return Ok(Value::List(items));
            }
            let (s, r) = string(rest)?;
            items.push(s);
            rest = r.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let (s, rest) = string(v)?;
    strip_comment(rest)?;
    Ok(Value::Str(s))
}

impl Case {
    /// The Dockerfile `builder` builds (relative to the case directory).
    pub fn dockerfile_for(&self, builder: &str) -> &str {
        let alt = match builder {
            "buildah" => self.buildah_dockerfile.as_deref(),
            "docker" => self.docker_dockerfile.as_deref(),
            _ => None,
        };
        alt.unwrap_or("Dockerfile")
    }

    /// Is `item` (a path or `config.Field`) a listed difference when comparing `a` and
    /// `b`?
    pub fn known(&self, a: &str, b: &str, item: &str) -> bool {
        self.differences.iter().any(|d| {
            let spec = d.split_once(": ").map(|(s, _)| s).unwrap_or(d);
            let (who, what) = match spec.split_once(' ') {
                Some((w, x)) => (Some(w), x),
                None => (None, spec),
            };
            let who_ok = who.is_none_or(|w| w == a || w == b);
            let what = what.trim_end_matches('/');
            let what_ok = item == what
                || (what.starts_with('/') && item.starts_with(&format!("{what}/")))
                || what == "/";
            who_ok && what_ok
        })
    }
}
