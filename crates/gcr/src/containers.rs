//! Container commands: parse flags into engine options and render the results.

use anyhow::Result;
use gcr_engine::container::config::{RestartPolicy, RunOptions};
use gcr_engine::container::exec::ExecOptions;
use gcr_engine::logs::LogOptions;
use gcr_engine::{Engine, EngineError};

use crate::cli::{ExecArgs, Format, RunArgs};
use crate::out::{errln, outln, Report, Watched};
use crate::render::table_out;
use crate::Failure;

fn usage(msg: String) -> Failure {
    Failure::new(125, msg)
}

/// Turns `gcr run` flags into engine options (errors exit 125 like Docker).
pub fn run_options(a: &RunArgs) -> Result<RunOptions, Failure> {
    let size = |flag: &str, v: &Option<String>| -> Result<Option<u64>, Failure> {
        v.as_deref()
            .map(|s| {
                gcr_engine::units::parse_size(s).map_err(|_| {
                    usage(format!(
                        "invalid value '{s}' for {flag}: not a size; use e.g. 512m or 1g"
                    ))
                })
            })
            .transpose()
    };
    let memory = size("--memory", &a.memory)?;
    if memory.is_some_and(|m| m < 6 * 1024 * 1024) {
        return Err(usage(
            "invalid value for --memory: the minimum allowed memory limit is 6MB".into(),
        ));
    }
    let memory_swap = match a.memory_swap.as_deref() {
        None => None,
        Some("-1") => Some(-1),
        Some(_) => size("--memory-swap", &a.memory_swap)?.map(|v| v as i64),
    };
    let cpus = match a.cpus.as_deref() {
        None => None,
        Some(s) => match s.parse::<f64>() {
            Ok(c) if c > 0.0 && c.is_finite() => Some(c),
            _ => {
                return Err(usage(format!(
                    "invalid value '{s}' for --cpus: use a positive number such as 0.5 or 2"
                )))
            }
        },
    };
    if a.pids_limit.is_some_and(|p| p == 0 || p < -1) {
        return Err(usage(
            "invalid value for --pids-limit: use a positive number, or -1 for unlimited".into(),
        ));
    }
    let restart = RestartPolicy::parse(&a.restart).ok_or_else(|| {
        usage(format!(
            "invalid restart policy '{}': use no, on-failure[:N], always or unless-stopped",
            a.restart
        ))
    })?;
    Ok(RunOptions {
        image: a.image.clone(),
        name: a.name.clone(),
        cmd: a.command.clone(),
        entrypoint: a.entrypoint.clone(),
        env: a.env.clone(),
        env_files: a.env_file.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        rm: a.rm,
        init: a.init,
        memory,
        memory_swap,
        cpus,
        pids_limit: a.pids_limit,
        read_only: a.read_only,
        privileged: a.privileged,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        security_opt: a.security_opt.clone(),
        network: a.network.clone(),
        restart,
        labels: a.label.clone(),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        publish: a.publish.clone(),
        publish_all: a.publish_all,
        volumes: a.volume.clone(),
        tmpfs: a.tmpfs.clone(),
        health_cmd: a.health_cmd.clone(),
        health_interval: a.health_interval.clone(),
        health_timeout: a.health_timeout.clone(),
        health_retries: a.health_retries,
        health_start_period: a.health_start_period.clone(),
        no_healthcheck: a.no_healthcheck,
        secrets: a.secret.clone(),
    })
}

fn run_failure(e: EngineError) -> Failure {
    Failure::new(e.run_exit_code(), e.to_string())
}

/// `gcr run`.
pub fn run(engine: &Engine, a: &RunArgs) -> Result<i32, Failure> {
    let opts = run_options(a)?;
    if a.detach {
        let r = engine.run_detached(opts).map_err(run_failure)?;
        outln!("{}", r.id)?;
        return Ok(0);
    }
    engine.run_foreground(opts).map_err(run_failure)
}

/// `gcr create`.
pub fn create(engine: &Engine, a: &RunArgs) -> Result<i32, Failure> {
    let opts = run_options(a)?;
    let r = engine.create(opts).map_err(run_failure)?;
    outln!("{}", r.id)?;
    Ok(0)
}

