//! Image and system commands: images, inspect, history, tag, rmi, import, load, save,
//! version, info, system df/prune, doctor.

use std::io::IsTerminal;

use gcr_engine::Engine;
use gcr_engine::{ArchiveFormat, Progress};

use crate::cli::{Cmd, Format, ImagesArgs, InspectArgs, SystemCmd};
use crate::out::{self, errln, outln};
use crate::render::{bytes, table_out};
use crate::Failure;

mod referrers;

/// A progress display: a byte bar on a terminal, plain lines otherwise.
struct Display {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
}

impl Display {
    fn new(quiet: bool) -> Display {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        Display { bar, quiet }
    }
}

impl Progress for Display {
    fn start(&self, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
        }
    }
    fn advance(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
    fn message(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            // A closed stdout shows again in the lines the command prints after.
            None if !self.quiet => {
                let _ = outln!("{msg}");
            }
            None => {}
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
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

fn images(e: &Engine, a: &ImagesArgs) -> Result<i32, Failure> {
    let rows = e.images()?;
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in rows {
            let id = if a.no_trunc {
                format!("sha256:{}", r.id)
            } else {
                r.id[..12].to_string()
            };
            if seen.insert(id.clone()) {
                outln!("{id}")?;
            }
        }
        return Ok(0);
    }
    if a.format == Format::Json {
        for r in rows {
            outln!("{}", r.json())?;
        }
        return Ok(0);
    }
    let t: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            let id = if a.no_trunc {
                format!("sha256:{}", r.id)
            } else {
                r.id[..12].to_string()
            };
            vec![r.repository, r.tag, id, r.created_since, bytes(r.size)]
        })
        .collect();
    table_out(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &t)?;
    Ok(0)
}

fn inspect(e: &Engine, a: &InspectArgs) -> Result<i32, Failure> {
    if a.referrers {
        return referrers::list(e, a);
    }
    if a.dna {
        return crate::containers::inspect_dna(e, &a.objects);
    }
    if a.transcript {
        let v = a
            .objects
            .iter()
            .map(|o| e.image_transcript(o))
            .collect::<Result<Vec<_>, _>>()?;
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())?;
        return Ok(0);
    }
    let mut docs = Vec::new();
    let mut code = 0;
    for o in &a.objects {
        let doc = match a.kind.as_deref() {
            Some("image") => e.inspect_image(o).map_err(Failure::from),
            Some("container") => e.inspect_container(o).map_err(Failure::from),
            None => e
                .inspect_container(o)
                .or_else(|_| e.inspect_image(o))
                .map_err(|_| {
                    Failure::new(
                        1,
                        format!("no such object: {o}; see 'gcr ps -a' and 'gcr images'"),
                    )
                }),
            Some(k) => {
                return Err(Failure::new(
                    2,
                    format!("unknown --type '{k}'; use image or container"),
                ))
            }
        };
        match doc {
            Ok(d) => docs.push(d),
            Err(f) => {
                errln!("Error: {}", f.message);
                code = 1;
            }
        }
    }
    outln!(
        "{}",
        serde_json::to_string_pretty(&docs).unwrap_or_default()
    )?;
    Ok(code)
}

fn history(e: &Engine, image: &str, format: Format, quiet: bool) -> Result<i32, Failure> {
    let id = e
        .store()?
        .resolve_image(image)
        .map_err(gcr_engine::EngineError::from)?
        .id;
    let h = e
        .store()?
        .history(image)
        .map_err(gcr_engine::EngineError::from)?;
    let now = gcr_engine::container::record::now_ns() / 1_000_000_000;
    let short = id.strip_prefix("sha256:").unwrap_or(&id)[..12].to_string();
    let mut rows = Vec::new();
    for (i, x) in h.iter().enumerate() {
        let img = if i == 0 {
            short.clone()
        } else {
            "<missing>".into()
        };
        if quiet {
            outln!("{img}")?;
            continue;
        }
        if format == Format::Json {
            outln!(
                "{}",
                serde_json::json!({"ID": img, "Created": x.created, "CreatedBy": x.created_by,
                    "Size": x.size, "Comment": x.comment, "EmptyLayer": x.empty_layer})
            )?;
            continue;
        }
        rows.push(vec![
            img,
            x.created
                .map(|c| gcr_engine::humanize_ago(now - c))
                .unwrap_or_else(|| "N/A".into()),
            x.created_by.chars().take(45).collect(),
            bytes(x.size),
            x.comment.clone(),
        ]);
    }
    if !quiet && format == Format::Table {
        table_out(
            &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            &rows,
        )?;
    }
    Ok(0)
}

