//! Converts the positioned YAML tree into the typed [`Spec`], field by field, so every
//! error carries the file, line, column and dotted path of the offending value (or of the
//! key, for unknown fields, or of the enclosing mapping, for missing ones).

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::{join, Mark, SpecError};
use super::model::*;
use super::validate::{self as v, Check};
use super::yaml::{self, Kind, Node};
use crate::units::{parse_duration, parse_signal, parse_size, signal_name};

/// Largest spec accepted, in bytes.
pub const MAX_SPEC_BYTES: usize = 1024 * 1024;

const TOP: &[&str] = &[
    "format", "name", "version", "base", "build", "runtime", "metadata",
];
const BUILD: &[&str] = &[
    "copy",
    "dependencies",
    "commands",
    "network",
    "env",
    "secrets",
];
const COPY: &[&str] = &["src", "dest", "hash", "owner"];
const DEP: &[&str] = &["name", "version", "source", "hash", "dest", "extract"];
const RUNTIME: &[&str] = &[
    "entrypoint",
    "cmd",
    "workdir",
    "user",
    "uid",
    "gid",
    "resources",
    "ports",
    "volumes",
    "read_only_rootfs",
    "stop_signal",
    "healthcheck",
];
const RESOURCES: &[&str] = &["memory", "cpu", "pids", "storage"];
const HEALTH: &[&str] = &["command", "interval", "timeout", "retries", "start_period"];
#[path = "parse_secrets.rs"]
mod secrets;

const METADATA: &[&str] = &["author", "description", "tags", "created"];

struct Cx<'a> {
    file: &'a str,
}

/// A mapping whose keys were checked against the allowed list.
struct Obj<'n> {
    entries: &'n [(Node, Node)],
    path: String,
    mark: Mark,
}

