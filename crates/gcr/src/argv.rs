//! From the command line to a [`Cli`]: `gcr run …` parsed by the run parser alone (the
//! hot path), Docker's `container …`/`image …` groups rewritten to their verbs, and the
//! errors Docker users know (`unknown flag: --x`, `'x' is not a gcr command`) in place of
//! clap's tips.

use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;

use crate::cli::{Cli, Cmd, RunArgs};

/// Levenshtein distance (command names are short).
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Prints a parse error as Docker does and exits (help and version exit as clap does).
fn docker_style(e: clap::Error, sub: Option<&str>) -> ! {
    let ctx = |k: ContextKind| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    let see = match sub {
        Some(s) if !s.starts_with('-') => format!("See 'gcr {s} --help'."),
        _ => "See 'gcr --help'.".to_string(),
    };
    let (msg, code) = match e.kind() {
        ErrorKind::UnknownArgument => {
            let arg = ctx(ContextKind::InvalidArg).unwrap_or_default();
            let arg = arg.split('=').next().unwrap_or("").to_string();
            (format!("unknown flag: {arg}\n{see}"), 125)
        }
        ErrorKind::InvalidSubcommand => {
            let cmd = ctx(ContextKind::InvalidSubcommand).unwrap_or_default();
            // clap may offer several: the closest in edits wins.
            let hint = match e.get(ContextKind::SuggestedSubcommand) {
                Some(ContextValue::Strings(v)) => v.iter().min_by_key(|s| edits(s, &cmd)).cloned(),
                Some(ContextValue::String(s)) => Some(s.clone()),
                _ => None,
            }
            .map(|s| format!(" Did you mean 'gcr {s}'?"))
            .unwrap_or_default();
            (
                format!("'{cmd}' is not a gcr command.{hint}\nSee 'gcr --help'."),
                1,
            )
        }
        _ => e.exit(),
    };
    eprintln!("gcr: {msg}");
    std::process::exit(code)
}

/// One subcommand's parser alone (with the global options), for `args` (the command line
/// less the program and the subcommand's name): `None` when it does not accept them.
fn one<A: clap::Args + clap::FromArgMatches>(
    name: &'static str,
    args: &[&std::ffi::OsString],
    wrap: fn(A) -> Cmd,
) -> Option<Cli> {
    let path_arg = |id: &'static str, long: &'static str, env: &'static str| {
        clap::Arg::new(id)
            .long(long)
            .env(env)
            .value_parser(clap::value_parser!(PathBuf))
    };
    let cmd = clap::Command::new(name)
        .no_binary_name(true)
        .arg(path_arg("root", "root", "GCR_ROOT"))
        .arg(path_arg("policy", "policy", "GCR_POLICY"))
        .arg(path_arg("run_policy", "run-policy", "GCR_RUN_POLICY"));
    let m = A::augment_args(cmd).try_get_matches_from(args).ok()?;
    let a = A::from_arg_matches(&m).ok()?;
    Some(Cli {
        root: m.get_one::<PathBuf>("root").cloned(),
        policy: m.get_one::<PathBuf>("policy").cloned(),
        run_policy: m.get_one::<PathBuf>("run_policy").cloned(),
        cmd: wrap(a),
    })
}

impl Cli {
    /// Parses the command line. The commands with an argument struct (`run`, `create`,
    /// `exec`, `build`, `ps`, `inspect`, `images`, `pull`, `push`, `sign`, `verify`, `cp`,
    /// `update`, `commit`) build only their own parser: clap's derive builds every subcommand's parser before parsing,
    /// which costs about 0.5 ms per process here. Anything the fast parser does not accept
    /// (help, errors) goes to the full parser, so messages and exit codes are the same.
    pub fn parse_fast() -> Cli {
        let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
        // The global options may come before `run` (`gcr --policy F run …`): skip them to
        // find it, and hand them to the run parser, which knows them too.
        let mut at = 1;
        while let Some(a) = argv.get(at).and_then(|a| a.to_str()) {
            if matches!(a, "--root" | "--policy" | "--run-policy") {
                at += 2;
            } else if ["--root=", "--policy=", "--run-policy="]
                .iter()
                .any(|p| a.starts_with(p))
            {
                at += 1;
            } else {
                break;
            }
        }
        let argv = crate::parity::rewrite(argv, at);
        let args: Vec<&std::ffi::OsString> = argv
            .get(1..at.min(argv.len()))
            .unwrap_or_default()
            .iter()
            .chain(argv.get(at + 1..).unwrap_or_default())
            .collect();
        let fast = match argv.get(at).and_then(|a| a.to_str()) {
            Some("run") => one::<RunArgs>("run", &args, Cmd::Run),
            Some("build") => one::<crate::build::BuildArgs>("build", &args, Cmd::Build),
            Some("ps") => one::<crate::parity::PsArgs>("ps", &args, Cmd::Ps),
            Some("inspect") => one::<crate::cli::InspectArgs>("inspect", &args, Cmd::Inspect),
            Some("create") => one::<RunArgs>("create", &args, Cmd::Create),
            Some("exec") => one::<crate::cli::ExecArgs>("exec", &args, Cmd::Exec),
            Some("images") => one::<crate::cli::ImagesArgs>("images", &args, Cmd::Images),
            Some("pull") => one::<crate::registry::PullArgs>("pull", &args, Cmd::Pull),
            Some("push") => one::<crate::registry::PushArgs>("push", &args, Cmd::Push),
            Some("sign") => one::<crate::trust::SignArgs>("sign", &args, Cmd::Sign),
            Some("verify") => one::<crate::trust::VerifyArgs>("verify", &args, Cmd::Verify),
            Some("cp") => one::<crate::parity::CpArgs>("cp", &args, Cmd::Cp),
            Some("update") => one::<crate::parity::UpdateArgs>("update", &args, Cmd::Update),
            Some("commit") => one::<crate::parity::CommitArgs>("commit", &args, Cmd::Commit),
            _ => None,
        };
        if let Some(c) = fast {
            return c;
        }
        match Cli::try_parse_from(&argv) {
            Ok(c) => c,
            Err(e) => docker_style(e, argv.get(at).and_then(|a| a.to_str())),
        }
    }
}