/// Applies `f` to each named container, printing its name; the exit code is 1 if any failed.
/// A closed stdout stops the printing, not the work (see [`Report`]).
pub fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> Result<(), EngineError>,
) -> Result<i32, Failure> {
    let mut code = 0;
    let mut report = Report::default();
    for n in names {
        match f(n) {
            Ok(()) => report.line(format_args!("{n}")),
            Err(e) => {
                errln!("Error: {e}");
                code = e.exit_code().max(1);
            }
        }
    }
    report.finish(code)
}

/// `gcr start [-a]`.
pub fn start(engine: &Engine, names: &[String], attach: bool) -> Result<i32, Failure> {
    if attach {
        let [one] = names else {
            return Err(Failure::new(
                2,
                "start -a takes exactly one container".into(),
            ));
        };
        let r = engine.start(one).map_err(run_failure)?;
        return attach_to(engine, &r.id);
    }
    each(names, |n| engine.start(n).map(|_| ()))
}

/// Follows the output of a running container and returns its exit code.
pub fn attach_to(engine: &Engine, key: &str) -> Result<i32, Failure> {
    let r = engine.container(key).map_err(run_failure)?;
    let o = LogOptions {
        tail: Some(0),
        timestamps: false,
        follow: true,
    };
    let path = engine.container_dir(&r.id).join("container.log");
    let watch = Watched::new();
    let mut running = || !watch.broken() && is_running(engine, &r.id);
    gcr_engine::logs::print(
        &path,
        &o,
        &mut watch.writer(),
        &mut std::io::stderr(),
        &mut running,
    )
    .map_err(run_failure)?;
    // A closed stdout detaches: the container runs on, as after Docker's detach keys.
    watch.finish()?;
    engine.wait(&r.id).map_err(run_failure)
}

/// Whether the container still produces output for `logs -f` and `attach` to follow.
fn is_running(engine: &Engine, id: &str) -> bool {
    engine
        .container(id)
        .map(|r| r.state.is_alive())
        .unwrap_or(false)
}

/// `gcr ps`.
pub fn ps(engine: &Engine, all: bool, quiet: bool, format: Format) -> Result<i32, Failure> {
    let rows = if format == Format::Json && !quiet {
        engine.ps_with_dna(all)
    } else {
        engine.ps(all)
    }
    .map_err(Failure::from)?;
    if quiet {
        for (_, row) in rows {
            outln!("{}", row.id)?;
        }
        return Ok(0);
    }
    if format == Format::Json {
        for (_, row) in rows {
            outln!("{}", serde_json::to_string(&row).unwrap_or_default())?;
        }
        return Ok(0);
    }
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(_, r)| {
            vec![
                r.id,
                r.image,
                r.command,
                r.running_for,
                r.status,
                r.ports,
                r.names,
            ]
        })
        .collect();
    table_out(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        &table,
    )?;
    Ok(0)
}

/// `gcr logs`.
pub fn logs(
    engine: &Engine,
    key: &str,
    follow: bool,
    tail: Option<&str>,
    timestamps: bool,
) -> Result<i32, Failure> {
    let r = engine.container(key).map_err(Failure::from)?;
    let tail =
        match tail {
            None | Some("all") => None,
            Some(n) => Some(n.parse::<usize>().map_err(|_| {
                Failure::new(2, format!("invalid --tail '{n}': use a number or all"))
            })?),
        };
    let o = LogOptions {
        tail,
        timestamps,
        follow,
    };
    let path = engine.container_dir(&r.id).join("container.log");
    // The engine's printer ignores write errors: the watched stdout remembers them and
    // ends a follow, which otherwise would outlive its reader until the container exits.
    let watch = Watched::new();
    let mut running = || !watch.broken() && is_running(engine, &r.id);
    gcr_engine::logs::print(
        &path,
        &o,
        &mut watch.writer(),
        &mut std::io::stderr(),
        &mut running,
    )
    .map_err(Failure::from)?;
    watch.finish()?;
    Ok(0)
}

/// `gcr exec`.
pub fn exec(engine: &Engine, a: &ExecArgs) -> Result<i32, Failure> {
    let o = ExecOptions {
        cmd: a.command.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
    };
    engine.exec(&a.container, &o).map_err(run_failure)
}

