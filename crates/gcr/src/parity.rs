//! Docker's everyday verbs around containers and images that are not part of the run
//! path: `ps` with `--no-trunc`, `-l`, `-n`; `rename`; `container prune`, `image prune`;
//! `export`, `commit`, `cp`; and Docker's `container …` and `image …` management groups,
//! which name the same verbs (see [`rewrite`]).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;
use gcr_engine::Engine;

use crate::out::outln;
use crate::render::{bytes, table_out};
use crate::template::Output;
use crate::Failure;

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output (full IDs and commands).
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    pub latest: bool,
    /// Show the n last created containers (includes all states).
    #[arg(short = 'n', long = "last", value_name = "N")]
    pub last: Option<usize>,
    /// Only containers matching KEY=VALUE: status, name, label, ancestor, id, exited,
    /// health, network, volume, before, since, publish, expose, is-task (repeatable).
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Display total file sizes (the writable layer, and with the image's: virtual).
    #[arg(short, long)]
    pub size: bool,
    /// table, json, or a Go template (`{{.Names}}`, `table {{.ID}}\t{{.Status}}`).
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// `gcr ps`.
pub fn ps(engine: &Engine, a: &PsArgs) -> Result<i32, Failure> {
    let out = Output::parse(&a.format)?;
    let json = matches!(out, Output::Json);
    let limit = if a.latest { Some(1) } else { a.last };
    let filters =
        crate::filters::Filters::parse(&a.filter, &gcr_engine::container::filter::KEYS, "ps")?;
    let filters = engine.container_filter(filters.into_pairs())?;
    // A status filter looks at every container (Docker's rule).
    let all = a.all || limit.is_some() || filters.wants_all();
    let mut rows = if json && !a.quiet {
        engine.ps_with_dna(all)
    } else {
        engine.ps(all)
    }?;
    if !filters.is_empty() {
        rows.retain(|(r, _)| filters.matches(engine, r));
    }
    if let Some(n) = limit {
        // Newest first already.
        rows.truncate(n);
    }
    if a.no_trunc {
        for (r, row) in rows.iter_mut() {
            row.id = r.id.clone();
            row.command = format!("\"{}\"", r.config.resolved.args.join(" "));
        }
    }
    // Sizes walk each writable layer: only when asked for (as Docker, a template that
    // names .Size asks for them).
    let sized =
        !a.quiet && (a.size || matches!(&out, Output::Template(_) if a.format.contains(".Size")));
    if sized {
        let images = engine.image_sizes()?;
        for (r, row) in rows.iter_mut() {
            let (rw, root) = engine.container_size(r, &images);
            row.size = Some(format!(
                "{} (virtual {})",
                gcr_engine::units::human_size(rw),
                gcr_engine::units::human_size(root)
            ));
        }
    }
    if a.quiet || json {
        let mut all = String::new();
        for (_, row) in rows {
            if a.quiet {
                all.push_str(&row.id);
            } else {
                all.push_str(&serde_json::to_string(&row).unwrap_or_default());
            }
            all.push('\n');
        }
        crate::out::bytes(all.as_bytes())?;
        return Ok(0);
    }
    if let Output::Template(t) = out {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|(_, r)| serde_json::to_value(r).unwrap_or_default())
            .collect();
        t.print(&items)?;
        return Ok(0);
    }
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(_, r)| {
            let mut cells = vec![
                r.id,
                r.image,
                r.command,
                r.running_for,
                r.status,
                r.ports,
                r.names,
            ];
            cells.extend(r.size);
            cells
        })
        .collect();
    let mut heads = vec![
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    if sized {
        heads.push("SIZE");
    }
    table_out(&heads, &table)?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    pub container: String,
    /// Name the image `REPOSITORY[:TAG]` (untagged without it).
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction to the image's config (CMD, ENTRYPOINT, ENV, EXPOSE,
    /// LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL, HEALTHCHECK, ONBUILD, SHELL).
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// Commit message (the history entry's comment).
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author (e.g. "Jane Doe <jane@example.com>").
    #[arg(short, long)]
    pub author: Option<String>,
    /// Pause the container while committing (default true).
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pause: bool,
}

