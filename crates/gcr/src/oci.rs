//! runc's command line (`gcr-runc ...`, a symlink to gcr, or `gcr oci ...`): its own clap
//! parser for runc's global flags and commands, calling gcr-engine's re-export of
//! gcr-oci. Errors go to stderr and, with `--log`, to that file as logrus-style JSON
//! (or text) lines, where containerd's shim reads them; the exit code is then 1.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use gcr_engine::oci::{docs, Create, Exec, Oci, OciError, Run};

#[derive(Parser, Debug)]
#[command(
    name = "runc",
    disable_version_flag = true,
    about = "gcr's executor with runc's command line"
)]
struct RuncCli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/gcr-runc")]
    root: PathBuf,
    /// Log file for errors (containerd's shim reads it).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Also log debug lines.
    #[arg(long, global = true)]
    debug: bool,
    /// cgroupsPath is systemd's slice:prefix:name.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// auto or false (rootless containers are not supported yet).
    #[arg(long, global = true)]
    rootless: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// Bundle directory (default: the current directory).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Accepted; gcr always uses pivot_root.
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Accepted; gcr never makes a session keyring.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(clap::Args, Debug)]
struct UpdateArgs {
    /// linux.resources as JSON, from a file or `-` for stdin (what containerd's shim sends).
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Memory limit (bytes, or with a unit: 256m, 1g).
    #[arg(short, long)]
    memory: Option<String>,
    /// Memory plus swap (bytes or with a unit; -1 for unlimited swap).
    #[arg(long = "memory-swap")]
    memory_swap: Option<String>,
    /// CFS quota in microseconds.
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share")]
    cpu_share: Option<u64>,
    /// Maximum number of processes.
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    id: String,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write a default config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Create a container (held before its process starts).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create and start a container.
    Run {
        #[command(flatten)]
        c: CreateArgs,
        #[arg(short, long)]
        detach: bool,
    },
    /// Print the state of a container.
    State { id: String },
    /// Send a signal (name or number, default SIGTERM).
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete a container.
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Processes of a container.
    Ps {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        id: String,
    },
    /// Freeze a container.
    Pause { id: String },
    /// Thaw a container.
    Resume { id: String },
    /// Change a running container's memory, cpu or pids limits.
    Update(UpdateArgs),
    /// The runtime-spec features document.
    Features,
    /// Stats every interval and OOM events until the container stops (`--stats`: once).
    Events {
        /// Print one stats event and exit.
        #[arg(long)]
        stats: bool,
        /// Time between stats events (Go syntax: 5s, 500ms).
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Run a process in a created or running container.
    Exec(ExecArgs),
}

#[derive(clap::Args, Debug)]
struct ExecArgs {
    /// A runtime-spec process JSON file (instead of args).
    #[arg(short, long)]
    process: Option<PathBuf>,
    #[arg(short, long)]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Allocate a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Set an environment variable (K=V).
    #[arg(short, long)]
    env: Vec<String>,
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// UID[:GID].
    #[arg(short, long)]
    user: Option<String>,
    /// Add a capability.
    #[arg(short, long)]
    cap: Vec<String>,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Entry point: `args` without the program name. Returns the exit code.
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    let cli = match RuncCli::try_parse_from(std::iter::once("runc".into()).chain(args)) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    match dispatch(&cli) {
        Ok(code) => code,
        Err(msg) => {
            log_error(&cli, &msg);
            // runc's exec exits 255 on its own errors (any other code is the process's).
            if matches!(cli.cmd, Some(Cmd::Exec(_))) {
                255
            } else {
                1
            }
        }
    }
}

fn log_error(cli: &RuncCli, msg: &str) {
    log_line(cli.log.as_deref(), cli.log_format, "error", msg)
}

/// One line on stderr and, with `--log`, in that file (`level` error or warning).
fn log_line(log: Option<&Path>, format: LogFormat, level: &str, msg: &str) {
    let _ = match level {
        "error" => writeln!(std::io::stderr(), "gcr-runc: {msg}"),
        _ => writeln!(std::io::stderr(), "gcr-runc: {level}: {msg}"),
    };
    let Some(path) = log else { return };
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let time = gcr_engine::oci::time_rfc3339(unix);
    let line = match format {
        LogFormat::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        }
        LogFormat::Text => format!("time={time:?} level={level} msg={msg:?}"),
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn err(e: OciError) -> String {
    e.to_string()
}

fn print(v: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout();
    writeln!(out, "{text}").map_err(|e| format!("cannot write to stdout: {e}"))
}

fn create_of(a: &CreateArgs) -> Create<'_> {
    Create {
        id: &a.id,
        bundle: &a.bundle,
        pid_file: a.pid_file.as_deref(),
        console_socket: a.console_socket.as_deref(),
        preserve_fds: a.preserve_fds,
    }
}

fn dispatch(cli: &RuncCli) -> Result<i32, String> {
    if cli.version {
        println!(
            "runc version {} (gcr-runc)\ncommit: gcr-{}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            option_env!("GCR_COMMIT").unwrap_or("unknown"),
            gcr_engine::oci::state::OCI_VERSION
        );
        return Ok(0);
    }
    match cli.rootless.as_deref() {
        None | Some("auto") | Some("false") => {}
        Some("true") => {
            return Err("--rootless=true is not supported: gcr-runc runs rootful containers only; use --rootless=auto or false as root".into())
        }
        Some(o) => return Err(format!("--rootless {o:?} is not one of auto, false")),
    }
    let Some(cmd) = &cli.cmd else {
        return Err("no command given; see gcr-runc --help".into());
    };
    let oci = Oci {
        root: std::path::absolute(&cli.root).map_err(|e| format!("--root: {e}"))?,
        systemd_cgroup: cli.systemd_cgroup,
        warn: {
            let (log, format) = (cli.log.clone(), cli.log_format);
            std::sync::Arc::new(move |m: &str| log_line(log.as_deref(), format, "warning", m))
        },
    };
    match cmd {
        Cmd::Spec { bundle } => spec(bundle),
        Cmd::Create(a) => oci.create(&create_of(a)).map(|_| 0).map_err(err),
        Cmd::Start { id } => oci.start(id).map(|()| 0).map_err(err),
        Cmd::Run { c, detach } => oci
            .run(&Run {
                create: create_of(c),
                detach: *detach,
            })
            .map_err(err),
        Cmd::State { id } => print(&oci.state(id).map_err(err)?).map(|()| 0),
        Cmd::Kill { all, id, signal } => {
            let s = signal.as_deref().unwrap_or("SIGTERM");
            let n = gcr_engine::oci::parse_signal(s).map_err(|e| format!("signal {s:?}: {e}"))?;
            oci.kill(id, n, *all).map(|()| 0).map_err(err)
        }
        Cmd::Delete { force, id } => oci.delete(id, *force).map(|()| 0).map_err(err),
        Cmd::List { format, quiet } => list(&oci, *format, *quiet),
        Cmd::Ps { format, id } => ps(&oci, id, *format),
        Cmd::Pause { id } => oci.freeze(id, true).map(|()| 0).map_err(err),
        Cmd::Resume { id } => oci.freeze(id, false).map(|()| 0).map_err(err),
        Cmd::Update(a) => {
            let r = update_resources(a)?;
            oci.update(&a.id, &r).map(|()| 0).map_err(err)
        }
        Cmd::Features => print(&docs::features()).map(|()| 0),
        Cmd::Events {
            stats,
            interval,
            id,
        } => events(&oci, id, *stats, interval),
        Cmd::Exec(a) => oci
            .exec(&Exec {
                id: &a.id,
                process_file: a.process.as_deref(),
                args: &a.args,
                env: &a.env,
                cwd: a.cwd.as_deref(),
                user: a.user.as_deref(),
                caps: &a.cap,
                tty: a.tty,
                detach: a.detach,
                pid_file: a.pid_file.as_deref(),
                console_socket: a.console_socket.as_deref(),
            })
            .map_err(err),
    }
}

/// `events`: one JSON line per event (as runc's encoder writes them).
fn events(oci: &Oci, id: &str, stats: bool, interval: &str) -> Result<i32, String> {
    let line = |v: &serde_json::Value| -> Result<(), OciError> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{v}")
            .and_then(|()| out.flush())
            .map_err(|e| OciError::Invalid(format!("cannot write to stdout: {e}")))
    };
    if stats {
        line(&oci.stats(id).map_err(err)?).map_err(err)?;
        return Ok(0);
    }
    let every =
        gcr_engine::oci::parse_duration(interval).map_err(|e| format!("--interval: {e}"))?;
    oci.events(id, every, line).map(|()| 0).map_err(err)
}

