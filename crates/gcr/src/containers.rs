//! Container commands: parse flags into engine options and render the results.

use anyhow::Result;
use gcr_engine::container::config::{RestartPolicy, RunOptions};
use gcr_engine::container::exec::ExecOptions;
use gcr_engine::logs::LogOptions;
use gcr_engine::{Engine, EngineError};

use crate::cli::{ExecArgs, RunArgs};
use crate::out::{errln, outln, Report, Watched};
use crate::render::table_out;
use crate::Failure;

pub(crate) fn usage(msg: String) -> Failure {
    Failure::new(125, msg)
}

/// A size flag's value in bytes (`512m`, `1g`); a bad one exits 125 naming the flag.
pub(crate) fn size(flag: &str, v: &Option<String>) -> Result<Option<u64>, Failure> {
    v.as_deref()
        .map(|s| {
            gcr_engine::units::parse_size(s).map_err(|_| {
                usage(format!(
                    "invalid value '{s}' for {flag}: not a size; use e.g. 512m or 1g"
                ))
            })
        })
        .transpose()
}

/// Turns `gcr run` flags into engine options (errors exit 125 like Docker).
pub fn run_options(a: &RunArgs) -> Result<RunOptions, Failure> {
    let memory = size("--memory", &a.limits.memory)?;
    if memory.is_some_and(|m| m < 6 * 1024 * 1024) {
        return Err(usage(
            "invalid value for --memory: the minimum allowed memory limit is 6MB".into(),
        ));
    }
    let memory_swap = match a.limits.memory_swap.as_deref() {
        None => None,
        Some("-1") => Some(-1),
        Some(_) => size("--memory-swap", &a.limits.memory_swap)?.map(|v| v as i64),
    };
    let cpus = match (a.limits.cpus.as_deref(), cpu_quota(&a.limits)?) {
        (Some(_), Some(_)) => return Err(usage(
            "conflicting options: --cpus and --cpu-period/--cpu-quota cannot both be set; give one"
                .into(),
        )),
        (None, q) => q,
        (Some(s), None) => Some(parse_cpus(s)?),
    };
    for (flag, v, cpus) in [
        ("--cpuset-cpus", &a.limits.cpuset_cpus, true),
        ("--cpuset-mems", &a.limits.cpuset_mems, false),
    ] {
        if let Some(v) = v {
            gcr_engine::container::config::check_cpuset(flag, v, cpus).map_err(usage)?;
        }
    }
    if a.limits.pids_limit.is_some_and(|p| p == 0 || p < -1) {
        return Err(usage(
            "invalid value for --pids-limit: use a positive number, or -1 for unlimited".into(),
        ));
    }
    for h in &a.add_host {
        if gcr_engine::network::parse_add_host(h).is_none() {
            return Err(usage(format!(
                "invalid --add-host '{h}': use NAME:IP with an IPv4 or IPv6 address"
            )));
        }
    }
    for d in &a.dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(usage(format!(
                "invalid --dns '{d}': use the IP address of a name server"
            )));
        }
    }
    for u in &a.ulimit {
        gcr_engine::container::config::parse_ulimit(u).map_err(usage)?;
    }
    let shm_size = size("--shm-size", &a.shm_size)?;
    if shm_size == Some(0) {
        return Err(usage("invalid --shm-size 0: use a size such as 64m".into()));
    }
    for s in &a.attach {
        if !["stdin", "stdout", "stderr"].contains(&s.to_ascii_lowercase().as_str()) {
            return Err(usage(format!(
                "invalid -a '{s}': attach to stdin, stdout or stderr"
            )));
        }
    }
    if a.detach && !a.attach.is_empty() {
        return Err(usage(
            "conflicting options: -a and -d; a detached container is followed with 'gcr logs -f' or 'gcr attach'".into(),
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
        // 0 is Docker's "not set".
        cpu_shares: a.limits.cpu_shares.filter(|s| *s > 0),
        cpuset_cpus: a.limits.cpuset_cpus.clone(),
        cpuset_mems: a.limits.cpuset_mems.clone(),
        pids_limit: a.limits.pids_limit,
        read_only: a.read_only,
        privileged: a.privileged,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        security_opt: a.security_opt.clone(),
        network: a.network.first().cloned(),
        restart,
        labels: labels_of(a)?,
        domainname: a.domainname.clone().filter(|d| !d.is_empty()),
        mac_address: a.mac_address.clone().filter(|m| !m.is_empty()),
        oom_score_adj: a.oom_score_adj,
        tuning: crate::tuning::of(a)?,
        cgroup_parent: a.cgroup_parent.clone().filter(|p| !p.is_empty()),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        publish: a.publish.clone(),
        publish_all: a.publish_all,
        volumes_from: a.volumes_from.clone(),
        expose: a.expose.clone(),
        volumes: a
            .volume
            .iter()
            .map(|v| absolute_source(v))
            .collect::<Result<_, _>>()?,
        tmpfs: a.tmpfs.clone(),
        health_cmd: a.health_cmd.clone(),
        health_interval: a.health_interval.clone(),
        health_timeout: a.health_timeout.clone(),
        health_retries: a.health_retries,
        health_start_period: a.health_start_period.clone(),
        health_start_interval: a.health_start_interval.clone(),
        no_healthcheck: a.no_healthcheck,
        secrets: a.secret.clone(),
        add_hosts: a.add_host.clone(),
        links: a.link.clone(),
        dns: a.dns.clone(),
        dns_search: a.dns_search.clone(),
        dns_options: a.dns_option.clone(),
        shm_size,
        group_add: a.group_add.clone(),
        ulimits: a.ulimit.clone(),
        mounts: a.mount.clone(),
        sysctls: a.sysctl.clone(),
        pid: a.pid.clone(),
        ipc: a.ipc.clone(),
        uts: a.uts.clone(),
        userns: a.userns.clone(),
        devices: a.device.clone(),
        cidfile: a.cidfile.clone(),
        attach: a.attach.iter().map(|s| s.to_ascii_lowercase()).collect(),
        log_driver: a.log_driver.clone(),
        log_opts: a.log_opt.clone(),
        network_aliases: a.network_alias.clone(),
        ip: a.ip.clone(),
        ip6: a.ip6.clone(),
        extra_networks: a
            .network
            .iter()
            .skip(1)
            .map(|n| gcr_engine::container::config::NetworkJoin {
                name: n.clone(),
                ..Default::default()
            })
            .collect(),
    })
}

