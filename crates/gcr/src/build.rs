//! `gcr build`: finds the spec, calls the engine, and renders progress as a tree
//! (`--progress plain`, and `auto` for `.gcr` specs), a live BuildKit-style display on a
//! terminal (`auto` for Dockerfiles when standard error is a terminal, or `tty`; see
//! [`crate::buildlive`]) or one JSON object per event (`--progress json`). Every
//! build attaches its SLSA provenance to the image; `--sign-key NAME` (or the root's
//! `config.json` `build.signKey`) also signs it and the build record.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use gcr_engine::build::{find_spec, BuildRequest};
use gcr_engine::BuildEvent as Event;
use gcr_engine::Engine;

use crate::out::outln;
use crate::render::bytes;
use crate::Failure;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Progress {
    #[default]
    Auto,
    Plain,
    /// The live display even when standard error is not a terminal.
    Tty,
    Json,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Build context directory (with one .gcr spec, or a Dockerfile/Containerfile),
    /// default `.`.
    pub context: Option<String>,
    /// The spec file (its directory is the build context) or Dockerfile (`-` reads it
    /// from standard input; the context is CONTEXT).
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// A Dockerfile build argument, `KEY=VALUE` (or `KEY` to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// The Dockerfile stage to build (default: the last).
    #[arg(long)]
    pub target: Option<String>,
    /// Network of a Dockerfile's RUN steps: default (the bridge network, as docker
    /// build), none (hermetic) or host. Builds with a network are recorded as
    /// non-hermetic in their transcript and provenance.
    #[arg(long, value_name = "none|host|default")]
    pub network: Option<String>,
    /// A label for the image, `KEY=VALUE` (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Target platform (`linux/amd64`): base images must match (no emulation).
    #[arg(long)]
    pub platform: Option<String>,
    /// Write the image id to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<String>,
    /// Name and tag the image (`name:tag`), instead of the spec's name:version.
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Do not use the step cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Image `created` time (Unix seconds) when the spec sets no metadata.created.
    #[arg(long, env = "SOURCE_DATE_EPOCH")]
    pub source_date_epoch: Option<i64>,
    /// Progress output: auto (a live display for Dockerfiles on a terminal, else plain
    /// lines), plain, tty or json.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
    /// Print only the image id.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Build twice in fresh temporary stores and fail if the digests differ.
    #[arg(long)]
    pub verify: bool,
    /// Sign the provenance and the build record with this stored key (default: the
    /// root's config.json `build.signKey`).
    #[arg(long, value_name = "NAME")]
    pub sign_key: Option<String>,
    /// Read the signing key's password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Do not sign, even when config.json names a default key.
    #[arg(long, conflicts_with = "sign_key")]
    pub no_sign: bool,
    /// Let the secret scan of copied files pass this file or directory (relative to the
    /// context; repeatable) when the image is meant to contain the secret.
    #[arg(long = "allow-secret", value_name = "PATH")]
    pub allow_secrets: Vec<String>,
    /// A build secret, mounted at /run/secrets/ID during the command steps and never
    /// stored: id=ID,src=FILE or id=ID,env=VAR (the spec declares it under build.secrets).
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    pub secrets: Vec<String>,
    /// A NAME:IP line in the RUN steps' /etc/hosts (repeatable).
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_hosts: Vec<String>,
    /// The RUN steps' /dev/shm size (e.g. 128m; default 64m).
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// The RUN steps' memory limit (e.g. 512m).
    #[arg(short = 'm', long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// The RUN steps' memory plus swap limit (-1: unlimited swap).
    #[arg(long = "memory-swap", value_name = "SIZE")]
    pub memory_swap: Option<String>,
    /// The RUN steps' CPU weight.
    #[arg(long = "cpu-shares", value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CPUs the RUN steps may use (0-3, 0,1).
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the RUN steps may use.
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// The CFS period of --cpu-quota, in microseconds (default 100000).
    #[arg(long = "cpu-period", value_name = "US")]
    pub cpu_period: Option<u64>,
    /// The RUN steps' CPU time per --cpu-period, in microseconds.
    #[arg(long = "cpu-quota", value_name = "US")]
    pub cpu_quota: Option<u64>,
    /// A resource limit of the RUN steps, e.g. nofile=1024:2048 (repeatable).
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
}