/// `gcr top`.
pub fn top(engine: &Engine, key: &str) -> Result<i32, Failure> {
    let rows = engine.top(key).map_err(Failure::from)?;
    let table: Vec<Vec<String>> = rows.into_iter().map(|r| r.to_vec()).collect();
    table_out(&["UID", "PID", "PPID", "CMD"], &table)?;
    Ok(0)
}

/// `gcr stats --no-stream`.
pub fn stats(engine: &Engine, names: &[String], format: Format) -> Result<i32, Failure> {
    let names: Vec<String> = if names.is_empty() {
        engine
            .ps(false)
            .map_err(Failure::from)?
            .into_iter()
            .map(|(r, _)| r.id)
            .collect()
    } else {
        names.to_vec()
    };
    let mut table = Vec::new();
    for n in &names {
        let (r, s) = engine.stats(n).map_err(Failure::from)?;
        let mem_limit = s.memory_limit.unwrap_or(0);
        let mem_pct = if mem_limit > 0 {
            s.memory_usage as f64 * 100.0 / mem_limit as f64
        } else {
            0.0
        };
        if format == Format::Json {
            outln!(
                "{}",
                serde_json::json!({
                    "ID": &r.id[..12], "Name": r.name,
                    "MemUsage": s.memory_usage, "MemLimit": s.memory_limit,
                    "CPUNanos": s.cpu_usage_ns, "PIDs": s.pids_current,
                })
            )?;
            continue;
        }
        table.push(vec![
            r.id[..12].to_string(),
            r.name.clone(),
            format!("{:.3}s", s.cpu_usage_ns as f64 / 1e9),
            format!(
                "{} / {}",
                gcr_engine::units::format_size_binary(s.memory_usage),
                if mem_limit > 0 {
                    gcr_engine::units::format_size_binary(mem_limit)
                } else {
                    "unlimited".into()
                }
            ),
            format!("{mem_pct:.2}%"),
            s.pids_current.to_string(),
        ]);
    }
    if format == Format::Table {
        table_out(
            &[
                "CONTAINER ID",
                "NAME",
                "CPU TIME",
                "MEM USAGE / LIMIT",
                "MEM %",
                "PIDS",
            ],
            &table,
        )?;
    }
    Ok(0)
}

/// `gcr events`.
pub fn events(engine: &Engine, since: Option<&str>, format: Format) -> Result<i32, Failure> {
    let now = gcr_engine::container::record::now_ns();
    let since_ns = match since {
        None => 0,
        Some(s) => gcr_engine::events::parse_since(s, now).ok_or_else(|| {
            Failure::new(
                2,
                format!("invalid --since '{s}': use unix seconds, RFC 3339 or a duration like 10m"),
            )
        })?,
    };
    let evs = engine.events(since_ns).map_err(Failure::from)?;
    for e in evs {
        if format == Format::Json {
            outln!("{}", serde_json::to_string(&e).unwrap_or_default())?;
        } else {
            outln!(
                "{} {} {} {} ({} -> {}) name={}",
                gcr_engine::logs::rfc3339_nanos(e.time_ns),
                e.kind,
                e.cause.as_deref().unwrap_or(""),
                &e.object[..e.object.len().min(12)],
                e.from.as_deref().unwrap_or("-"),
                e.to.as_deref().unwrap_or("-"),
                e.name.as_deref().unwrap_or(""),
            )?;
        }
    }
    Ok(0)
}

/// `gcr inspect --dna CONTAINER...`: per container, its DNA and the parts it covers.
pub fn inspect_dna(engine: &Engine, names: &[String]) -> Result<i32, Failure> {
    let mut docs = Vec::new();
    let mut code = 0;
    for n in names {
        match engine.container_dna(n) {
            Ok(d) => docs.push(d),
            Err(err) => {
                errln!("Error: {}", Failure::from(err).message);
                code = 1;
            }
        }
    }
    if names.len() == 1 {
        if let Some(d) = docs.first() {
            outln!("{}", serde_json::to_string_pretty(d).unwrap_or_default())?;
        }
    } else {
        outln!(
            "{}",
            serde_json::to_string_pretty(&docs).unwrap_or_default()
        )?;
    }
    Ok(code)
}
