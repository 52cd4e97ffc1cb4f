//! The volume plan of a container, computed at create time from `-v`, `--tmpfs` and the
//! image's `Volumes`, stored in `Resolved::volume_data`, and turned into mounts at start.

use serde::{Deserialize, Serialize};

use crate::container::config::RunOptions;
use crate::{names, EngineError};

/// One planned mount.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Planned {
    /// A named or anonymous volume of the store.
    Volume {
        name: String,
        dest: String,
        ro: bool,
        anonymous: bool,
    },
    /// A host directory or file.
    Bind {
        source: String,
        dest: String,
        ro: bool,
    },
    /// A tmpfs with mount options.
    Tmpfs { dest: String, options: Vec<String> },
}

impl Planned {
    pub fn dest(&self) -> &str {
        match self {
            Planned::Volume { dest, .. }
            | Planned::Bind { dest, .. }
            | Planned::Tmpfs { dest, .. } => dest,
        }
    }
}

/// The stored form.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Plan {
    #[serde(default)]
    pub mounts: Vec<Planned>,
}

impl Plan {
    pub fn from_value(v: &serde_json::Value) -> Plan {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }

    /// Names of the store volumes this plan uses.
    pub fn volume_names(&self) -> impl Iterator<Item = (&str, bool)> {
        self.mounts.iter().filter_map(|m| match m {
            Planned::Volume {
                name, anonymous, ..
            } => Some((name.as_str(), *anonymous)),
            _ => None,
        })
    }
}

fn check_dest(dest: &str, whole: &str) -> Result<String, EngineError> {
    if !dest.starts_with('/') || dest == "/" || dest.split('/').any(|c| c == "..") {
        return Err(EngineError::Usage(format!(
            "invalid container path '{dest}' in '{whole}'; give an absolute path other than /"
        )));
    }
    let mut d = dest.trim_end_matches('/').to_string();
    while d.contains("//") {
        d = d.replace("//", "/");
    }
    Ok(d)
}

fn parse_mode(opts: &str, whole: &str) -> Result<bool, EngineError> {
    let mut ro = false;
    for o in opts.split(',') {
        match o {
            "ro" => ro = true,
            "rw" | "" | "z" | "Z" => {}
            other => {
                return Err(EngineError::Usage(format!(
                    "unknown volume option '{other}' in '{whole}'; use ro or rw"
                )))
            }
        }
    }
    Ok(ro)
}

/// Parses one `-v` value. Anonymous volumes get a fresh random name.
pub fn parse_volume(v: &str) -> Result<Planned, EngineError> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dest, opts) = match parts.as_slice() {
        [d] => (None, *d, ""),
        [s, d] => (Some(*s), *d, ""),
        [s, d, o] => (Some(*s), *d, *o),
        _ => {
            return Err(EngineError::Usage(format!(
                "invalid volume '{v}'; use NAME:/path[:ro], /host/path:/path[:ro] or /path"
            )))
        }
    };
    let dest = check_dest(dest, v)?;
    let ro = parse_mode(opts, v)?;
    Ok(match src {
        None => Planned::Volume {
            name: names::random_id(),
            dest,
            ro,
            anonymous: true,
        },
        Some(s) if s.starts_with('/') => Planned::Bind {
            source: s.to_string(),
            dest,
            ro,
        },
        Some(s) if names::valid_name(s) => Planned::Volume {
            name: s.to_string(),
            dest,
            ro,
            anonymous: false,
        },
        Some(s) => {
            return Err(EngineError::Usage(format!(
                "invalid volume name '{s}' in '{v}'; use [a-zA-Z0-9][a-zA-Z0-9_.-] or an absolute host path"
            )))
        }
    })
}

/// Parses one `--tmpfs /path[:opts]`.
pub fn parse_tmpfs(t: &str) -> Result<Planned, EngineError> {
    let (dest, opts) = t.split_once(':').unwrap_or((t, ""));
    let dest = check_dest(dest, t)?;
    let mut options: Vec<String> = ["nosuid", "nodev", "noexec"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        if o.contains(char::is_whitespace) {
            return Err(EngineError::Usage(format!(
                "invalid tmpfs option '{o}' in '{t}'; use e.g. size=64m,mode=1777"
            )));
        }
        options.push(o.to_string());
    }
    Ok(Planned::Tmpfs { dest, options })
}

/// The whole plan: explicit mounts first, then anonymous volumes for image `Volumes` not
/// covered by them. Two mounts on one path are refused.
pub fn plan(opts: &RunOptions, image_config: &serde_json::Value) -> Result<Plan, EngineError> {
    let mut mounts = Vec::new();
    for v in &opts.volumes {
        mounts.push(parse_volume(v)?);
    }
    for t in &opts.tmpfs {
        mounts.push(parse_tmpfs(t)?);
    }
    for (i, m) in mounts.iter().enumerate() {
        if mounts[..i].iter().any(|o| o.dest() == m.dest()) {
            return Err(EngineError::Usage(format!(
                "two mounts on {}; give each -v/--tmpfs its own container path",
                m.dest()
            )));
        }
    }
    if let Some(vols) = image_config
        .pointer("/config/Volumes")
        .and_then(|v| v.as_object())
    {
        for dest in vols.keys() {
            let Ok(d) = check_dest(dest, dest) else {
                continue;
            };
            if !mounts.iter().any(|m| m.dest() == d) {
                mounts.push(Planned::Volume {
                    name: names::random_id(),
                    dest: d,
                    ro: false,
                    anonymous: true,
                });
            }
        }
    }
    Ok(Plan { mounts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_volume_forms() {
        assert_eq!(
            parse_volume("data:/app/data").unwrap(),
            Planned::Volume {
                name: "data".into(),
                dest: "/app/data".into(),
                ro: false,
                anonymous: false
            }
        );
        assert_eq!(
            parse_volume("/srv:/srv/:ro").unwrap(),
            Planned::Bind {
                source: "/srv".into(),
                dest: "/srv".into(),
                ro: true
            }
        );
        assert!(matches!(
            parse_volume("/cache").unwrap(),
            Planned::Volume {
                anonymous: true,
                ..
            }
        ));
        for bad in [
            "data:relative",
            "data:/",
            "a:/b:/c:/d",
            "bad name:/x",
            "d:/x:rx",
            "d:/a/../b",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad} accepted");
        }
        let Planned::Tmpfs { dest, options } = parse_tmpfs("/tmp:size=64m").unwrap() else {
            panic!("not tmpfs")
        };
        assert_eq!(dest, "/tmp");
        assert!(options.contains(&"size=64m".to_string()));
    }

    #[test]
    fn image_volumes_become_anonymous_unless_covered() {
        let opts = RunOptions {
            volumes: vec!["named:/data".into()],
            ..Default::default()
        };
        let cfg = serde_json::json!({"config": {"Volumes": {"/data": {}, "/logs": {}}}});
        let p = plan(&opts, &cfg).unwrap();
        assert_eq!(p.mounts.len(), 2);
        assert!(
            matches!(&p.mounts[1], Planned::Volume { dest, anonymous: true, .. } if dest == "/logs")
        );
        let dup = RunOptions {
            volumes: vec!["a:/x".into()],
            tmpfs: vec!["/x".into()],
            ..Default::default()
        };
        assert!(plan(&dup, &cfg).is_err());
    }
}