/// The RUN steps' options of `a` (sizes parsed as `gcr run`'s).
fn step_options(a: &BuildArgs) -> Result<gcr_engine::build::StepOptions, Failure> {
    use crate::containers::size;
    let memory_swap = match a.memory_swap.as_deref() {
        None => None,
        Some("-1") => Some(-1),
        Some(_) => size("--memory-swap", &a.memory_swap)?.map(|v| v as i64),
    };
    let cpus = gcr_engine::build::StepOptions::cpus_of(
        a.cpu_quota.map(|q| q as i64),
        a.cpu_period.map(|p| p as i64),
    );
    Ok(gcr_engine::build::StepOptions {
        add_hosts: a.add_hosts.clone(),
        shm_size: size("--shm-size", &a.shm_size)?,
        memory: size("--memory", &a.memory)?,
        memory_swap,
        cpus,
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        ulimits: a.ulimits.clone(),
    })
}

/// Renders build events as the `├──` tree or as plain lines.
struct Tree {
    /// The first failed write; later lines are dropped (the build cannot be stopped from
    /// its event callback, so it finishes and the command then reports this).
    unwritten: Option<Failure>,
    plain: bool,
    pending: Vec<String>,
    section: Option<(&'static str, usize)>,
    files: usize,
    cached: usize,
    steps: usize,
}

impl Tree {
    fn new(plain: bool) -> Tree {
        Tree {
            unwritten: None,
            plain,
            pending: Vec::new(),
            section: None,
            files: 0,
            cached: 0,
            steps: 0,
        }
    }

    fn out(&mut self, s: &str) {
        if self.unwritten.is_none() {
            self.unwritten = outln!("{s}").err();
        }
    }

    /// Prints a finished copy/dependency section: header with totals, then its steps.
    fn flush(&mut self) {
        let Some((kind, n)) = self.section.take() else {
            return;
        };
        if kind == "command" {
            return;
        }
        let cached = if self.cached == self.steps && self.steps > 0 {
            ", cached"
        } else {
            ""
        };
        let head = match kind {
            "copy" => format!(
                "Copying files: {} file{} in {n} layer{} (hash verified){cached}",
                self.files,
                if self.files == 1 { "" } else { "s" },
                if n == 1 { "" } else { "s" },
            ),
            _ => format!("Dependencies: {n} (hash verified){cached}"),
        };
        self.out(&if self.plain {
            head
        } else {
            format!("├── {head}")
        });
        let lines = std::mem::take(&mut self.pending);
        let last = lines.len().saturating_sub(1);
        for (i, l) in lines.iter().enumerate() {
            let p = if self.plain {
                "  "
            } else if i == last {
                "│   └── "
            } else {
                "│   ├── "
            };
            self.out(&format!("{p}{l}"));
        }
    }