fn open_input(path: &str) -> Result<Box<dyn std::io::Read>, Failure> {
    if path == "-" {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    std::fs::File::open(path)
        .map(|f| Box::new(std::io::BufReader::with_capacity(1 << 20, f)) as Box<dyn std::io::Read>)
        .map_err(|err| Failure::new(1, format!("cannot open {path}: {err}; check the path")))
}

fn store_err(err: gcr_engine::StoreError) -> Failure {
    Failure::from(gcr_engine::EngineError::from(err))
}

/// Dispatches the image and system commands.
pub fn dispatch(e: &Engine, cmd: Cmd) -> Result<i32, Failure> {
    match cmd {
        Cmd::Images(a) => images(e, &a),
        Cmd::Inspect(a) => inspect(e, &a),
        Cmd::History {
            image,
            format,
            quiet,
        } => history(e, &image, format, quiet),
        Cmd::Tag { source, target } => {
            e.store()?.tag(&source, &target).map_err(store_err)?;
            Ok(0)
        }
        Cmd::Rmi { images, force } => {
            let mut code = 0;
            for i in &images {
                match e.store()?.remove_image(i, force) {
                    Ok(lines) => {
                        for l in &lines {
                            outln!("{l}")?;
                        }
                    }
                    Err(err) => {
                        errln!("Error: {err}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        Cmd::Import { file, reference } => {
            let input = open_input(&file)?;
            let id = e
                .store()?
                .import_rootfs(input, reference.as_deref(), None)
                .map_err(store_err)?;
            outln!("{id}")?;
            Ok(0)
        }
        Cmd::Load { input, quiet } => {
            let d = Display::new(quiet);
            let report = match input {
                Some(p) => e.store()?.load_path(&p, &d),
                None => e.store()?.load(std::io::stdin().lock(), &d),
            }
            .map_err(store_err)?;
            d.finish();
            for (id, tags) in report.images {
                if tags.is_empty() {
                    outln!("Loaded image ID: {id}")?;
                }
                for t in tags {
                    let (r, tag) = gcr_engine::images::split_familiar(&t);
                    outln!("Loaded image: {r}:{tag}")?;
                }
            }
            if report.referrers > 0 {
                outln!("Loaded referrers: {}", report.referrers)?;
            }
            Ok(0)
        }
        Cmd::Save {
            images,
            output,
            format,
        } => {
            let fmt = match format.as_str() {
                "oci-archive" | "oci" => ArchiveFormat::OciArchive,
                "docker-archive" | "docker" => ArchiveFormat::DockerArchive,
                other => {
                    return Err(Failure::new(
                        2,
                        format!(
                            "unknown archive format '{other}'; use oci-archive or docker-archive"
                        ),
                    ))
                }
            };
            let names: Vec<&str> = images.iter().map(String::as_str).collect();
            let d = Display::new(false);
            match output {
                Some(p) => {
                    // Write next to the target and rename, so a failed save leaves nothing.
                    let tmp = p.with_extension("gcr-partial");
                    let f = std::fs::File::create(&tmp).map_err(|err| {
                        Failure::new(1, format!("cannot create {}: {err}", tmp.display()))
                    })?;
                    let res = e.store()?.save(&names, fmt, std::io::BufWriter::new(f), &d);
                    if let Err(err) = res {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(store_err(err));
                    }
                    std::fs::rename(&tmp, &p).map_err(|err| {
                        Failure::new(1, format!("cannot write {}: {err}", p.display()))
                    })?;
                }
                None => {
                    if std::io::stdout().is_terminal() {
                        return Err(Failure::new(
                            1,
                            "refusing to write an archive to a terminal; use -o FILE or redirect"
                                .into(),
                        ));
                    }
                    e.store()?
                        .save(&names, fmt, std::io::stdout().lock(), &d)
                        .map_err(|err| {
                            // The store reports the failed write as its own error.
                            if out::reader_gone() {
                                Failure::closed_stdout()
                            } else {
                                store_err(err)
                            }
                        })?;
                }
            }
            d.finish();
            Ok(0)
        }
        Cmd::AttachArtifact {
            subject,
            artifact_type,
            file,
            annotations,
        } => referrers::attach(e, &subject, &artifact_type, &file, &annotations),
        Cmd::Info { format } => info(e, format),
        Cmd::System {
            cmd: SystemCmd::Df { format },
        } => df(e, format),
        Cmd::System {
            cmd: SystemCmd::Prune { force: _, all },
        } => {
            if all {
                for (r, _) in e.ps(true)? {
                    if r.state == gcr_engine::State::Exited || r.state == gcr_engine::State::Created
                    {
                        let _ = e.remove(&r.id, false);
                        outln!("Deleted container: {}", r.id)?;
                    }
                }
            }
            for v in e.volume_prune(false)? {
                outln!("Deleted volume: {v}")?;
            }
            // Removed containers' directories still waiting for the reaper go now.
            gcr_engine::trash::drain(e.root());
            let p = e.store()?.prune().map_err(store_err)?;
            for l in &p.images {
                outln!("{l}")?;
            }
            outln!(
                "Removed {} blobs, {} snapshots, {} temporary files\nTotal reclaimed space: {}",
                p.blobs_removed,
                p.snapshots_removed,
                p.tmp_removed,
                bytes(p.bytes_reclaimed)
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