/// `-v ./dir:/x` (or `../dir`, `.`): the source made absolute against the current
/// directory, as the docker CLI does; anything else as given.
/// `--cpus N`: at least 0.01, at most the CPUs there are.
fn parse_cpus(s: &str) -> Result<f64, Failure> {
    match s.parse::<f64>() {
        Ok(c) if c > 0.0 && c.is_finite() => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            if c < 0.01 || c > n as f64 {
                return Err(usage(format!(
                    "invalid value '{s}' for --cpus: the range is 0.01 to {n}.00, as there {} only {n} CPU{} available",
                    if n == 1 { "is" } else { "are" },
                    if n == 1 { "" } else { "s" }
                )));
            }
            Ok(c)
        }
        _ => Err(usage(format!(
            "invalid value '{s}' for --cpus: use a positive number such as 0.5 or 2"
        ))),
    }
}

/// `--cpu-quota` over `--cpu-period` (Docker's CFS flags) as a number of CPUs, when a
/// quota is given (-1: none).
fn cpu_quota(a: &crate::cli::LimitArgs) -> Result<Option<f64>, Failure> {
    let period = a.cpu_period.unwrap_or(100_000);
    if !(1000..=1_000_000).contains(&period) {
        return Err(usage(format!(
            "invalid --cpu-period {period}: use 1000 to 1000000 microseconds"
        )));
    }
    match a.cpu_quota {
        None | Some(-1) => Ok(None),
        Some(q) if q >= 1000 => Ok(Some(q as f64 / period as f64)),
        Some(q) => Err(usage(format!(
            "invalid --cpu-quota {q}: use at least 1000 microseconds, or -1 for no quota"
        ))),
    }
}

/// Labels of `--label-file` files (KEY=VALUE lines; # comments and blank lines skipped),
/// then of `--label`, as Docker's CLI reads them.
fn labels_of(a: &RunArgs) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    for f in &a.label_file {
        let text = std::fs::read_to_string(f).map_err(|e| {
            usage(format!(
                "cannot read --label-file {f}: {e}; give a readable file"
            ))
        })?;
        out.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    out.extend(a.label.iter().cloned());
    Ok(out)
}

