//! The `gcr` command line: parses Docker-style commands, calls gcr-engine, renders results.
//! Thin by design; all behaviour lives in the engine.

mod argv;
mod attach;
mod audit;
mod build;
mod buildlive;
mod cli;
mod containers;
mod filters;
mod images;
mod manifest;
mod network;
mod oci;
mod out;
mod parity;
mod policy;
mod registry;
mod render;
mod secrets;
mod stats;
mod system;
mod template;
mod trust;
mod tuning;

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use cli::{Cli, Cmd};
use gcr_engine::{Engine, EngineError};
use out::{errln, outln};

/// A failed command: the message for stderr (none when empty) and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: String) -> Failure {
        Failure { code, message }
    }

    /// The reader of stdout closed it: stop and exit 0 without a message (see [`out`]).
    pub fn closed_stdout() -> Failure {
        Failure::new(0, String::new())
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Failure {
        Failure::new(e.exit_code(), e.to_string())
    }
}

fn default_root() -> PathBuf {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/gcr");
    }
    match std::env::var_os("XDG_DATA_HOME") {
        Some(d) => PathBuf::from(d).join("gcr"),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into()))
            .join(".local/share/gcr"),
    }
}

/// `path` made absolute against the current directory, once, before anything uses it: the
/// background processes (the trash reaper, supervisors, the housekeeper) run in another
/// directory, where a relative store root or run dir would name something else.
fn absolute(what: &str, path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path).map_err(|e| {
        Failure::new(
            1,
            format!(
                "cannot make the {what} {} absolute ({e}); give an absolute path or run gcr from an existing directory",
                path.display()
            ),
        )
    })
}

fn run_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GCR_RUN_DIR") {
        return PathBuf::from(d);
    }
    // SAFETY: as above.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/run/gcr");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) => PathBuf::from(d).join("gcr"),
        None => PathBuf::from("/tmp/gcr-run"),
    }
}