    fn event(&mut self, e: &Event) {
        match e {
            Event::Start { name, .. } => self.out(&format!("Building: {name}")),
            Event::Base { base, id } => {
                let base = familiar(base);
                let s = match id {
                    Some(id) => format!("Base image: {base} ({})", short(id)),
                    None => format!("Base image: {base}"),
                };
                self.out(&if self.plain {
                    s
                } else {
                    format!("├── {s}")
                });
            }
            Event::Section { kind, count } => {
                self.flush();
                self.section = Some((kind, *count));
                (self.files, self.cached, self.steps) = (0, 0, 0);
                if *kind == "command" {
                    let s = format!(
                        "Running commands: {count} command{}",
                        if *count == 1 { "" } else { "s" }
                    );
                    self.out(&if self.plain {
                        s
                    } else {
                        format!("├── {s}")
                    });
                }
            }
            Event::Step {
                kind,
                description,
                cached,
                duration_ms,
                layer,
                files,
                ..
            } => {
                self.steps += 1;
                if *cached {
                    self.cached += 1;
                }
                self.files += files.unwrap_or(0);
                let state = if *cached { "cached" } else { "built" };
                let line = format!(
                    "{description}: {state} {} ({duration_ms:.1} ms)",
                    short(layer)
                );
                if *kind == "command" || self.section.is_none() {
                    // Dockerfile steps have no sections: each is shown as it ends.
                    let p = if self.plain { "  " } else { "│   ├── " };
                    self.out(&format!("{p}{line}"));
                } else {
                    self.pending.push(line);
                }
            }
            Event::Output { line, .. } => {
                let p = if self.plain { "    | " } else { "│   │   " };
                self.out(&format!("{p}{line}"));
            }
            Event::Attestation {
                kind,
                referrer,
                key_id,
                ..
            } => {
                let ind = if self.plain { "" } else { "    " };
                let signed = match key_id {
                    Some(k) => format!(" (key {})", &k[..k.len().min(12)]),
                    None => String::new(),
                };
                self.out(&format!("{ind}{kind}: {}{signed}", short(referrer)));
            }
            Event::Done {
                id,
                size,
                steps,
                cached,
                duration_ms,
                tags,
                ..
            } => {
                self.flush();
                let s = format!("Built: {id} ({})", bytes(*size));
                self.out(&if self.plain {
                    s
                } else {
                    format!("└── {s}")
                });
                let t: Vec<String> = tags.iter().map(|t| familiar(t)).collect();
                let ind = if self.plain { "" } else { "    " };
                self.out(&format!(
                    "{ind}{cached} of {steps} steps cached, {duration_ms:.1} ms; tagged {}",
                    t.join(", ")
                ));
            }
            // The live display's; steps are drawn here as they end.
            Event::Progress { .. } => {}
        }
    }
}

fn short(d: &str) -> String {
    let h = d.strip_prefix("sha256:").unwrap_or(d);
    format!("sha256:{}", &h[..h.len().min(12)])
}

fn familiar(full: &str) -> String {
    gcr_engine::Reference::parse(full)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_string())
}

fn json_line(v: &impl serde::Serialize) -> Result<(), Failure> {
    match serde_json::to_string(v) {
        Ok(s) => outln!("{s}"),
        Err(_) => Ok(()),
    }
}

/// `K=V` pairs of --build-arg (a bare `K` takes its value from the environment, and is
/// left out when unset, as in Docker) and --label.
fn pairs(flag: &str, v: &[String], from_env: bool) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for kv in v {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env && !kv.is_empty() => {
                if let Ok(v) = std::env::var(kv) {
                    out.insert(kv.clone(), v);
                }
            }
            _ => {
                return Err(Failure::new(
                    2,
                    format!("invalid {flag} '{kv}'; use KEY=VALUE"),
                ))
            }
        }
    }
    Ok(out)
}