fn absolute_source(v: &str) -> Result<String, Failure> {
    let Some((src, rest)) = v.split_once(':') else {
        return Ok(v.to_string());
    };
    if !(src == "." || src == ".." || src.starts_with("./") || src.starts_with("../")) {
        return Ok(v.to_string());
    }
    let abs = std::path::absolute(src).map_err(|e| {
        usage(format!(
            "invalid volume '{v}': cannot resolve {src} ({e}); give an absolute path"
        ))
    })?;
    // `a/./b` and `a/../b` cleaned (the docker CLI cleans them too).
    let mut clean = std::path::PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    Ok(format!("{}:{rest}", clean.display()))
}

pub(crate) fn run_failure(e: EngineError) -> Failure {
    Failure::new(e.run_exit_code(), e.to_string())
}

/// `--pull` and `--platform` of `run`/`create`: the image pulled when asked (progress on
/// stderr, as docker run), then its platform checked (gcr runs without emulation).
fn pull_and_check(engine: &Engine, a: &RunArgs) -> Result<(), Failure> {
    use gcr_engine::registry::{NoProgress, Platform, PullOptions};
    let platform = match &a.platform {
        Some(p) => Some(Platform::parse(p).ok_or_else(|| {
            usage(format!(
                "invalid --platform '{p}'; use os/arch[/variant], e.g. linux/amd64"
            ))
        })?),
        None => None,
    };
    let present = engine.store()?.resolve_image(&a.image).is_ok();
    let pull = match a.pull.as_deref() {
        None | Some("never") => false,
        Some("missing") => !present,
        Some("always") => true,
        Some(o) => {
            return Err(usage(format!(
                "invalid --pull '{o}': use always, missing or never"
            )))
        }
    };
    if pull {
        if !present && !a.quiet {
            errln!("Unable to find image '{}' locally", a.image);
        }
        let opts = PullOptions {
            platform: platform.clone(),
            ..Default::default()
        };
        let r = engine
            .pull(&a.image, &opts, &NoProgress)
            .map_err(run_failure)?;
        if !a.quiet {
            errln!(
                "Status: {} {}",
                if r.up_to_date {
                    "Image is up to date for"
                } else {
                    "Downloaded newer image for"
                },
                r.reference
            );
        }
    }
    if let Some(p) = &platform {
        if let Ok(doc) = engine.inspect_image(&a.image) {
            let (os, arch) = (
                doc["Os"]
                    .as_str()
                    .filter(|o| !o.is_empty())
                    .unwrap_or("linux"),
                doc["Architecture"].as_str().unwrap_or(""),
            );
            if os != p.os || (!arch.is_empty() && arch != p.architecture) {
                return Err(usage(format!(
                    "image {} is {os}/{arch}, not the requested {}/{}; gcr runs without emulation",
                    a.image, p.os, p.architecture
                )));
            }
        }
    }
    Ok(())
}

/// `gcr run`.
pub fn run(engine: &Engine, a: &RunArgs) -> Result<i32, Failure> {
    let mut opts = run_options(a)?;
    crate::tuning::fit(engine, &mut opts)?;
    if a.tty && a.interactive && !a.detach && !is_tty(0) {
        return Err(Failure::new(1, "the input device is not a TTY".into()));
    }
    let _cid = CidFile::claim(a.cidfile.as_deref())?;
    if a.pull.is_some() || a.platform.is_some() {
        pull_and_check(engine, a)?;
    }
    let res = if a.detach {
        engine.run_detached(opts).map(|r| {
            let _ = outln!("{}", r.id);
            0
        })
    } else if a.tty && a.interactive {
        // As Docker's: supervised, and this process attached (so it can detach).
        let o = crate::attach::attach_options(opts.attaches("stdin"), a.detach_keys.as_deref())?;
        engine
            .run_attached(opts, &o)
            .map(crate::attach::attach_code)
    } else {
        engine.run_foreground(opts)
    };
    res.map_err(run_failure)
}

/// `gcr create`.
pub fn create(engine: &Engine, a: &RunArgs) -> Result<i32, Failure> {
    let mut opts = run_options(a)?;
    crate::tuning::fit(engine, &mut opts)?;
    let _cid = CidFile::claim(a.cidfile.as_deref())?;
    if a.pull.is_some() || a.platform.is_some() {
        pull_and_check(engine, a)?;
    }
    let r = engine.create(opts).map_err(run_failure)?;
    outln!("{}", r.id)?;
    Ok(0)
}