impl<'n> Obj<'n> {
    /// The value of `key`, unless missing or null.
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(&k.kind, Kind::Scalar { value, .. } if value == key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

impl<'a> Cx<'a> {
    fn err(&self, node: &Node, path: &str, msg: impl Into<String>) -> SpecError {
        SpecError::new(self.file, node.mark, path, msg)
    }

    fn object<'n>(
        &self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
    ) -> Result<Obj<'n>, SpecError> {
        let entries: &'n [(Node, Node)] = match &node.kind {
            Kind::Map(entries) => entries,
            _ if node.is_null() => &[],
            _ => {
                let msg = format!(
                    "expected a mapping with fields {}, found {}",
                    allowed.join(", "),
                    node.describe()
                );
                return Err(self.err(node, path, msg));
            }
        };
        for (k, _) in entries {
            if let Kind::Scalar { value, .. } = &k.kind {
                if !allowed.contains(&value.as_str()) {
                    let msg = format!("unknown field; expected one of {}", allowed.join(", "));
                    return Err(self.err(k, &join(path, value), msg));
                }
            }
        }
        Ok(Obj {
            entries,
            path: path.to_string(),
            mark: node.mark,
        })
    }

    fn required<'n>(&self, obj: &Obj<'n>, key: &str, example: &str) -> Result<&'n Node, SpecError> {
        obj.get(key).ok_or_else(|| {
            SpecError::new(
                self.file,
                obj.mark,
                &obj.path(key),
                format!("missing required field; add e.g. `{key}: {example}`"),
            )
        })
    }

    fn scalar<'n>(&self, node: &'n Node, path: &str) -> Result<&'n str, SpecError> {
        match &node.kind {
            Kind::Scalar { value, .. } if !node.is_null() => Ok(value),
            _ => Err(self.err(
                node,
                path,
                format!("expected a single value, found {}", node.describe()),
            )),
        }
    }

    /// Scalar text through a validator.
    fn with<T>(
        &self,
        node: &Node,
        path: &str,
        f: impl FnOnce(&str) -> Check<T>,
    ) -> Result<T, SpecError> {
        let s = self.scalar(node, path)?;
        f(s).map_err(|m| self.err(node, path, m))
    }

    /// Optional field through a validator.
    fn opt<T>(
        &self,
        obj: &Obj,
        key: &str,
        f: impl FnOnce(&str) -> Check<T>,
    ) -> Result<Option<T>, SpecError> {
        obj.get(key)
            .map(|n| self.with(n, &obj.path(key), f))
            .transpose()
    }

    fn list<'n>(&self, node: &'n Node, path: &str, example: &str) -> Result<&'n [Node], SpecError> {
        match &node.kind {
            Kind::Seq(items) => Ok(items),
            _ if node.is_null() => Ok(&[]),
            _ => Err(self.err(
                node,
                path,
                format!("expected a list, e.g. {example}; found {}", node.describe()),
            )),
        }
    }

    /// Each item of an optional list through a validator.
    fn list_of<T>(
        &self,
        obj: &Obj,
        key: &str,
        example: &str,
        f: impl Fn(&str) -> Check<T>,
    ) -> Result<Vec<T>, SpecError> {
        let Some(node) = obj.get(key) else {
            return Ok(Vec::new());
        };
        let path = obj.path(key);
        let items = self.list(node, &path, example)?;
        items
            .iter()
            .enumerate()
            .map(|(i, n)| self.with(n, &format!("{path}[{i}]"), &f))
            .collect()
    }

    fn boolean(&self, obj: &Obj, key: &str) -> Result<bool, SpecError> {
        let Some(node) = obj.get(key) else {
            return Ok(false);
        };
        let path = obj.path(key);
        match (&node.kind, self.scalar(node, &path)?) {
            (Kind::Scalar { plain: true, .. }, "true" | "True" | "TRUE") => Ok(true),
            (Kind::Scalar { plain: true, .. }, "false" | "False" | "FALSE") => Ok(false),
            (_, s) => Err(self.err(
                node,
                &path,
                format!("'{s}' is not a boolean; use true or false"),
            )),
        }
    }

    fn command(&self, node: &Node, path: &str) -> Result<Command, SpecError> {
        match &node.kind {
            Kind::Scalar { value, .. } if !node.is_null() => {
                if value.trim().is_empty() {
                    return Err(self.err(node, path, "the command is empty; give a shell command or a list"));
                }
                Ok(Command::Shell(value.clone()))
            }
            Kind::Seq(items) => {
                if items.is_empty() {
                    return Err(self.err(node, path, "the command list is empty; use e.g. [/bin/app, --flag]"));
                }
                let argv = items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| self.scalar(n, &format!("{path}[{i}]")).map(str::to_string))
                    .collect::<Result<Vec<_>, _>>()?;
                if argv[0].is_empty() {
                    return Err(self.err(&items[0], &format!("{path}[0]"), "the program to run is empty"));
                }
                Ok(Command::Exec(argv))
            }
            _ => Err(self.err(
                node,
                path,
                format!(
                    "expected a command: a string (run by /bin/sh -c) or a list of strings (exec form), found {}",
                    node.describe()
                ),
            )),
        }
    }
}

/// Parses and validates a spec. `file` is only used in error messages.
pub fn parse_spec(file: &str, text: &str) -> Result<Spec, SpecError> {
    let cx = Cx { file };
    if text.len() > MAX_SPEC_BYTES {
        return Err(SpecError::new(
            file,
            Mark::START,
            "",
            format!(
                "the spec is {} bytes; a spec may be at most 1 MiB",
                text.len()
            ),
        ));
    }
    let Some(root) = yaml::load(file, text)? else {
        return Err(SpecError::new(
            file,
            Mark::START,
            "",
            "the spec is empty; it needs at least format, name, version and base",
        ));
    };
    if !matches!(root.kind, Kind::Map(_)) {
        return Err(cx.err(
            &root,
            "",
            "a spec must be a YAML mapping with format, name, version and base",
        ));
    }
    let top = cx.object(&root, "", TOP)?;
    let format = cx.with(cx.required(&top, "format", FORMAT)?, "format", v::format)?;
    let name = cx.with(cx.required(&top, "name", "myapp")?, "name", v::name)?;
    let version = cx.with(
        cx.required(&top, "version", "1.0.0")?,
        "version",
        v::version,
    )?;
    let base = cx.with(cx.required(&top, "base", "scratch")?, "base", v::base)?;
    let build = match top.get("build") {
        Some(n) => build(&cx, n)?,
        None => Build::default(),
    };
    let runtime = match top.get("runtime") {
        Some(n) => runtime(&cx, n)?,
        None => Runtime::default(),
    };
    let metadata = match top.get("metadata") {
        Some(n) => metadata(&cx, n)?,
        None => Metadata::default(),
    };
    Ok(Spec {
        format,
        name,
        version,
        base,
        build,
        runtime,
        metadata,
    })
}