pub fn run(e: &Engine, a: &BuildArgs) -> Result<i32, Failure> {
    let stdin_file = a.file.as_deref() == Some("-");
    let (spec_file, context, text) = if stdin_file {
        let ctx = PathBuf::from(a.context.as_deref().unwrap_or("."));
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|err| {
            Failure::new(
                1,
                format!("cannot read the Dockerfile from standard input: {err}"),
            )
        })?;
        (ctx.join("Dockerfile"), Some(ctx), Some(buf))
    } else {
        let f = find_spec(
            a.context.as_deref().map(std::path::Path::new),
            a.file.as_deref().map(std::path::Path::new),
        )?;
        // With -f, a Dockerfile's context is CONTEXT (default `.`), not its directory.
        let ctx = match (&a.file, &a.context) {
            (Some(_), Some(c)) if std::path::Path::new(c).is_dir() => Some(PathBuf::from(c)),
            (Some(_), None) => Some(PathBuf::from(".")),
            _ => None,
        };
        (f, ctx, None)
    };
    let network = gcr_engine::build::build_network(a.network.as_deref()).ok_or_else(|| {
        Failure::new(
            2,
            format!(
                "invalid --network '{}'; use none, default or host",
                a.network.as_deref().unwrap_or_default()
            ),
        )
    })?;
    let req = BuildRequest {
        context,
        dockerfile_text: text,
        build_args: pairs("--build-arg", &a.build_args, true)?,
        target: a.target.clone(),
        network,
        labels: pairs("--label", &a.labels, false)?,
        platform: a.platform.clone(),
        spec_file: PathBuf::from(&spec_file),
        tags: a.tags.clone(),
        no_cache: a.no_cache,
        source_date_epoch: a.source_date_epoch,
        sign_key: a.sign_key.clone(),
        password: if a.password_stdin {
            Some(crate::trust::read_password()?)
        } else {
            None
        },
        no_sign: a.no_sign,
        allow_secrets: a.allow_secrets.clone(),
        // For bench/scan.sh only (the scan's cost); not a user option.
        no_context_scan: std::env::var_os("GCR_NO_CONTEXT_SCAN").is_some_and(|v| v == "1"),
        secrets: a.secrets.clone(),
        // Interrupted, the CLI dies, and each step's watcher kills the step.
        cancel: None,
        steps: step_options(a)?,
    };
    let json = a.progress == Progress::Json;
    let mut verified = None;
    if a.verify {
        if !json {
            outln!(
                "Verifying: building {} twice in fresh stores",
                spec_file.display()
            )?;
        }
        let v = e.verify_build(&req, &mut |_| {})?;
        if json {
            json_line(&serde_json::json!({
                "event": "verify", "first": v.first, "second": v.second,
                "reproducible": v.reproducible(), "difference": v.difference,
            }))?;
        }
        if let Some(d) = &v.difference {
            return Err(Failure::new(
                1,
                format!(
                    "the build is not reproducible: {} vs {}; first difference: {d}",
                    v.first, v.second
                ),
            ));
        }
        if !json && !a.quiet {
            outln!("Reproducible: both builds gave {}", v.first)?;
        }
        verified = Some(v.first.clone());
    }
    let mut tree = Tree::new(a.progress == Progress::Plain);
    let quiet = a.quiet;
    let dockerfile = spec_file.extension().is_none_or(|x| x != "gcr");
    let live = match a.progress {
        Progress::Tty => !quiet,
        Progress::Auto => {
            use std::io::IsTerminal;
            !quiet && dockerfile && std::io::stderr().is_terminal()
        }
        _ => false,
    }
    .then(crate::buildlive::Live::start);
    let built = e.build(&req, &mut |ev| {
        if let Some(l) = &live {
            l.event(ev);
            return;
        }
        if quiet {
            return;
        }
        if json {
            // A step's lines come once, as `output` events.
            let line = matches!(
                ev,
                Event::Progress {
                    phase: gcr_engine::build::Phase::Line { .. },
                    ..
                }
            );
            if tree.unwritten.is_none() && !line {
                tree.unwritten = json_line(ev).err();
            }
        } else {
            tree.event(ev);
        }
    });
    if let Some(l) = live {
        l.finish(built.is_ok());
    }
    let built = built?;
    if let Some(first) = verified {
        if built.manifest_digest != first {
            return Err(Failure::new(
                1,
                format!(
                    "the build is not reproducible: this store gave {} but the verification builds gave {first}; try --no-cache",
                    built.manifest_digest
                ),
            ));
        }
    }
    if let Some(f) = tree.unwritten {
        return Err(f);
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &built.id)
            .map_err(|err| Failure::new(1, format!("cannot write --iidfile {f}: {err}")))?;
    }
    if quiet {
        outln!("{}", built.id)?;
    }
    Ok(0)
}