/// Whether descriptor `fd` is a terminal.
pub(crate) fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty on a descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

/// `--cidfile`: made (empty, exclusively) before the container, filled by the engine with
/// its id once it exists, and removed again when no container came of it.
struct CidFile(Option<std::path::PathBuf>);

impl CidFile {
    fn claim(path: Option<&str>) -> Result<CidFile, Failure> {
        let Some(p) = path else {
            return Ok(CidFile(None));
        };
        match std::fs::OpenOptions::new().write(true).create_new(true).open(p) {
            Ok(_) => Ok(CidFile(Some(p.into()))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(usage(format!(
                "container ID file {p} already exists; make sure its container is gone and delete the file"
            ))),
            Err(e) => Err(usage(format!("cannot create the container ID file {p}: {e}"))),
        }
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            if std::fs::metadata(p).is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
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

/// `gcr start [-a] [-i]`: with either, one container, attached from its first byte.
pub fn start(
    engine: &Engine,
    names: &[String],
    (attach, interactive): (bool, bool),
    detach_keys: Option<&str>,
) -> Result<i32, Failure> {
    if attach || interactive {
        let [one] = names else {
            return Err(Failure::new(
                2,
                "start -a/-i takes exactly one container".into(),
            ));
        };
        let r = engine.container(one).map_err(run_failure)?;
        let o =
            crate::attach::attach_options(interactive && r.config.opts.interactive, detach_keys)?;
        let end = engine.start_attached(one, &o).map_err(run_failure)?;
        return Ok(crate::attach::attach_code(end));
    }
    each(names, |n| engine.start(n).map(|_| ()))
}

/// Whether the container still produces output for `logs -f` and `attach` to follow.
fn is_running(engine: &Engine, id: &str) -> bool {
    engine
        .container(id)
        .map(|r| r.state.is_alive())
        .unwrap_or(false)
}

/// `gcr logs`.
pub fn logs(
    engine: &Engine,
    key: &str,
    follow: bool,
    tail: Option<&str>,
    timestamps: bool,
    (since, until): (Option<&str>, Option<&str>),
) -> Result<i32, Failure> {
    let r = engine.container(key).map_err(Failure::from)?;
    if !r.config.opts.keeps_log() {
        return Err(Failure::new(1, gcr_engine::logfile::NOT_READABLE.into()));
    }
    let now = gcr_engine::container::record::now_ns();
    let at = |flag: &str, v: Option<&str>| -> Result<Option<String>, Failure> {
        v.map(|s| crate::filters::time_flag(flag, s, now).map(gcr_engine::logs::rfc3339_nanos))
            .transpose()
    };
    let since = at("--since", since)?;
    let until = at("--until", until)?;
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
        since,
        until,
    };
    print_log(engine, &r.id, &o, Failure::from)?;
    Ok(0)
}

/// Prints container `id`'s log as `o` says (`err`: how a read error is reported). The
/// engine's printer ignores write errors: the watched stdout remembers them and ends a
/// follow, which otherwise would outlive its reader until the container exits.
pub(crate) fn print_log(
    engine: &Engine,
    id: &str,
    o: &LogOptions,
    err: fn(EngineError) -> Failure,
) -> Result<(), Failure> {
    let path = engine.container_dir(id).join("container.log");
    let watch = Watched::new();
    let mut running = || !watch.broken() && is_running(engine, id);
    gcr_engine::logs::print(
        &path,
        o,
        &mut watch.writer(),
        &mut std::io::stderr(),
        &mut running,
    )
    .map_err(err)?;
    watch.finish()
}

/// `gcr exec`.
pub fn exec(engine: &Engine, a: &ExecArgs) -> Result<i32, Failure> {
    if a.tty && a.interactive && !a.detach && !is_tty(0) {
        return Err(Failure::new(1, "the input device is not a TTY".into()));
    }
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

/// `gcr top CONTAINER [PS_OPTIONS]`.
pub fn top(engine: &Engine, key: &str, ps_args: &[String]) -> Result<i32, Failure> {
    let args = ps_args.join(" ");
    let t = engine
        .top(key, (!args.is_empty()).then_some(args.as_str()))
        .map_err(Failure::from)?;
    let titles: Vec<&str> = t.titles.iter().map(String::as_str).collect();
    table_out(&titles, &t.processes)?;
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