fn spec(bundle: &Path) -> Result<i32, String> {
    let p = bundle.join("config.json");
    if p.exists() {
        return Err(format!("File {} exists. Remove it first", p.display()));
    }
    let text = serde_json::to_string_pretty(&docs::default_spec()).map_err(|e| e.to_string())?;
    std::fs::write(&p, text + "\n").map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    Ok(0)
}

fn list(oci: &Oci, format: Format, quiet: bool) -> Result<i32, String> {
    let all = oci.list().map_err(err)?;
    if quiet {
        for (s, _) in &all {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    match format {
        Format::Json => {
            let v: Vec<serde_json::Value> = all.iter().map(|(s, st)| s.document(*st)).collect();
            print(&serde_json::Value::from(v)).map(|()| 0)
        }
        Format::Table => {
            println!(
                "{:<12} {:<8} {:<10} {:<40} {:<22} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for (s, st) in &all {
                let pid = if *st == gcr_engine::oci::Status::Stopped {
                    0
                } else {
                    s.pid
                };
                println!(
                    "{:<12} {:<8} {:<10} {:<40} {:<22} root",
                    s.id,
                    pid,
                    st.as_str(),
                    s.bundle.display(),
                    s.created
                );
            }
            Ok(0)
        }
    }
}

fn ps(oci: &Oci, id: &str, format: Format) -> Result<i32, String> {
    let pids = oci.pids(id).map_err(err)?;
    if let Format::Json = format {
        return print(&serde_json::json!(pids)).map(|()| 0);
    }
    // As runc: `ps -ef`, keeping the header and the container's lines.
    let out = std::process::Command::new("ps")
        .arg("-ef")
        .output()
        .map_err(|e| format!("cannot run ps: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    if let Some(h) = lines.next() {
        println!("{h}");
    }
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{l}");
        }
    }
    Ok(0)
}

/// `update`'s resources: the `--resources` document, then the flags over it.
fn update_resources(a: &UpdateArgs) -> Result<gcr_engine::oci::LinuxResources, String> {
    let mut doc: serde_json::Value = match &a.resources {
        None => serde_json::json!({}),
        Some(p) => {
            let text = if p.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .map_err(|e| format!("cannot read the resources from stdin: {e}"))?;
                s
            } else {
                std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read the resources file {}: {e}", p.display()))?
            };
            serde_json::from_str(&text)
                .map_err(|e| format!("the resources are not valid JSON ({e}); give linux.resources of the runtime spec"))?
        }
    };
    let size = |flag: &str, v: &str| -> Result<i64, String> {
        if v == "-1" {
            return Ok(-1);
        }
        gcr_engine::units::parse_size(v)
            .map(|n| n as i64)
            .map_err(|e| format!("{flag} {v:?}: {e}"))
    };
    let mut set = |section: &str, key: &str, v: serde_json::Value| {
        if !doc.is_object() {
            doc = serde_json::json!({});
        }
        let s = doc
            .as_object_mut()
            .map(|o| o.entry(section).or_insert_with(|| serde_json::json!({})));
        if let Some(o) = s.and_then(|s| s.as_object_mut()) {
            o.insert(key.to_string(), v);
        }
    };
    if let Some(m) = &a.memory {
        set("memory", "limit", size("--memory", m)?.into());
    }
    if let Some(m) = &a.memory_swap {
        set("memory", "swap", size("--memory-swap", m)?.into());
    }
    if let Some(q) = a.cpu_quota {
        set("cpu", "quota", q.into());
    }
    if let Some(p) = a.cpu_period {
        set("cpu", "period", p.into());
    }
    if let Some(s) = a.cpu_share {
        set("cpu", "shares", s.into());
    }
    if let Some(p) = a.pids_limit {
        set("pids", "limit", p.into());
    }
    serde_json::from_value(doc)
        .map_err(|e| format!("the resources do not fit linux.resources of the runtime spec: {e}"))
}