fn build(cx: &Cx, node: &Node) -> Result<Build, SpecError> {
    let obj = cx.object(node, "build", BUILD)?;
    let mut out = Build::default();
    if let Some(list) = obj.get("copy") {
        for (i, item) in cx
            .list(list, "build.copy", "[{src: ./app/, dest: /app/}]")?
            .iter()
            .enumerate()
        {
            let c = cx.object(item, &format!("build.copy[{i}]"), COPY)?;
            out.copy.push(CopyStep {
                src: cx.with(
                    cx.required(&c, "src", "./app/")?,
                    &c.path("src"),
                    v::context_path,
                )?,
                dest: cx.with(
                    cx.required(&c, "dest", "/app/")?,
                    &c.path("dest"),
                    v::image_path,
                )?,
                hash: cx.opt(&c, "hash", v::digest)?,
                owner: cx.opt(&c, "owner", v::owner)?.unwrap_or_default(),
            });
        }
    }
    if let Some(list) = obj.get("dependencies") {
        let example = "[{name: x, version: 1.0, source: file:///x.tgz, hash: sha256:...}]";
        for (i, item) in cx
            .list(list, "build.dependencies", example)?
            .iter()
            .enumerate()
        {
            let d = cx.object(item, &format!("build.dependencies[{i}]"), DEP)?;
            let name = cx.with(cx.required(&d, "name", "express")?, &d.path("name"), |s| {
                v::dep_word(s, "dependency name")
            })?;
            let version = cx.with(
                cx.required(&d, "version", "4.18.0")?,
                &d.path("version"),
                |s| v::dep_word(s, "dependency version"),
            )?;
            let source = cx.with(
                cx.required(&d, "source", "file:///path/x.tgz")?,
                &d.path("source"),
                v::source,
            )?;
            let hash = cx.with(
                cx.required(&d, "hash", "sha256:<64 hex>")?,
                &d.path("hash"),
                v::digest,
            )?;
            let dest = cx
                .opt(&d, "dest", v::image_path)?
                .unwrap_or_else(|| format!("/opt/deps/{name}-{version}/"));
            let extract = cx.boolean(&d, "extract")?;
            out.dependencies.push(Dependency {
                name,
                version,
                source,
                hash,
                dest,
                extract,
            });
        }
    }
    if let Some(list) = obj.get("commands") {
        for (i, item) in cx
            .list(list, "build.commands", "[make -C /app]")?
            .iter()
            .enumerate()
        {
            out.commands
                .push(cx.command(item, &format!("build.commands[{i}]"))?);
        }
    }
    out.network = cx
        .opt(&obj, "network", |s| match s {
            "none" => Ok(BuildNetwork::None),
            "host" => Ok(BuildNetwork::Host),
            _ => Err(format!("'{s}' is not a build network; use none or host")),
        })?
        .unwrap_or_default();
    out.env = env(cx, &obj)?;
    out.secrets = secrets::build_secrets(cx, &obj)?;
    Ok(out)
}

fn env(cx: &Cx, obj: &Obj) -> Result<BTreeMap<String, String>, SpecError> {
    let mut env = BTreeMap::new();
    let Some(node) = obj.get("env") else {
        return Ok(env);
    };
    let path = obj.path("env");
    let Kind::Map(entries) = &node.kind else {
        return Err(cx.err(
            node,
            &path,
            format!(
                "expected a mapping of NAME: value, found {}",
                node.describe()
            ),
        ));
    };
    for (k, val) in entries {
        let key = cx.with(k, &path, v::env_key)?;
        let p = join(&path, &key);
        if val.is_null() {
            return Err(cx.err(k, &p, "the value is missing; write \"\" for an empty value"));
        }
        env.insert(key, cx.scalar(val, &p)?.to_string());
    }
    Ok(env)
}

