//! Image commands: images, inspect, history, tag, rmi, import, load, save (the system
//! commands are in [`crate::system`]).

use std::io::IsTerminal;

use gcr_engine::Engine;
use gcr_engine::Progress;

use crate::cli::{Cmd, Format, ImagesArgs, InspectArgs};
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

fn images(e: &Engine, a: &ImagesArgs) -> Result<i32, Failure> {
    let filters = crate::filters::Filters::parse(
        &a.filter,
        &["reference", "dangling", "label", "before", "since"],
        "images",
    )?;
    let mut rows = e.images()?;
    // `before`/`since` name images that REPO[:TAG] may filter out.
    let all = (!filters.is_empty()).then(|| rows.clone());
    if let Some(want) = &a.reference {
        // `REPOSITORY[:TAG]`, in any spelling of the name (`busybox`, `docker.io/library/busybox`).
        let (repo, tag) = match want.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t)),
            _ => (want.as_str(), None),
        };
        let repo = gcr_engine::Reference::parse(repo)
            .map(|r| r.familiar_name())
            .unwrap_or_else(|_| repo.to_string());
        rows.retain(|r| r.repository == repo && tag.is_none_or(|t| r.tag == t));
    }
    if let Some(all) = all {
        let created_of = |name: &str| {
            all.iter()
                .find(|r| {
                    format!("{}:{}", r.repository, r.tag) == name
                        || r.repository == name
                        || r.id.starts_with(name.trim_start_matches("sha256:"))
                })
                .and_then(|r| r.created)
        };
        rows.retain(|r| {
            let labels = || e.image_labels(&format!("sha256:{}", r.id));
            filters.image(r, &labels, &created_of)
        });
    }
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
    match crate::template::Output::parse(&a.format)? {
        crate::template::Output::Json => {
            for r in rows {
                outln!("{}", r.json())?;
            }
            return Ok(0);
        }
        crate::template::Output::Template(t) => {
            let items: Vec<serde_json::Value> = rows.iter().map(|r| r.json()).collect();
            t.print(&items)?;
            return Ok(0);
        }
        crate::template::Output::Table => {}
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
    if let Some(f) = &a.format {
        match crate::template::Output::parse(f)? {
            crate::template::Output::Template(t) => {
                for d in &docs {
                    outln!("{}", t.render(d)?)?;
                }
            }
            // `-f json`: each object on one line.
            _ => {
                for d in &docs {
                    outln!("{}", serde_json::to_string(d).unwrap_or_default())?;
                }
            }
        }
        return Ok(code);
    }
    outln!(
        "{}",
        serde_json::to_string_pretty(&docs).unwrap_or_default()
    )?;
    Ok(code)
}

fn history(e: &Engine, image: &str, format: Format, quiet: bool) -> Result<i32, Failure> {
    let hist = e.history(image)?;
    let (id, h) = (hist.id, hist.entries);
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
        Cmd::Import {
            file,
            reference,
            changes,
            message,
        } => {
            let input = open_input(&file)?;
            let id = e.import(input, reference.as_deref(), &changes, message.as_deref())?;
            outln!("{id}")?;
            Ok(0)
        }
        Cmd::Load { input, quiet } => {
            let d = Display::new(quiet);
            let report = match input {
                Some(p) => e.store()?.load_path(&p, &d).map_err(store_err)?,
                None => e.load_images(std::io::stdin().lock(), &d)?,
            };
            d.finish();
            // The store reported each image through the display already; -q keeps only
            // these lines (as docker load -q does).
            if quiet {
                for l in gcr_engine::image_io::loaded_lines(&report) {
                    outln!("{l}")?;
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
            let fmt = gcr_engine::image_io::archive_format(&format)?;
            let names: Vec<&str> = images.iter().map(String::as_str).collect();
            let d = Display::new(false);
            match output {
                Some(p) => {
                    // Write next to the target and rename, so a failed save leaves nothing.
                    let tmp = p.with_extension("gcr-partial");
                    let f = std::fs::File::create(&tmp).map_err(|err| {
                        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
                        match dir {
                            Some(d) if !d.is_dir() => Failure::new(
                                1,
                                format!(
                                    "cannot write {}: the directory {} does not exist; create it or choose another -o path",
                                    p.display(),
                                    d.display()
                                ),
                            ),
                            _ => Failure::new(1, format!("cannot write {}: {err}", p.display())),
                        }
                    })?;
                    let res = e.save_images(&names, fmt, std::io::BufWriter::new(f), &d);
                    if let Err(err) = res {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(err.into());
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
                    e.save_images(&names, fmt, std::io::stdout().lock(), &d)
                        .map_err(|err| {
                            // The store reports the failed write as its own error.
                            if out::reader_gone() {
                                Failure::closed_stdout()
                            } else {
                                Failure::from(err)
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
        other => Err(Failure::new(2, format!("unhandled command {other:?}"))),
    }
}