#[derive(Args, Debug)]
pub struct CpArgs {
    /// `CONTAINER:SRC_PATH` or a local path (`-` reads a tar archive from stdin).
    pub src: String,
    /// A local path (`-` writes a tar archive to stdout) or `CONTAINER:DEST_PATH`.
    pub dest: String,
    /// Archive mode: keep uid/gid of what is copied.
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow a symbolic link given as the source.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output (there is none; accepted for Docker's scripts).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// The limits, as `run` takes them.
    #[command(flatten)]
    pub limits: crate::cli::LimitArgs,
    #[arg(long)]
    pub restart: Option<String>,
}

/// `gcr update`: the flags are checked as `run` checks them.
pub fn update(engine: &Engine, a: &UpdateArgs) -> Result<i32, Failure> {
    use gcr_engine::container::admin::UpdateRequest;
    // `run`'s own parser checks the values (sizes, CPUs, pids, restart policy).
    let probe = crate::cli::RunArgs {
        limits: a.limits.clone(),
        restart: a.restart.clone().unwrap_or_else(|| "no".into()),
        ..Default::default()
    };
    let o = crate::containers::run_options(&probe)?;
    let u = UpdateRequest {
        memory: o.memory,
        memory_swap: o.memory_swap,
        cpus: o.cpus,
        cpu_shares: o.cpu_shares,
        cpuset_cpus: o.cpuset_cpus,
        cpuset_mems: o.cpuset_mems,
        pids_limit: o.pids_limit,
        memory_reservation: o.tuning.memory_reservation,
        blkio_weight: o.tuning.blkio_weight,
        restart: a.restart.as_ref().map(|_| o.restart),
    };
    crate::containers::each(&a.containers, |n| engine.update(n, &u).map(|_| ()))
}

/// `gcr rename`.
pub fn rename(engine: &Engine, container: &str, name: &str) -> Result<i32, Failure> {
    engine.rename(container, name)?;
    Ok(0)
}

/// `gcr container prune [--filter until=…|label=…|label!=…]`.
pub fn container_prune(engine: &Engine, filter: &[String]) -> Result<i32, Failure> {
    let f = crate::filters::prune_filter(filter, "container", UNTIL_LABEL)?;
    let p = engine.container_prune_with(&f)?;
    if !p.ids.is_empty() {
        outln!("Deleted Containers:")?;
        for id in &p.ids {
            outln!("{id}")?;
        }
        outln!("")?;
    }
    outln!("Total reclaimed space: {}", bytes(p.bytes))?;
    Ok(0)
}

/// `gcr builder prune [-a] [--filter until=…] [--keep-storage SIZE]`: the step-cache
/// entries no image's layer comes from (all with `-a`), in Docker's report.
pub fn builder_prune(
    engine: &Engine,
    all: bool,
    filters: &[String],
    keep: Option<&str>,
) -> Result<i32, Failure> {
    let mut until = None;
    for f in filters {
        let Some(v) = f.strip_prefix("until=") else {
            return Err(Failure::new(
                125,
                format!("invalid filter '{f}': the build cache filters by until=DURATION|TIMESTAMP only"),
            ));
        };
        let now = gcr_engine::container::record::now_ns();
        let t = gcr_engine::events::parse_since(v, now).ok_or_else(|| {
            Failure::new(
                125,
                format!("invalid filter '{f}': use a duration (24h), unix seconds or RFC 3339"),
            )
        })?;
        until = Some(t / 1_000_000_000);
    }
    let keep_storage = keep
        .map(|k| {
            gcr_engine::units::parse_size(k).map_err(|_| {
                Failure::new(
                    125,
                    format!("invalid --keep-storage '{k}': not a size; use e.g. 512m or 10g"),
                )
            })
        })
        .transpose()?
        .filter(|k| *k > 0);
    let steps = engine.build_cache_prune_with(&gcr_engine::build::CachePruneOptions {
        all,
        until,
        keep_storage,
    })?;
    if !steps.is_empty() {
        outln!("Deleted build cache objects:")?;
        for s in &steps {
            outln!("{}", s.key.chars().take(25).collect::<String>())?;
        }
        outln!("")?;
    }
    let freed: u64 = steps.iter().map(|s| s.freed).sum();
    outln!("Total reclaimed space: {}", bytes(freed))?;
    Ok(0)
}

/// The filters every prune of Docker's takes (volumes: the labels only).
pub const UNTIL_LABEL: &[&str] = &["until", "label", "label!"];

/// `gcr image prune [-a] [--filter until=…|label=…|label!=…]`.
pub fn image_prune(engine: &Engine, all: bool, filter: &[String]) -> Result<i32, Failure> {
    let f = crate::filters::prune_filter(filter, "image", UNTIL_LABEL)?;
    let p = engine.image_prune_with(all, &f)?;
    if !p.images.is_empty() {
        outln!("Deleted Images:")?;
        for l in &p.images {
            outln!("{l}")?;
        }
        outln!("")?;
    }
    outln!("Total reclaimed space: {}", bytes(p.bytes_reclaimed))?;
    Ok(0)
}

/// `gcr export CONTAINER [-o FILE]`.
pub fn export(engine: &Engine, container: &str, output: Option<&PathBuf>) -> Result<i32, Failure> {
    match output {
        Some(p) => {
            // Written beside the target and renamed: a failed export leaves no file.
            let mut tmp = p.clone().into_os_string();
            tmp.push(".partial");
            let tmp = PathBuf::from(tmp);
            let f = std::fs::File::create(&tmp).map_err(|e| {
                Failure::new(
                    1,
                    format!("cannot create {} ({e}); check the -o path", p.display()),
                )
            })?;
            let done = engine
                .export(container, std::io::BufWriter::new(f))
                .map_err(Failure::from)
                .and_then(|()| {
                    std::fs::rename(&tmp, p)
                        .map_err(|e| Failure::new(1, format!("cannot write {}: {e}", p.display())))
                });
            if done.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            done?;
        }
        None => {
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                return Err(Failure::new(
                    1,
                    "cowardly refusing to write a tar archive to a terminal; use -o FILE or redirect the output".into(),
                ));
            }
            engine
                .export(container, std::io::stdout().lock())
                .map_err(|err| {
                    if crate::out::reader_gone() {
                        Failure::closed_stdout()
                    } else {
                        err.into()
                    }
                })?;
        }
    }
    Ok(0)
}