fn runtime(cx: &Cx, node: &Node) -> Result<Runtime, SpecError> {
    let obj = cx.object(node, "runtime", RUNTIME)?;
    let cmd = |key: &str| {
        obj.get(key)
            .map(|n| cx.command(n, &obj.path(key)))
            .transpose()
    };
    let resources = match obj.get("resources") {
        Some(n) => resources(cx, n)?,
        None => Resources::default(),
    };
    let healthcheck = obj
        .get("healthcheck")
        .map(|n| healthcheck(cx, n))
        .transpose()?;
    Ok(Runtime {
        entrypoint: cmd("entrypoint")?,
        cmd: cmd("cmd")?,
        workdir: cx.opt(&obj, "workdir", v::image_path)?,
        user: cx.opt(&obj, "user", v::user)?,
        uid: cx.opt(&obj, "uid", v::id)?,
        gid: cx.opt(&obj, "gid", v::id)?,
        resources,
        ports: cx.list_of(&obj, "ports", "[3000/tcp, 53/udp]", v::port)?,
        volumes: cx.list_of(&obj, "volumes", "[/app/data]", v::image_path)?,
        read_only_rootfs: cx.boolean(&obj, "read_only_rootfs")?,
        stop_signal: cx.opt(&obj, "stop_signal", |s| {
            let n = parse_signal(s).map_err(|e| e.to_string())?;
            signal_name(n).ok_or_else(|| {
                format!("'{s}' is not a signal a container can be stopped with; use e.g. SIGTERM")
            })
        })?,
        healthcheck,
    })
}

fn size(s: &str) -> Check<u64> {
    match parse_size(s) {
        Ok(0) => Err(format!(
            "'{s}' is zero; use a size greater than 0, e.g. 512MB"
        )),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn resources(cx: &Cx, node: &Node) -> Result<Resources, SpecError> {
    let obj = cx.object(node, "runtime.resources", RESOURCES)?;
    Ok(Resources {
        memory: cx.opt(&obj, "memory", size)?,
        cpu: cx.opt(&obj, "cpu", v::cpu)?,
        pids: cx.opt(&obj, "pids", |s| v::positive_int(s, "256"))?,
        storage: cx.opt(&obj, "storage", size)?,
    })
}

fn duration(s: &str, nonzero: bool) -> Check<Duration> {
    let d = parse_duration(s).map_err(|e| e.to_string())?;
    if nonzero && d < Duration::from_millis(1) {
        return Err(format!("'{s}' is too short; use at least 1ms, e.g. 30s"));
    }
    Ok(d)
}

fn healthcheck(cx: &Cx, node: &Node) -> Result<Healthcheck, SpecError> {
    let obj = cx.object(node, "runtime.healthcheck", HEALTH)?;
    let command = cx.command(
        cx.required(&obj, "command", "[/bin/app, health]")?,
        &obj.path("command"),
    )?;
    Ok(Healthcheck {
        command,
        interval: cx
            .opt(&obj, "interval", |s| duration(s, true))?
            .unwrap_or(Healthcheck::DEFAULT_INTERVAL),
        timeout: cx
            .opt(&obj, "timeout", |s| duration(s, true))?
            .unwrap_or(Healthcheck::DEFAULT_TIMEOUT),
        retries: cx
            .opt(&obj, "retries", v::id)?
            .unwrap_or(Healthcheck::DEFAULT_RETRIES),
        start_period: cx
            .opt(&obj, "start_period", |s| duration(s, false))?
            .unwrap_or_default(),
    })
}

fn metadata(cx: &Cx, node: &Node) -> Result<Metadata, SpecError> {
    let obj = cx.object(node, "metadata", METADATA)?;
    Ok(Metadata {
        author: cx.opt(&obj, "author", |s| v::text(s, "author"))?,
        description: cx.opt(&obj, "description", |s| v::text(s, "description"))?,
        tags: cx.list_of(&obj, "tags", "[web, api]", |s| v::text(s, "tag"))?,
        created: cx.opt(&obj, "created", |s| {
            crate::time::Timestamp::parse(s).map_err(|e| e.to_string())
        })?,
    })
}
