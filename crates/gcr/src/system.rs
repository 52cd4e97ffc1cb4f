//! System commands: version, info, events, system df and prune, doctor.

use std::path::PathBuf;

use gcr_engine::docker_events;
use gcr_engine::Engine;

use crate::cli::{Cmd, Format, SystemCmd};
use crate::out::{errln, outln};
use crate::render::{bytes, table_out};
use crate::Failure;

fn store_err(err: gcr_engine::StoreError) -> Failure {
    Failure::from(gcr_engine::EngineError::from(err))
}

/// `gcr version`.
pub fn version(format: Format) -> Result<i32, Failure> {
    let v = serde_json::json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "Os": std::env::consts::OS,
        "Arch": std::env::consts::ARCH,
        "ApiVersion": "none",
    });
    if format == Format::Json {
        outln!("{v}")?;
    } else {
        outln!(
            "gcr version {}\nOS/Arch: {}/{}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH
        )?;
    }
    Ok(0)
}

/// The JSONL socket of `gcr system service`: `--jsonl PATH` (or `unix://PATH`), else next
/// to the API's unix socket (`gcr.sock` -> `gcr.jsonl.sock`), else `RUN_DIR/gcr.jsonl.sock`;
/// none with `--no-jsonl`.
fn jsonl_path(
    e: &Engine,
    host: &gcr_api::Host,
    jsonl: Option<String>,
    no_jsonl: bool,
) -> Result<Option<std::path::PathBuf>, Failure> {
    if no_jsonl {
        return Ok(None);
    }
    let path = match jsonl {
        Some(p) => {
            let p = std::path::PathBuf::from(p.strip_prefix("unix://").unwrap_or(&p));
            if !p.is_absolute() || p.file_name().is_none() {
                return Err(Failure::new(
                    125,
                    format!(
                        "invalid --jsonl '{}': give an absolute socket path such as /run/gcr/gcr.jsonl.sock",
                        p.display()
                    ),
                ));
            }
            p
        }
        None => match host {
            gcr_api::Host::Unix(api) => {
                let name = api.file_name().map(|n| n.to_string_lossy().into_owned());
                let name = name.unwrap_or_else(|| "gcr.sock".into());
                let stem = name.strip_suffix(".sock").unwrap_or(&name);
                api.with_file_name(format!("{stem}.jsonl.sock"))
            }
            gcr_api::Host::Tcp(_) => e.run_dir().join("gcr.jsonl.sock"),
        },
    };
    if matches!(host, gcr_api::Host::Unix(api) if *api == path) {
        return Err(Failure::new(
            125,
            "--jsonl names the API's own socket; choose another path".into(),
        ));
    }
    Ok(Some(path))
}

