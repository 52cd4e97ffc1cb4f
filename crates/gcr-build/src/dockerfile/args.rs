//! Build arguments with Docker's scoping: ARGs before the first FROM (the global scope) are
//! visible to FROM lines only, unless a stage declares them again; a stage sees an ARG from
//! its declaration on, valued by `--build-arg`, else its own default, else the global one.
//! The platform ARGs (TARGETPLATFORM, BUILDARCH, ...) are predefined in the global scope,
//! and the proxy ARGs reach RUN without a declaration.

use std::collections::BTreeMap;

use gcr_core::dockerfile::words;
use gcr_core::dockerfile::{ArgDecl, Located};

/// The proxy variables Docker passes to RUN without an ARG (and keeps out of the history).
pub fn is_proxy(name: &str) -> bool {
    matches!(
        name.to_ascii_uppercase().as_str(),
        "HTTP_PROXY" | "HTTPS_PROXY" | "FTP_PROXY" | "NO_PROXY" | "ALL_PROXY"
    )
}

/// `linux/amd64`-style platform of this host.
pub fn host_platform() -> (String, String, String) {
    let arch = crate::config::host_arch().to_string();
    let variant = if arch == "arm64" { "v8" } else { "" };
    ("linux".into(), arch, variant.into())
}

/// The predefined platform ARGs for a target platform (the host's unless given).
pub fn platform_args(target: Option<&str>) -> Vec<(String, String)> {
    let (os, arch, variant) = host_platform();
    let (tos, tarch, tvariant) = match target.map(|t| t.split('/').collect::<Vec<_>>()) {
        Some(p) if p.len() >= 2 => (
            p[0].to_string(),
            p[1].to_string(),
            p.get(2).map(|s| s.to_string()).unwrap_or_default(),
        ),
        _ => (os.clone(), arch.clone(), variant.clone()),
    };
    let plat = |o: &str, a: &str, v: &str| {
        if v.is_empty() {
            format!("{o}/{a}")
        } else {
            format!("{o}/{a}/{v}")
        }
    };
    vec![
        ("BUILDPLATFORM".into(), plat(&os, &arch, &variant)),
        ("BUILDOS".into(), os.clone()),
        ("BUILDARCH".into(), arch.clone()),
        ("BUILDVARIANT".into(), variant.clone()),
        ("TARGETPLATFORM".into(), plat(&tos, &tarch, &tvariant)),
        ("TARGETOS".into(), tos),
        ("TARGETARCH".into(), tarch),
        ("TARGETVARIANT".into(), tvariant),
    ]
}

/// The global scope: platform ARGs, then each ARG before FROM in order.
pub fn global_scope(
    meta: &[Located<Vec<ArgDecl>>],
    build_args: &BTreeMap<String, String>,
    platform: Option<&str>,
    escape: char,
) -> Result<Vec<(String, String)>, (gcr_core::dockerfile::Loc, String)> {
    let mut scope = platform_args(platform);
    for l in meta {
        for a in &l.value {
            let v = match (build_args.get(&a.name), &a.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => {
                    Some(words::expand(d, escape, &scope).map_err(|e| (l.loc, e.to_string()))?)
                }
                (None, None) => None,
            };
            if let Some(v) = v {
                scope.push((a.name.clone(), v));
            }
        }
    }
    Ok(scope)
}

/// The value an `ARG` declared in a stage takes.
pub fn stage_value(
    decl: &ArgDecl,
    build_args: &BTreeMap<String, String>,
    expanded_default: Option<String>,
    global: &[(String, String)],
) -> Option<String> {
    if let Some(v) = build_args.get(&decl.name) {
        return Some(v.clone());
    }
    if expanded_default.is_some() {
        return expanded_default;
    }
    global
        .iter()
        .rev()
        .find(|(k, _)| *k == decl.name)
        .map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gcr_core::dockerfile::Loc;

    #[test]
    fn scoping() {
        let meta = vec![Located {
            loc: Loc::default(),
            value: vec![
                ArgDecl {
                    name: "V".into(),
                    default: Some("1".into()),
                },
                ArgDecl {
                    name: "W".into(),
                    default: Some("${V}.${TARGETARCH}".into()),
                },
                ArgDecl {
                    name: "U".into(),
                    default: None,
                },
            ],
        }];
        let mut ba = BTreeMap::new();
        ba.insert("V".to_string(), "2".to_string());
        let g = global_scope(&meta, &ba, Some("linux/arm64"), '\\').unwrap();
        let get = |k: &str| g.iter().rev().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        assert_eq!(get("V").as_deref(), Some("2"));
        assert_eq!(get("W").as_deref(), Some("2.arm64"));
        assert_eq!(get("U"), None);
        assert_eq!(get("TARGETPLATFORM").as_deref(), Some("linux/arm64"));
        let d = ArgDecl {
            name: "W".into(),
            default: None,
        };
        assert_eq!(
            stage_value(&d, &BTreeMap::new(), None, &g).as_deref(),
            Some("2.arm64")
        );
        assert_eq!(
            stage_value(&d, &BTreeMap::new(), Some("x".into()), &g).as_deref(),
            Some("x")
        );
        assert!(is_proxy("http_proxy"));
        assert!(!is_proxy("PATH"));
    }
}