fn dispatch(cli: Cli) -> Result<i32, Failure> {
    match &cli.cmd {
        Cmd::Supervise { args } => return Ok(gcr_engine::container::supervise::main(args)),
        Cmd::Completion { shell } => {
            // clap_complete panics when its writer fails: render to memory first.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "gcr", &mut script);
            out::bytes(&script)?;
            return Ok(0);
        }
        Cmd::Version { format } => return system::version(*format),
        Cmd::Container { args } => return parity::group_help("container", args),
        Cmd::Image { args } => return parity::group_help("image", args),
        Cmd::Builder { args } => return parity::group_help("builder", args),
        _ => {}
    }
    let root = absolute("store root", &cli.root.clone().unwrap_or_else(default_root))?;
    gcr_engine::policy::configure(cli.policy.clone(), cli.run_policy.clone());
    let run_dir = absolute("run dir", &run_dir())?;
    // A foreground run opens the store while it prepares its container (see
    // Engine::open_deferred).
    let engine = if matches!(&cli.cmd, Cmd::Run(a) if !a.detach) {
        Ok(Engine::open_deferred(&root, &run_dir))
    } else {
        Engine::open(&root, &run_dir)
    };
    let engine = engine.map_err(|e| {
        let code = if matches!(cli.cmd, Cmd::Run(_) | Cmd::Create(_)) {
            125
        } else {
            1
        };
        Failure::new(code, e.to_string())
    })?;
    let e = &engine;
    match cli.cmd {
        Cmd::Run(a) => containers::run(e, &a),
        Cmd::Create(a) => containers::create(e, &a),
        Cmd::Start {
            containers: c,
            attach,
            interactive,
            detach_keys,
        } => containers::start(e, &c, (attach, interactive), detach_keys.as_deref()),
        Cmd::Stop {
            containers: c,
            time,
        } => containers::each(&c, |n| e.stop(n, time).map(|_| ())),
        Cmd::Kill {
            containers: c,
            signal,
        } => containers::each(&c, |n| e.kill(n, &signal).map(|_| ())),
        Cmd::Restart {
            containers: c,
            time,
        } => containers::each(&c, |n| e.restart(n, time).map(|_| ())),
        Cmd::Rm {
            containers: c,
            force,
            volumes,
        } => containers::each(&c, |n| e.remove_with(n, force, volumes).map(|_| ())),
        Cmd::Rename {
            container,
            new_name,
        } => parity::rename(e, &container, &new_name),
        Cmd::Export { container, output } => parity::export(e, &container, output.as_ref()),
        Cmd::Cp(a) => parity::cp(e, &a),
        Cmd::Update(a) => parity::update(e, &a),
        Cmd::Diff { container } => {
            for c in e.diff(&container)? {
                outln!("{} {}", c.kind, c.path)?;
            }
            Ok(0)
        }
        Cmd::Commit(a) => parity::commit(e, &a),
        Cmd::ContainerPrune { filter, .. } => parity::container_prune(e, &filter),
        Cmd::ImagePrune { all, filter, .. } => parity::image_prune(e, all, &filter),
        Cmd::BuilderPrune {
            all,
            filter,
            keep_storage,
            ..
        } => parity::builder_prune(e, all, &filter, keep_storage.as_deref()),
        Cmd::Pause { containers: c } => containers::each(&c, |n| e.pause(n).map(|_| ())),
        Cmd::Unpause { containers: c } => containers::each(&c, |n| e.unpause(n).map(|_| ())),
        Cmd::Ps(a) => parity::ps(e, &a),
        Cmd::Logs {
            container,
            follow,
            tail,
            timestamps,
            since,
            until,
        } => {
            let window = (since.as_deref(), until.as_deref());
            containers::logs(e, &container, follow, tail.as_deref(), timestamps, window)
        }
        Cmd::Wait { containers: c } => {
            let mut code = 0;
            for n in &c {
                match e.wait(n) {
                    Ok(x) => outln!("{x}")?,
                    Err(err) => {
                        errln!("Error: {err}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        Cmd::Exec(a) => containers::exec(e, &a),
        Cmd::Attach {
            container,
            detach_keys,
            no_stdin,
            sig_proxy: _,
        } => attach::attach(e, &container, detach_keys.as_deref(), no_stdin),
        Cmd::Stats {
            containers: c,
            no_stream,
            format,
        } => stats::run(e, &c, no_stream, format),
        Cmd::Top {
            container,
            ps_options,
        } => containers::top(e, &container, &ps_options),
        Cmd::Events {
            since,
            until,
            filter,
            format,
        } => system::events(e, since.as_deref(), until.as_deref(), &filter, &format),
        Cmd::Audit { cmd } => audit::dispatch(e, cmd),
        Cmd::Build(a) => build::run(e, &a),
        c @ (Cmd::Pull(_)
        | Cmd::Push(_)
        | Cmd::Search(_)
        | Cmd::Login(_)
        | Cmd::Logout { .. }
        | Cmd::Registry { .. }) => registry::dispatch(e, c),
        c @ (Cmd::Network { .. } | Cmd::Volume { .. } | Cmd::Port { .. }) => {
            network::dispatch(e, c)
        }
        Cmd::Secret { cmd } => secrets::dispatch(e, cmd),
        c @ (Cmd::Key { .. } | Cmd::Sign(_) | Cmd::Verify(_)) => trust::dispatch(e, c),
        c @ Cmd::Manifest { .. } => manifest::dispatch(e, c),
        Cmd::Policy { cmd } => policy::dispatch(e, cmd),
        c @ (Cmd::Info { .. } | Cmd::System { .. } | Cmd::Doctor { .. }) => system::dispatch(e, c),
        other => images::dispatch(e, other),
    }
}

fn main() {
    gcr_engine::timing::init();
    // The supervisor is exec'd once per detached container and lives as long as it: skip
    // clap (and the pages it touches) to keep its memory small.
    // The trash reaper and the port proxy likewise start often and do one thing (the proxy
    // on a start's path), and the API service (a daemon) keeps none of clap's pages resident.
    let mut argv = std::env::args_os();
    // runc's command line: invoked as gcr-runc (or runc), or as `gcr oci ...`.
    let name = argv.next().unwrap_or_default();
    let base = Path::new(&name)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if base == "gcr-runc" || base == "runc" {
        std::process::exit(oci::main(argv.collect()));
    }
    match argv.next().as_ref().and_then(|a| a.to_str()) {
        Some("oci") => std::process::exit(oci::main(argv.collect())),
        Some("__supervise") => {
            let rest: Vec<String> = argv.map(|a| a.to_string_lossy().into_owned()).collect();
            std::process::exit(gcr_engine::container::supervise::main(&rest));
        }
        Some("__service") => {
            let rest: Vec<std::ffi::OsString> = argv.collect();
            std::process::exit(system::service_main(&rest));
        }
        Some("__proxy") => {
            let rest: Vec<String> = argv.map(|a| a.to_string_lossy().into_owned()).collect();
            std::process::exit(network::proxy_main(&rest));
        }
        Some("__reap") => {
            let root = argv.next().map(PathBuf::from).unwrap_or_else(default_root);
            let run_dir = argv.next().map(PathBuf::from);
            std::process::exit(gcr_engine::trash::reap_main(&root, run_dir.as_deref()));
        }
        _ => {}
    }
    let cli = Cli::parse_fast();
    // The last line may still sit in stdout's buffer: flush it here, where a closed pipe
    // is still quiet, rather than at exit.
    let code = match dispatch(cli).and_then(|c| out::flush().map(|()| c)) {
        Ok(c) => c,
        Err(f) => {
            if !f.message.is_empty() {
                errln!("Error: {}", f.message);
            }
            f.code
        }
    };
    std::process::exit(code);
}