/// `gcr commit`.
pub fn commit(engine: &Engine, a: &CommitArgs) -> Result<i32, Failure> {
    let id = engine.commit(&gcr_engine::container::commit::CommitRequest {
        container: a.container.clone(),
        reference: a.reference.clone(),
        changes: a.changes.clone(),
        message: a.message.clone(),
        author: a.author.clone(),
        pause: a.pause,
    })?;
    outln!("{id}")?;
    Ok(0)
}

/// `gcr cp`.
pub fn cp(engine: &Engine, a: &CpArgs) -> Result<i32, Failure> {
    use gcr_engine::container::copy::{CopyOptions, Side};
    let side = |s: &str| -> Side {
        match s.split_once(':') {
            // `C:/x` names a container unless it looks like a local path (`./a:b`, `/a:b`).
            Some((c, p)) if !c.is_empty() && !c.contains('/') && !c.starts_with('.') => {
                Side::Container(c.to_string(), p.to_string())
            }
            _ => Side::Local(s.to_string()),
        }
    };
    let o = CopyOptions {
        archive: a.archive,
        follow_link: a.follow_link,
    };
    match (side(&a.src), side(&a.dest)) {
        (Side::Container(c, p), Side::Local(d)) => {
            if d == "-" {
                use std::io::IsTerminal;
                if std::io::stdout().is_terminal() {
                    return Err(Failure::new(
                        1,
                        "cowardly refusing to write a tar archive to a terminal; redirect the output".into(),
                    ));
                }
            }
            let mut out = std::io::stdout().lock();
            engine.copy_out(&c, &p, &d, &o, &mut out).map_err(|err| {
                if crate::out::reader_gone() {
                    Failure::closed_stdout()
                } else {
                    err.into()
                }
            })?
        }
        (Side::Local(s), Side::Container(c, p)) => {
            engine.copy_in(&s, &c, &p, &o, &mut std::io::stdin())?
        }
        (Side::Container(..), Side::Container(..)) => {
            return Err(Failure::new(
                1,
                "copying between containers is not supported; copy to a local path first".into(),
            ))
        }
        (Side::Local(_), Side::Local(_)) => {
            return Err(Failure::new(
                1,
                "must specify at least one container source: use CONTAINER:PATH on one side".into(),
            ))
        }
    }
    Ok(0)
}

/// Docker's management groups: `gcr container VERB` and `gcr image VERB` name these
/// top-level verbs (and fixed flags).
const CONTAINER: &[(&str, &[&str])] = &[
    ("ls", &["ps"]),
    ("list", &["ps"]),
    ("ps", &["ps"]),
    ("rm", &["rm"]),
    ("remove", &["rm"]),
    ("inspect", &["inspect", "--type", "container"]),
    ("prune", &["container-prune"]),
    ("run", &["run"]),
    ("create", &["create"]),
    ("start", &["start"]),
    ("stop", &["stop"]),
    ("kill", &["kill"]),
    ("restart", &["restart"]),
    ("pause", &["pause"]),
    ("unpause", &["unpause"]),
    ("wait", &["wait"]),
    ("logs", &["logs"]),
    ("exec", &["exec"]),
    ("attach", &["attach"]),
    ("top", &["top"]),
    ("stats", &["stats"]),
    ("port", &["port"]),
    ("rename", &["rename"]),
    ("export", &["export"]),
    ("cp", &["cp"]),
    ("commit", &["commit"]),
    ("diff", &["diff"]),
    ("update", &["update"]),
];

