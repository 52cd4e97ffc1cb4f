//! RUN: its argv (shell form under the stage's SHELL; a lone heredoc is the script, other
//! heredocs go to the shell with the command), and its `--mount`s: `cache` (a directory
//! kept in the store between builds, by id), `secret` (a `--secret` value as a file, never
//! in a layer), `bind` (a context path or another stage's files, read-only unless `rw`,
//! whose writes are then discarded), `tmpfs`.

use std::path::{Path, PathBuf};

use gcr_core::dockerfile::{CmdLine, RunInstr};

use crate::error::{BuildError, Result};
use crate::{StepMount, StepSecret};

/// Resolves a `from=` to layer dirs (top first) and a content digest.
pub type FromFn<'a> = dyn FnMut(&str) -> Result<(Vec<PathBuf>, String)> + 'a;

/// What a RUN's `--mount`s need from the rest of the build.
pub struct MountEnv<'a> {
    pub ctx: &'a Path,
    pub store_root: &'a Path,
    pub tmp: &'a Path,
    /// Resolves `from=` (a stage name or index, else an image) to its layer dirs (top first)
    /// and a digest of its content.
    pub from: &'a mut FromFn<'a>,
    /// Ids of the secrets the build was given.
    pub secrets: &'a dyn Fn(&str) -> bool,
}

/// A RUN's mounts, and what of them goes in the step's cache key.
pub struct Mounts {
    pub mounts: Vec<StepMount>,
    pub secrets: Vec<StepSecret>,
    pub key: Vec<String>,
    /// Temporary copies (of `rw` binds) to remove after the step.
    pub scratch: Vec<PathBuf>,
}

/// The argv of a RUN.
pub fn argv(run: &RunInstr, shell: Vec<String>) -> Vec<String> {
    match &run.cmd {
        CmdLine::Exec(v) => v.clone(),
        CmdLine::Shell(s) => {
            let mut cmd = s.clone();
            let lone = run.heredocs.len() == 1
                && s.trim()
                    .trim_start_matches("<<")
                    .trim_start_matches('-')
                    .trim_matches(['"', '\''])
                    == run.heredocs[0].name;
            if lone {
                cmd = run.heredocs[0].content.clone();
            } else if !run.heredocs.is_empty() {
                for h in &run.heredocs {
                    cmd.push('\n');
                    cmd.push_str(&h.content);
                    cmd.push_str(&h.name);
                }
            }
            let mut v = shell;
            v.push(cmd);
            v
        }
    }
}

fn bad(m: String) -> BuildError {
    BuildError::Usage(m)
}

fn octal(v: &str, what: &str) -> Result<u32> {
    u32::from_str_radix(v, 8).map_err(|_| {
        bad(format!(
            "invalid {what} '{v}' in --mount; use octal, e.g. 0755"
        ))
    })
}

fn num(v: &str, what: &str) -> Result<u32> {
    v.parse()
        .map_err(|_| bad(format!("invalid {what} '{v}' in --mount; use a number")))
}