/// `gcr system service`: the Docker Engine API (and the JSONL protocol) until SIGINT or
/// SIGTERM.
fn service(
    e: &Engine,
    host: Option<String>,
    group: Option<String>,
    tls: Tls,
    (jsonl, no_jsonl): (Option<String>, bool),
    webhook: Hook,
    insecure_registries: Vec<String>,
) -> Result<i32, Failure> {
    let tls = tls.files()?;
    let insecure_registries = insecure_registries
        .iter()
        .map(|r| {
            gcr_api::insecure::parse(r)
                .map_err(|err| Failure::new(125, format!("invalid --insecure-registry: {err}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if webhook.url.is_none() && (!webhook.types.is_empty() || webhook.secret.is_some()) {
        return Err(Failure::new(
            125,
            "--webhook-types and --webhook-secret take effect with --webhook URL: add it".into(),
        ));
    }
    let host =
        match host {
            Some(h) => gcr_api::Host::parse(&h, tls.is_some()),
            None if tls.is_some() => return Err(Failure::new(
                125,
                "--tls serves a TCP address: add --host tcp://IP:PORT (Docker's TLS port is 2376)"
                    .to_string(),
            )),
            None => Ok(gcr_api::Host::Unix(e.run_dir().join("gcr.sock"))),
        }
        .map_err(|err| Failure::new(125, err.to_string()))?;
    let jsonl = jsonl_path(e, &host, jsonl, no_jsonl)?;
    let opts = gcr_api::ServiceOptions {
        root: e.root().to_path_buf(),
        run_dir: e.run_dir().to_path_buf(),
        host,
        group,
        tls,
        jsonl,
        webhook: webhook.url.map(|url| gcr_api::WebhookOptions {
            url,
            types: webhook
                .types
                .iter()
                .flat_map(|t| t.split(','))
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            secret: webhook.secret,
        }),
        insecure_registries,
    };
    // The daemon goes on in a fresh image of this binary that skips the command-line
    // parser (`__service`, see main): the same pid, stdio and environment, without the
    // code pages clap touched. Should the exec fail, it serves from here.
    crate::out::flush()?;
    use std::os::unix::process::CommandExt;
    let _ = std::process::Command::new("/proc/self/exe")
        .arg0("gcr")
        .arg("__service")
        .args(opts.to_args())
        .exec();
    serve(opts)
}

/// Serves the API until stopped, saying where once its sockets listen; its errors exit 125.
fn serve(opts: gcr_api::ServiceOptions) -> Result<i32, Failure> {
    let (host, jsonl) = (opts.host.clone(), opts.jsonl.clone());
    let ready = move || {
        errln!("gcr: serving the Docker Engine API on {host}");
        if let Some(p) = &jsonl {
            errln!("gcr: serving the JSONL protocol on unix://{}", p.display());
        }
    };
    gcr_api::serve(opts, ready).map_err(|err| Failure::new(125, err.to_string()))?;
    Ok(0)
}

/// `gcr __service ARGS` (exec'd by `gcr system service`): serves without clap.
pub fn service_main(args: &[std::ffi::OsString]) -> i32 {
    let r = gcr_api::ServiceOptions::from_args(args)
        .map_err(|err| Failure::new(125, err.to_string()))
        .and_then(serve);
    match r {
        Ok(c) => c,
        Err(f) => {
            errln!("Error: {}", f.message);
            f.code
        }
    }
}

/// `--webhook`, `--webhook-types`, `--webhook-secret` as given.
struct Hook {
    url: Option<String>,
    types: Vec<String>,
    secret: Option<PathBuf>,
}

/// `--tls` and its files, as the command line gave them.
struct Tls {
    on: bool,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    crl: Option<PathBuf>,
}

impl Tls {
    /// The files to serve with, or `None` without `--tls`; a file flag without `--tls` is
    /// an error (it would otherwise be ignored).
    fn files(self) -> Result<Option<gcr_api::TlsFiles>, Failure> {
        if !self.on {
            if self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.crl.is_some()
            {
                return Err(Failure::new(
                    125,
                    "--tlscacert, --tlscert, --tlskey and --tlscrl take effect with --tls: add --tls"
                        .to_string(),
                ));
            }
            return Ok(None);
        }
        let dir = std::env::var_os("DOCKER_CERT_PATH")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .unwrap_or_else(|| PathBuf::from("/root/.docker"));
        let d = gcr_api::TlsFiles::in_dir(&dir);
        Ok(Some(gcr_api::TlsFiles {
            ca: self.ca.unwrap_or(d.ca),
            cert: self.cert.unwrap_or(d.cert),
            key: self.key.unwrap_or(d.key),
            crl: self.crl,
        }))
    }
}

/// Dispatches the system commands.
pub fn dispatch(e: &Engine, cmd: Cmd) -> Result<i32, Failure> {
    match cmd {
        Cmd::Info { format } => info(e, format),
        Cmd::System {
            cmd:
                SystemCmd::Service {
                    host,
                    group,
                    tls,
                    tlscacert,
                    tlscert,
                    tlskey,
                    tlscrl,
                    jsonl,
                    no_jsonl,
                    webhook,
                    webhook_types,
                    webhook_secret,
                    insecure_registry,
                },
        } => service(
            e,
            host,
            group,
            Tls {
                on: tls,
                ca: tlscacert,
                cert: tlscert,
                key: tlskey,
                crl: tlscrl,
            },
            (jsonl, no_jsonl),
            Hook {
                url: webhook,
                types: webhook_types,
                secret: webhook_secret,
            },
            insecure_registry,
        ),
        Cmd::System {
            cmd: SystemCmd::Df { format, verbose },
        } => {
            if verbose {
                df_verbose(e)
            } else {
                df(e, format)
            }
        }
        Cmd::System {
            cmd:
                SystemCmd::Prune {
                    force: _,
                    all,
                    volumes,
                    filter,
                },
        } => {
            let f = crate::filters::prune_filter(&filter, "system", crate::parity::UNTIL_LABEL)?;
            // Volumes have no `until` (as dockerd refuses it with --volumes).
            if volumes && f.has_until() {
                return Err(Failure::new(
                    125,
                    "the until filter does not apply to volumes; leave out --volumes or the until filter".into(),
                ));
            }
            // Docker's order and scope: stopped containers, unused user networks, then
            // dangling images (every unused one with -a), anonymous volumes with --volumes.
            let c = e.container_prune_with(&f)?;
            for id in &c.ids {
                outln!("Deleted container: {id}")?;
            }
            for n in e.network_prune(&f)? {
                outln!("Deleted network: {n}")?;
            }
            if volumes {
                for v in e.volume_prune_with(false, &f)? {
                    outln!("Deleted volume: {v}")?;
                }
            }
            // Removed containers' directories still waiting for the reaper go now.
            gcr_engine::trash::drain(e.root());
            let p = e.image_prune_with(all, &f)?;
            for l in &p.images {
                outln!("{l}")?;
            }
            outln!(
                "Removed {} blobs, {} snapshots, {} temporary files\nTotal reclaimed space: {}",
                p.blobs_removed,
                p.snapshots_removed,
                p.tmp_removed,
                bytes(p.bytes_reclaimed + c.bytes)
            )?;
            Ok(0)
        }
        Cmd::Doctor {
            format,
            snapshots,
            repair,
        } => {
            let opts = gcr_engine::DoctorOptions { snapshots, repair };
            // The ledger first: a store whose history fails says so before anything else.
            let ledger = e.audit_verify(None).map_err(Failure::from)?;
            let mut r = e.store()?.doctor_with(opts).map_err(store_err)?;
            for p in ledger.problems.iter().rev() {
                r.problems.insert(
                    0,
                    format!("audit ledger: {}; see 'gcr audit verify'", p.what),
                );
            }
            if repair {
                for id in e.sweep_orphan_container_dirs() {
                    r.repaired.push(format!(
                        "removed container directory {id}, which no container names (left by a killed gcr)"
                    ));
                }
            } else {
                for dir in e.orphan_container_dirs() {
                    r.problems.push(format!(
                        "container directory {} has no container (left by a killed gcr); 'gcr doctor --repair' removes it",
                        dir.display()
                    ));
                }
            }
            if repair {
                e.forget_image_cache();
                r.repaired
                    .push("dropped this store's image cache in the run dir".into());
                for g in gcr_engine::build::reap_build_cgroups() {
                    r.repaired.push(format!(
                        "removed build step cgroup {g} of a build that is gone"
                    ));
                }
            }
            if format == Format::Json {
                outln!(
                    "{}",
                    serde_json::json!({"clean": r.is_clean(), "problems": r.problems,
                        "repaired": r.repaired, "blobs_checked": r.blobs_checked,
                        "images_checked": r.images_checked,
                        "snapshots_checked": r.snapshots_checked})
                )?;
            } else {
                for p in &r.repaired {
                    outln!("REPAIRED: {p}")?;
                }
                for p in &r.problems {
                    outln!("PROBLEM: {p}")?;
                }
                outln!(
                    "checked {} blobs, {} images and {} snapshots: {}",
                    r.blobs_checked,
                    r.images_checked,
                    r.snapshots_checked,
                    if r.is_clean() {
                        "no problems".to_string()
                    } else {
                        format!("{} problem(s)", r.problems.len())
                    }
                )?;
            }
            Ok(if r.is_clean() { 0 } else { 1 })
        }
        other => Err(Failure::new(2, format!("unhandled command {other:?}"))),
    }
}

fn info(e: &Engine, format: Format) -> Result<i32, Failure> {
    let images = e.store()?.list_images().map_err(store_err)?.len();
    let cs = e.ps(true)?;
    let running = cs
        .iter()
        .filter(|(r, _)| r.state == gcr_engine::State::Running)
        .count();
    let paused = cs
        .iter()
        .filter(|(r, _)| r.state == gcr_engine::State::Paused)
        .count();
    let cgroup = gcr_runtime_info();
    let v = serde_json::json!({
        "Containers": cs.len(), "ContainersRunning": running, "ContainersPaused": paused,
        "ContainersStopped": cs.len() - running - paused, "Images": images,
        "Driver": "overlay", "CgroupVersion": cgroup, "DockerRootDir": e.root(),
        "RunDir": e.run_dir(), "ServerVersion": env!("CARGO_PKG_VERSION"),
        "KernelVersion": kernel(), "OperatingSystem": std::env::consts::OS,
        "Architecture": std::env::consts::ARCH,
    });
    if format == Format::Json {
        outln!("{v}")?;
        return Ok(0);
    }
    if let Some(m) = v.as_object() {
        for (k, val) in m {
            outln!(
                "{k}: {}",
                val.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| val.to_string())
            )?;
        }
    }
    Ok(0)
}

fn gcr_runtime_info() -> String {
    gcr_engine::cgroup_version().unwrap_or_else(|| "none".into())
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `gcr system df -v`: Docker's three tables (images with shared and unique sizes and
/// their containers, containers with their volumes and writable size, volumes with links).
fn df_verbose(e: &Engine) -> Result<i32, Failure> {
    let u = e.disk_usage()?;
    outln!("Images space usage:\n")?;
    let rows: Vec<Vec<String>> = u
        .images
        .iter()
        .map(|i| {
            let r = &i.row;
            vec![
                r.repository.clone(),
                r.tag.clone(),
                r.id[..12].to_string(),
                r.created_since.clone(),
                bytes(r.size),
                bytes(i.shared),
                bytes(r.size.saturating_sub(i.shared)),
                i.containers.to_string(),
            ]
        })
        .collect();
    table_out(
        &[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ],
        &rows,
    )?;
    outln!("\nContainers space usage:\n")?;
    let rows: Vec<Vec<String>> = u
        .containers
        .iter()
        .map(|c| {
            let (r, p) = (&c.record, &c.row);
            vec![
                p.id.clone(),
                p.image.clone(),
                p.command.clone(),
                r.config.opts.volumes.len().to_string(),
                bytes(c.size_rw),
                p.running_for.clone(),
                p.status.clone(),
                p.names.clone(),
            ]
        })
        .collect();
    table_out(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        &rows,
    )?;
    outln!("\nLocal Volumes space usage:\n")?;
    let rows: Vec<Vec<String>> = u
        .volumes
        .iter()
        .map(|v| {
            vec![
                v.info.name.clone(),
                v.info.containers.len().to_string(),
                bytes(v.size),
            ]
        })
        .collect();
    table_out(&["VOLUME NAME", "LINKS", "SIZE"], &rows)?;
    Ok(0)
}

fn df(e: &Engine, format: Format) -> Result<i32, Failure> {
    let r = e.store()?.df().map_err(store_err)?;
    let rows = [
        ("Images", &r.images),
        ("Containers", &r.containers),
        ("Local Volumes", &r.volumes),
    ];
    if format == Format::Json {
        for (k, x) in rows {
            outln!(
                "{}",
                serde_json::json!({"Type": k, "TotalCount": x.total, "Active": x.active,
                    "Size": x.size, "Reclaimable": x.reclaimable})
            )?;
        }
        return Ok(0);
    }
    let t: Vec<Vec<String>> = rows
        .iter()
        .map(|(k, x)| {
            vec![
                k.to_string(),
                x.total.to_string(),
                x.active.to_string(),
                bytes(x.size),
                bytes(x.reclaimable),
            ]
        })
        .collect();
    table_out(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &t)?;
    Ok(0)
}

/// `gcr events`: the events from `--since` (default: now), then, without `--until`, new
/// ones as they come until the reader goes (Docker's rule); `--filter` by type,
/// container, event, image or label; `--format` table, json or a Go template.
pub fn events(
    engine: &Engine,
    since: Option<&str>,
    until: Option<&str>,
    filters: &[String],
    format: &str,
) -> Result<i32, Failure> {
    let now = gcr_engine::container::record::now_ns();
    let at = |flag: &str, v: &str| crate::filters::time_flag(flag, v, now);
    let since_ns = since.map(|s| at("--since", s)).transpose()?.unwrap_or(now);
    let until_ns = until.map(|s| at("--until", s)).transpose()?;
    let filters = crate::filters::Filters::parse(filters, &docker_events::KEYS, "events")?;
    let filters = docker_events::EventFilter::new(filters.into_pairs())?;
    let output = crate::template::Output::parse(format)?;
    if let crate::template::Output::Template(t) = &output {
        if let Some(h) = t.header_line() {
            outln!("{h}")?;
        }
    }
    // A container's image and labels, looked up once per container (None: removed).
    let mut actors = docker_events::Actors::default();
    let mut print = |e: &gcr_engine::events::Event| -> Result<(), Failure> {
        let a = actors.of(engine, e);
        if !filters.matches(e, a.as_ref()) {
            return Ok(());
        }
        match &output {
            crate::template::Output::Json => {
                outln!("{}", serde_json::to_string(e).unwrap_or_default())
            }
            crate::template::Output::Template(t) => {
                outln!("{}", t.render(&docker_event(e, a.as_ref()))?)
            }
            crate::template::Output::Table => outln!(
                "{} {} {} {} ({} -> {}) name={}",
                gcr_engine::logs::rfc3339_nanos(e.time_ns),
                e.kind,
                e.cause.as_deref().unwrap_or(""),
                &e.object[..e.object.len().min(12)],
                e.from.as_deref().unwrap_or("-"),
                e.to.as_deref().unwrap_or("-"),
                e.name.as_deref().unwrap_or(""),
            ),
        }
    };
    let mut last_seq = i64::MIN;
    loop {
        for e in engine
            .events_after(since_ns, last_seq)
            .map_err(Failure::from)?
        {
            last_seq = e.seq;
            if until_ns.is_some_and(|u| e.time_ns >= u) {
                return Ok(0);
            }
            print(&e)?;
        }
        let now = gcr_engine::container::record::now_ns();
        if until_ns.is_some_and(|u| now >= u) {
            return Ok(0);
        }
        crate::out::flush()?;
        // Following: until the reader goes (or --until passes).
        for _ in 0..4 {
            if crate::out::reader_gone() {
                return Ok(0);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// An event in Docker's shape as `docker events --format` templates name it (the Go
/// struct's field names: `.Status`, `.ID`, `.From`, `.Time`, ...), with gcr's own
/// `FromState`/`ToState` beside them.
fn docker_event(
    e: &gcr_engine::events::Event,
    a: Option<&docker_events::Actor>,
) -> serde_json::Value {
    let mut m = docker_events::message(e, a);
    if let Some(o) = m.as_object_mut() {
        for (json, go) in [
            ("scope", "Scope"),
            ("time", "Time"),
            ("timeNano", "TimeNano"),
            ("status", "Status"),
            ("id", "ID"),
            ("from", "From"),
        ] {
            let v = o
                .remove(json)
                .unwrap_or_else(|| serde_json::Value::String(String::new()));
            o.insert(go.into(), v);
        }
        o.insert("FromState".into(), serde_json::json!(e.from));
        o.insert("ToState".into(), serde_json::json!(e.to));
    }
    m
}
