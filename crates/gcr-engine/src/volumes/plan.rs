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
        /// `--mount …,bind-propagation=`: the mount's propagation (default rprivate).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        propagation: Option<String>,
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
            propagation: None,
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

/// Parses one `--mount` value (Docker's CSV of `key=value`): `type=bind|volume|tmpfs`
/// (default volume), `source`/`src`, `target`/`destination`/`dst`, `readonly`/`ro`,
/// `bind-propagation`, `tmpfs-size`, `tmpfs-mode`. A bind source must exist already (as
/// Docker: unlike `-v`, `--mount` never creates it).
pub fn parse_mount(m: &str) -> Result<Planned, EngineError> {
    let bad = |why: String| EngineError::Usage(format!("invalid --mount '{m}': {why}"));
    let (mut typ, mut src, mut dst) = ("volume".to_string(), None::<String>, None::<String>);
    let (mut ro, mut propagation, mut tmpfs) = (false, None::<String>, Vec::<String>::new());
    for field in m.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let value = |k: &str| {
            v.map(str::to_string)
                .ok_or_else(|| bad(format!("{k} needs a value ({k}=…)")))
        };
        match k.as_str() {
            "type" => typ = value("type")?,
            "source" | "src" => src = Some(value("source")?),
            "target" | "destination" | "dst" => dst = Some(value("target")?),
            "readonly" | "ro" => {
                ro = match v.map(|v| v.to_ascii_lowercase()).as_deref() {
                    None | Some("1") | Some("true") => true,
                    Some("0") | Some("false") => false,
                    Some(o) => return Err(bad(format!("readonly={o} is not true or false"))),
                }
            }
            "bind-propagation" => {
                let p = value("bind-propagation")?;
                let known = ["private", "rprivate", "slave", "rslave", "shared", "rshared"];
                if !known.contains(&p.as_str()) {
                    return Err(bad(format!(
                        "bind-propagation {p} is not one of {}",
                        known.join(", ")
                    )));
                }
                propagation = Some(p);
            }
            "tmpfs-size" => {
                let v = value("tmpfs-size")?;
                let bytes = gcr_core::units::parse_size(&v)
                    .map_err(|_| bad(format!("tmpfs-size {v} is not a size (e.g. 64m)")))?;
                tmpfs.push(format!("size={bytes}"));
            }
            "tmpfs-mode" => {
                let v = value("tmpfs-mode")?;
                if u32::from_str_radix(&v, 8).is_err() {
                    return Err(bad(format!("tmpfs-mode {v} is not an octal mode (e.g. 1777)")));
                }
                tmpfs.push(format!("mode={v}"));
            }
            "consistency" => {}
            other => {
                return Err(bad(format!(
                    "the key {other} is not supported; use type, source, target, readonly, bind-propagation, tmpfs-size or tmpfs-mode"
                )))
            }
        }
    }
    let dst = dst.ok_or_else(|| bad("a target is required (target=/path)".into()))?;
    let dest = check_dest(&dst, m)?;
    let only = |what: &str, set: bool| {
        if set {
            Err(bad(format!(
                "{what} applies to another mount type than {typ}"
            )))
        } else {
            Ok(())
        }
    };
    match typ.as_str() {
        "bind" => {
            only("tmpfs-size/tmpfs-mode", !tmpfs.is_empty())?;
            let source =
                src.ok_or_else(|| bad("a bind needs a source (source=/host/path)".into()))?;
            if !source.starts_with('/') {
                return Err(bad(format!("bind source {source} is not an absolute path")));
            }
            if !std::path::Path::new(&source).exists() {
                return Err(bad(format!(
                    "bind source path {source} does not exist; create it first (--mount never creates it, -v does)"
                )));
            }
            Ok(Planned::Bind {
                source,
                dest,
                ro,
                propagation,
            })
        }
        "volume" => {
            only("tmpfs-size/tmpfs-mode", !tmpfs.is_empty())?;
            only("bind-propagation", propagation.is_some())?;
            match src {
                Some(name) if !names::valid_name(&name) => Err(bad(format!(
                    "invalid volume name {name}; use [a-zA-Z0-9][a-zA-Z0-9_.-]"
                ))),
                Some(name) => Ok(Planned::Volume {
                    name,
                    dest,
                    ro,
                    anonymous: false,
                }),
                None => Ok(Planned::Volume {
                    name: names::random_id(),
                    dest,
                    ro,
                    anonymous: true,
                }),
            }
        }
        "tmpfs" => {
            only("bind-propagation", propagation.is_some())?;
            if src.is_some() {
                return Err(bad("a tmpfs takes no source".into()));
            }
            let mut options: Vec<String> = ["nosuid", "nodev", "noexec"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            if ro {
                options.push("ro".into());
            }
            options.extend(tmpfs);
            Ok(Planned::Tmpfs { dest, options })
        }
        other => Err(bad(format!(
            "type {other} is not supported; use bind, volume or tmpfs"
        ))),
    }
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
    for m in &opts.mounts {
        mounts.push(parse_mount(m)?);
    }
    for (i, m) in mounts.iter().enumerate() {
        if mounts[..i].iter().any(|o| o.dest() == m.dest()) {
            return Err(EngineError::Usage(format!(
                "two mounts on {}; give each -v/--tmpfs/--mount its own container path",
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
    fn parses_mount_forms() {
        assert_eq!(
            parse_mount("type=bind,source=/tmp,target=/t,readonly,bind-propagation=rslave")
                .unwrap(),
            Planned::Bind {
                source: "/tmp".into(),
                dest: "/t".into(),
                ro: true,
                propagation: Some("rslave".into()),
            }
        );
        assert_eq!(
            parse_mount("src=data,dst=/data,ro=false").unwrap(),
            Planned::Volume {
                name: "data".into(),
                dest: "/data".into(),
                ro: false,
                anonymous: false,
            }
        );
        assert_eq!(
            parse_mount("type=tmpfs,destination=/scratch,tmpfs-size=1m,tmpfs-mode=700").unwrap(),
            Planned::Tmpfs {
                dest: "/scratch".into(),
                options: ["nosuid", "nodev", "noexec", "size=1048576", "mode=700"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            }
        );
        for (bad, says) in [
            (
                "type=bind,source=/no/such/dir/x,target=/t",
                "does not exist",
            ),
            ("type=bind,target=/t", "needs a source"),
            ("type=volume,source=v", "target is required"),
            ("type=nfs,target=/t", "type nfs"),
            (
                "type=bind,source=/tmp,target=/t,tmpfs-size=1m",
                "another mount type",
            ),
            (
                "type=tmpfs,target=/t,volume-driver=x",
                "volume-driver is not supported",
            ),
            ("target=/t,readonly=maybe", "not true or false"),
            ("type=tmpfs,target=/t,tmpfs-mode=rwx", "octal"),
        ] {
            let e = parse_mount(bad).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains(bad), "{bad}: {e}");
        }
    }

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
                ro: true,
                propagation: None,
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