/// Parses and prepares the `--mount`s of a RUN (`workdir` makes relative targets absolute).
pub fn mounts(specs: &[String], workdir: &str, env: &mut MountEnv<'_>) -> Result<Mounts> {
    let mut out = Mounts {
        mounts: Vec::new(),
        secrets: Vec::new(),
        key: Vec::new(),
        scratch: Vec::new(),
    };
    for spec in specs {
        let mut kv: Vec<(String, String)> = Vec::new();
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, "true"));
            kv.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let get = |names: &[&str]| {
            kv.iter()
                .rev()
                .find(|(k, _)| names.contains(&k.as_str()))
                .map(|(_, v)| v.clone())
        };
        for (k, _) in &kv {
            if !matches!(
                k.as_str(),
                "type"
                    | "target"
                    | "dst"
                    | "destination"
                    | "source"
                    | "src"
                    | "from"
                    | "ro"
                    | "readonly"
                    | "rw"
                    | "readwrite"
                    | "id"
                    | "sharing"
                    | "mode"
                    | "uid"
                    | "gid"
                    | "required"
                    | "size"
                    | "env"
            ) {
                return Err(bad(format!("unknown --mount option '{k}' in '{spec}'")));
            }
        }
        let typ = get(&["type"]).unwrap_or_else(|| "bind".into());
        let target = get(&["target", "dst", "destination"]).map(|t| {
            if t.starts_with('/') {
                t
            } else {
                format!("{}/{t}", workdir.trim_end_matches('/'))
            }
        });
        let truthy = |names: &[&str]| get(names).is_some_and(|v| v != "false");
        match typ.as_str() {
            "cache" => {
                let target = target.ok_or_else(|| bad(format!("--mount {spec} needs target=")))?;
                let id = get(&["id"]).unwrap_or_else(|| target.clone());
                let mode = get(&["mode"]).map(|m| octal(&m, "mode")).transpose()?.unwrap_or(0o755);
                let uid = get(&["uid"]).map(|v| num(&v, "uid")).transpose()?.unwrap_or(0);
                let gid = get(&["gid"]).map(|v| num(&v, "gid")).transpose()?.unwrap_or(0);
                if get(&["from"]).is_some() {
                    return Err(bad(format!("--mount type=cache with from= is not supported; drop from= in '{spec}'")));
                }
                use sha2::Digest as _;
                let dir = env
                    .store_root
                    .join("build-cache")
                    .join(hex::encode(sha2::Sha256::digest(id.as_bytes())));
                if !dir.exists() {
                    std::fs::create_dir_all(&dir).map_err(BuildError::io("cannot create", &dir))?;
                    std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                        .map_err(BuildError::io("cannot chown", &dir))?;
                    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(mode))
                        .map_err(BuildError::io("cannot chmod", &dir))?;
                }
                out.key.push(format!("cache {id} {target}"));
                out.mounts.push(StepMount::Bind {
                    source: dir,
                    target,
                    readonly: truthy(&["ro", "readonly"]),
                });
            }
            "secret" => {
                let id = get(&["id"])
                    .or_else(|| target.as_ref().and_then(|t| t.rsplit('/').next().map(str::to_string)))
                    .ok_or_else(|| bad(format!("--mount {spec} needs id=")))?;
                if get(&["env"]).is_some() {
                    return Err(bad(format!("--mount type=secret,env= is not supported; mount the secret as a file in '{spec}'")));
                }
                if !(env.secrets)(&id) {
                    if truthy(&["required"]) {
                        return Err(bad(format!("secret '{id}' is required by RUN --mount but was not given; pass --secret id={id},src=FILE")));
                    }
                    continue;
                }
                let t = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                out.key.push(format!("secret {id} {t}"));
                out.secrets.push(StepSecret {
                    id,
                    target: t,
                    uid: get(&["uid"]).map(|v| num(&v, "uid")).transpose()?.unwrap_or(0),
                    gid: get(&["gid"]).map(|v| num(&v, "gid")).transpose()?.unwrap_or(0),
                    mode: get(&["mode"]).map(|m| octal(&m, "mode")).transpose()?.unwrap_or(0o400),
                });
            }
            "tmpfs" => {
                let target = target.ok_or_else(|| bad(format!("--mount {spec} needs target=")))?;
                let size = get(&["size"])
                    .map(|s| gcr_core::units::parse_size(&s).map_err(|_| bad(format!("invalid size '{s}' in --mount"))))
                    .transpose()?;
                out.key.push(format!("tmpfs {target}"));
                out.mounts.push(StepMount::Tmpfs { target, size });
            }
            "bind" => {
                let target = target.ok_or_else(|| bad(format!("--mount {spec} needs target=")))?;
                let source = get(&["source", "src"]).unwrap_or_else(|| "/".into());
                let rw = truthy(&["rw", "readwrite"]);
                match get(&["from"]) {
                    Some(from) => {
                        let (lowers, digest) = (env.from)(&from)?;
                        let sub = source.trim_matches('/');
                        let lowers: Vec<PathBuf> = if sub.is_empty() {
                            lowers
                        } else {
                            lowers.iter().map(|l| l.join(sub)).filter(|p| p.is_dir()).collect()
                        };
                        if lowers.is_empty() {
                            return Err(bad(format!("--mount source {source} does not exist in {from}")));
                        }
                        out.key.push(format!("bind {digest} {source} {target}"));
                        out.mounts.push(StepMount::Layers { lowers, target });
                    }
                    None => {
                        let rel = source.trim_start_matches('/');
                        let abs = crate::context::resolve_src(env.ctx, rel)?;
                        let digest = crate::context::sha256_tree(&abs)?;
                        out.key.push(format!("bind ctx {rel} {digest} {target} {rw}"));
                        let src = if rw {
                            let copy = tempfile::Builder::new()
                                .prefix("build-bind-")
                                .tempdir_in(env.tmp)
                                .map_err(BuildError::io("cannot create a temp dir in", env.tmp))?
                                .keep();
                            let ok = std::process::Command::new("cp")
                                .arg("-a")
                                .arg(format!("{}/.", abs.display()))
                                .arg(&copy)
                                .status()
                                .is_ok_and(|s| s.success());
                            out.scratch.push(copy.clone());
                            if !ok {
                                return Err(bad(format!("cannot copy {rel} for a read-write bind mount")));
                            }
                            copy
                        } else {
                            abs
                        };
                        out.mounts.push(StepMount::Bind {
                            source: src,
                            target,
                            readonly: !rw,
                        });
                    }
                }
            }
            "ssh" => return Err(bad("RUN --mount=type=ssh is not supported: gcr builds have no SSH agent forwarding; fetch with a secret instead".into())),
            other => return Err(bad(format!("unknown --mount type '{other}'; use bind, cache, secret or tmpfs"))),
        }
    }
    Ok(out)
}