const IMAGE: &[(&str, &[&str])] = &[
    ("ls", &["images"]),
    ("list", &["images"]),
    ("rm", &["rmi"]),
    ("remove", &["rmi"]),
    ("inspect", &["inspect", "--type", "image"]),
    ("prune", &["image-prune"]),
    ("tag", &["tag"]),
    ("history", &["history"]),
    ("import", &["import"]),
    ("load", &["load"]),
    ("save", &["save"]),
    ("pull", &["pull"]),
    ("push", &["push"]),
    ("build", &["build"]),
];

const BUILDER: &[(&str, &[&str])] = &[("build", &["build"]), ("prune", &["builder-prune"])];

/// `system` is a command of its own (df, prune, service); Docker's group also names these.
const SYSTEM: &[(&str, &[&str])] = &[("info", &["info"]), ("events", &["events"])];

/// `argv` with `container VERB`, `image VERB`, `builder VERB` or `system info|events` (at
/// `at`, after the global options) replaced by the verb it names; unchanged otherwise (`gcr container` alone, an unknown
/// verb or `--help` reach clap, whose `container`/`image` commands print the group's help).
pub fn rewrite(mut argv: Vec<OsString>, at: usize) -> Vec<OsString> {
    let group = match argv.get(at).and_then(|a| a.to_str()) {
        Some("container") => CONTAINER,
        Some("image") => IMAGE,
        Some("builder") => BUILDER,
        Some("system") => SYSTEM,
        _ => return argv,
    };
    let Some(verb) = argv.get(at + 1).and_then(|a| a.to_str()) else {
        return argv;
    };
    let Some((_, to)) = group.iter().find(|(v, _)| *v == verb) else {
        return argv;
    };
    let with: Vec<OsString> = to.iter().map(OsString::from).collect();
    argv.splice(at..at + 2, with);
    argv
}

/// The help of `gcr container`, `gcr image` or `gcr builder`: its verbs and what each runs.
pub fn group_help(group: &str, rest: &[String]) -> Result<i32, Failure> {
    let (list, what) = match group {
        "container" => (CONTAINER, "containers"),
        "builder" => (BUILDER, "builds"),
        _ => (IMAGE, "images"),
    };
    let unknown = rest
        .first()
        .filter(|v| !v.starts_with('-'))
        .map(|v| v.to_string());
    if let Some(v) = &unknown {
        return Err(Failure::new(
            2,
            format!("'{v}' is not a gcr {group} command; see 'gcr {group} --help'"),
        ));
    }
    outln!("Usage: gcr {group} COMMAND\n\nManage {what}\n\nCommands:")?;
    for (verb, to) in list {
        outln!("  {verb:<10} same as 'gcr {}'", to.join(" "))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn system_info_and_events_are_the_top_level_verbs() {
        assert_eq!(
            rewrite(os(&["gcr", "system", "events", "--since", "1m"]), 1),
            os(&["gcr", "events", "--since", "1m"])
        );
        assert_eq!(
            rewrite(os(&["gcr", "system", "info"]), 1),
            os(&["gcr", "info"])
        );
        // system's own commands stay.
        assert_eq!(
            rewrite(os(&["gcr", "system", "df"]), 1),
            os(&["gcr", "system", "df"])
        );
    }

    #[test]
    fn groups_map_to_top_level_verbs_after_global_options() {
        assert_eq!(
            rewrite(os(&["gcr", "container", "ls", "-a"]), 1),
            os(&["gcr", "ps", "-a"])
        );
        assert_eq!(
            rewrite(os(&["gcr", "--root", "/r", "image", "inspect", "x"]), 3),
            os(&["gcr", "--root", "/r", "inspect", "--type", "image", "x"])
        );
        assert_eq!(
            rewrite(os(&["gcr", "image", "rm", "x"]), 1),
            os(&["gcr", "rmi", "x"])
        );
        // Unknown verbs and the bare group are left for the group's help.
        assert_eq!(
            rewrite(os(&["gcr", "container", "frob"]), 1),
            os(&["gcr", "container", "frob"])
        );
        assert_eq!(rewrite(os(&["gcr", "image"]), 1), os(&["gcr", "image"]));
        assert_eq!(rewrite(os(&["gcr", "ps"]), 1), os(&["gcr", "ps"]));
    }
}
