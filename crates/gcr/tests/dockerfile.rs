//! Dockerfile builds (issue 18) against the tools users know: every corpus case under
//! `tests/dockerfile/corpus/` is built by gcr, by `buildah bud` and, where Debian's
//! docker.io is installed, by a private `dockerd` (BuildKit); the flattened root
//! filesystems and the image configs must be equal except for the differences a case
//! lists. Also: the same digest from two directories and two stores, the step cache
//! surviving unrelated files and args, and hostile inputs failing with one clear line.
//!
//! `GCR_DOCKERFILE_ONLY_PEERS=1` builds with the peers only (buildah against docker, or
//! buildah alone) and skips the gcr-only tests: for working on the corpus and the harness
//! before gcr builds Dockerfiles. `GCR_DOCKERFILE_CASES=a,b` picks cases by name;
//! `GCR_DOCKERFILE_DOCKER=0` leaves docker out. See `tests/dockerfile/README.md`.

mod common;

#[path = "dockerfile/builders.rs"]
mod builders;
#[path = "dockerfile/case.rs"]
mod case;
#[path = "dockerfile/image.rs"]
mod image;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use builders::{BaseArchives, Buildah, Builder, Docker, Gcr};
use case::Case;
use common::need_root;

fn only_peers() -> bool {
    std::env::var("GCR_DOCKERFILE_ONLY_PEERS").as_deref() == Ok("1")
}

fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// The tag a case's image gets in every builder.
fn tag(case: &Case) -> String {
    format!("localhost/corpus-{}:1", case.name.to_ascii_lowercase())
}

/// Builds a case (its prebuilds first) with one builder and flattens the result.
fn build_case(
    b: &dyn Builder,
    case: &Case,
    ctx: &Path,
    out: &Path,
) -> Result<image::Image, String> {
    for (file, name) in &case.prebuild {
        b.build(case, ctx, &ctx.join(file), name)
            .map_err(|e| format!("prebuild {file}: {e}"))?;
    }
    let t = tag(case);
    b.build(case, ctx, &ctx.join(case.dockerfile_for(b.name())), &t)?;
    let archive = out.join(format!("{}-{}.tar", case.name, b.name()));
    b.export(&t, &archive)?;
    let mut img =
        image::load(&archive).map_err(|e| format!("reading {}: {e}", archive.display()))?;
    image::normalize(b.name(), &mut img);
    let _ = std::fs::remove_file(&archive);
    if img.files.is_empty() {
        return Err("the image has no files".into());
    }
    Ok(img)
}

/// Copies a case directory (symlinks as symlinks) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

#[test]
fn corpus_is_well_formed() {
    let cases = case::corpus();
    if std::env::var_os("GCR_DOCKERFILE_CASES").is_none() {
        assert!(
            cases.len() >= 45,
            "the corpus has {} cases, want 45",
            cases.len()
        );
    }
    let mut all = String::new();
    for c in &cases {
        let df = std::fs::read_to_string(c.dir.join("Dockerfile")).unwrap();
        assert!(
            df.lines()
                .any(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM ")),
            "{}: no FROM",
            c.name
        );
        all.push_str(&df);
        for f in [&c.buildah_dockerfile, &c.docker_dockerfile]
            .into_iter()
            .flatten()
            .chain(c.prebuild.iter().map(|(f, _)| f))
        {
            assert!(c.dir.join(f).is_file(), "{}: {f} is missing", c.name);
            all.push_str(&std::fs::read_to_string(c.dir.join(f)).unwrap());
        }
        for s in &c.secrets {
            let src = s.split(',').find_map(|kv| kv.strip_prefix("src="));
            let src = src.unwrap_or_else(|| panic!("{}: secret {s} has no src=", c.name));
            assert!(
                c.dir.join(src).is_file(),
                "{}: secret file {src} missing",
                c.name
            );
        }
    }
    if std::env::var_os("GCR_DOCKERFILE_CASES").is_some() {
        return;
    }
    // One or more cases per instruction and flag of the issue.
    for token in [
        " AS ",
        "FROM scratch",
        "FROM --platform=",
        "RUN [",
        "RUN <<",
        "--mount=type=cache",
        "--mount=type=secret",
        "--mount=type=bind",
        "--mount=type=tmpfs",
        "--network=none",
        "COPY --from=",
        "--chown=",
        "--chmod=",
        "--link",
        "*.txt",
        "ADD ",
        ".tar.gz",
        "ENV ",
        "ARG ",
        "WORKDIR ",
        "USER ",
        "EXPOSE ",
        "VOLUME ",
        "LABEL ",
        "ENTRYPOINT ",
        "CMD ",
        "HEALTHCHECK ",
        "HEALTHCHECK NONE",
        "STOPSIGNAL ",
        "SHELL ",
        "ONBUILD ",
        "# syntax=",
        "# escape=`",
        ":-",
        ":+",
        "TARGETPLATFORM",
        "TARGETARCH",
        "whoami",
    ] {
        assert!(all.contains(token), "no corpus case uses {token:?}");
    }
    let ignores = cases
        .iter()
        .filter(|c| c.dir.join(".dockerignore").is_file());
    assert!(ignores.count() >= 1, "no case has a .dockerignore");
}

/// Builds a layer tar in memory: (path, type, content or link target, mode).
fn layer(entries: &[(&str, tar::EntryType, &str, u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, t, data, mode) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(*t);
        h.set_mode(*mode);
        h.set_uid(0);
        h.set_gid(0);
        let body: &[u8] = if *t == tar::EntryType::Regular {
            data.as_bytes()
        } else {
            &[]
        };
        if matches!(t, tar::EntryType::Symlink | tar::EntryType::Link) {
            h.set_link_name(data).unwrap();
        }
        h.set_size(body.len() as u64);
        b.append_data(&mut h, path, body).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn flatten_applies_whiteouts_opaque_dirs_and_hardlinks() {
    use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as S};
    let mut files = BTreeMap::new();
    let mut links = image::Links::default();
    let l1 = layer(&[
        ("a/", D, "", 0o755),
        ("a/keep", F, "k", 0o644),
        ("a/gone", F, "g", 0o644),
        ("o/", D, "", 0o755),
        ("o/old", F, "o", 0o644),
        ("o/sub/", D, "", 0o700),
        ("o/sub/deep", F, "d", 0o644),
        ("f", F, "one", 0o600),
        ("h", H, "f", 0o600),
        ("d/", D, "", 0o755),
        ("d/x", F, "x", 0o644),
    ]);
    let l2 = layer(&[
        ("a/.wh.gone", F, "", 0o644),
        ("o/.wh..wh..opq", F, "", 0o644),
        ("o/new", F, "n", 0o644),
        ("d", S, "elsewhere", 0o777),
        ("a/", D, "", 0o750),
    ]);
    image::apply_layer(&mut files, &mut links, &l1).unwrap();
    image::apply_layer(&mut files, &mut links, &l2).unwrap();
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["/a", "/a/keep", "/d", "/f", "/h", "/o", "/o/new"],
        "whiteout, opaque dir and a file over a dir"
    );
    assert_eq!(
        files["/a"].mode, 0o750,
        "a directory over a directory changes its mode"
    );
    assert!(matches!(&files["/d"].kind, image::Kind::Symlink(t) if t == "elsewhere"));
    assert_eq!(
        files["/h"], files["/f"],
        "a hard link has its target's content"
    );
    let img = image::Image {
        files,
        hardlinks: BTreeMap::new(),
        config: serde_json::json!({"Labels": {"io.buildah.version": "1"}, "Cmd": []}),
    };
    let other = image::Image {
        files: img.files.clone(),
        hardlinks: BTreeMap::new(),
        config: serde_json::json!({"Labels": null}),
    };
    let d = image::diff("x", &img, "y", &other, &|_| false);
    assert_eq!(d.len(), 1, "only Cmd [] vs unset differs: {d:?}");
    assert!(d[0].starts_with("config.Cmd"), "{d:?}");
}

#[test]
fn corpus_matches_peers() {
    if !need_root("corpus_matches_peers") {
        return;
    }
    let work = tempdir("gcr-df-corpus-");
    let gcr = Gcr::new();
    let base: BaseArchives = gcr.save_base(work.path());
    let buildah = Buildah::new(&base).unwrap_or_else(|e| panic!("buildah setup: {e}"));
    let docker = Docker::available().map(|(d, cli)| {
        Docker::start(&d, cli, &base).unwrap_or_else(|e| panic!("dockerd setup: {e}"))
    });
    let mut builders: Vec<&dyn Builder> = Vec::new();
    if !only_peers() {
        builders.push(&gcr);
    }
    builders.push(&buildah);
    if let Some(d) = &docker {
        builders.push(d);
    }
    let mut failures: Vec<String> = Vec::new();
    let cases = case::corpus();
    assert!(!cases.is_empty(), "no corpus cases selected");
    for case in &cases {
        let started = Instant::now();
        let mut images = Vec::new();
        let mut report = Vec::new();
        for b in &builders {
            match build_case(*b, case, &case.dir, work.path()) {
                Ok(img) => images.push((b.name(), img)),
                Err(e) => report.push(format!("{} could not build it: {e}", b.name())),
            }
        }
        // The first builder is the reference: gcr, or buildah with only the peers.
        if let Some(((a, first), rest)) = images.split_first() {
            for (b, other) in rest {
                let known = |item: &str| case.known(a, b, item);
                for d in image::diff(a, first, b, other, &known) {
                    report.push(format!("{a} vs {b}: {d}"));
                }
            }
        }
        let took = started.elapsed().as_secs_f64();
        if report.is_empty() {
            eprintln!("ok   {} ({took:.1}s)", case.name);
        } else {
            eprintln!("FAIL {} ({took:.1}s)", case.name);
            for r in &report {
                eprintln!("    {}", r.replace('\n', "\n    "));
            }
            failures.push(case.name.clone());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases differ or fail (details above): {}",
        failures.len(),
        cases.len(),
        failures.join(", ")
    );
}

/// `gcr build --progress json` of a case (prebuilds first); returns its step events and
/// the manifest digest of its `done` event.
fn gcr_json(
    gcr: &Gcr,
    case: &Case,
    ctx: &Path,
    extra: &[&str],
) -> (Vec<serde_json::Value>, String) {
    let mut last = (Vec::new(), String::new());
    let main = (case.dockerfile_for("gcr").to_string(), tag(case));
    for (file, name) in case.prebuild.iter().chain(std::iter::once(&main)) {
        let mut args = vec!["--progress", "json"];
        args.extend_from_slice(extra);
        let out = gcr
            .build_cmd(case, ctx, &ctx.join(file), name, &args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: gcr build -f {file} failed: {}",
            case.name,
            common::stderr(&out)
        );
        let events: Vec<serde_json::Value> = common::stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect();
        let manifest = events
            .iter()
            .find(|e| e["event"] == "done")
            .and_then(|e| e["manifest"].as_str())
            .unwrap_or_else(|| panic!("{}: no done event with a manifest", case.name))
            .to_string();
        let steps = events
            .into_iter()
            .filter(|e| e["event"] == "step")
            .collect();
        last = (steps, manifest);
    }
    last
}

#[test]
fn corpus_is_reproducible() {
    if !need_root("corpus_is_reproducible") {
        return;
    }
    if only_peers() {
        eprintln!("skipped corpus_is_reproducible: GCR_DOCKERFILE_ONLY_PEERS=1");
        return;
    }
    let (one, two) = (Gcr::new(), Gcr::new());
    let dirs = (tempdir("gcr-df-repro-a-"), tempdir("gcr-df-repro-b-"));
    let mut failures = Vec::new();
    for case in case::corpus() {
        let a = dirs.0.path().join(&case.name);
        let b = dirs.1.path().join(format!("other-{}", case.name));
        copy_dir(&case.dir, &a);
        copy_dir(&case.dir, &b);
        let (_, da) = gcr_json(&one, &case, &a, &[]);
        let (_, db) = gcr_json(&two, &case, &b, &[]);
        if da != db {
            eprintln!(
                "FAIL {}: {da} in {}, {db} in {}",
                case.name,
                a.display(),
                b.display()
            );
            failures.push(case.name.clone());
        }
    }
    assert!(
        failures.is_empty(),
        "not reproducible: {}",
        failures.join(", ")
    );
}

/// The step events whose description contains `needle`.
fn steps_with<'a>(steps: &'a [serde_json::Value], needle: &str) -> Vec<&'a serde_json::Value> {
    steps
        .iter()
        .filter(|s| s["description"].as_str().unwrap_or("").contains(needle))
        .collect()
}

fn cached(s: &serde_json::Value) -> bool {
    s["cached"]
        .as_bool()
        .unwrap_or_else(|| panic!("step event without cached: {s}"))
}

#[test]
fn cache_survives_unrelated_files_and_args() {
    if !need_root("cache_survives_unrelated_files_and_args") {
        return;
    }
    if only_peers() {
        eprintln!("skipped cache_survives_unrelated_files_and_args: GCR_DOCKERFILE_ONLY_PEERS=1");
        return;
    }
    let gcr = Gcr::new();
    let dir = tempdir("gcr-df-cache-");
    let ctx = dir.path();
    std::fs::write(
        ctx.join("Dockerfile"),
        // A declared ARG reaches every later RUN's environment (Docker's rule), so it is
        // part of their keys; UNUSED is declared only in a stage the target does not need.
        "FROM localhost/base:1 AS other\nARG UNUSED=u\nRUN echo \"$UNUSED\" > /x\n\
         FROM localhost/base:1\nCOPY copied.txt /copied.txt\n\
         RUN cat /copied.txt > /seen\nARG USED=1\nRUN echo \"$USED\" > /used\n",
    )
    .unwrap();
    std::fs::write(ctx.join("copied.txt"), "copied\n").unwrap();
    std::fs::write(ctx.join("unrelated.txt"), "one\n").unwrap();
    let case = case::load(ctx).unwrap();
    let build = |args: &[&str]| gcr_json(&gcr, &case, ctx, args).0;
    let first = build(&["--build-arg", "UNUSED=a", "--build-arg", "USED=1"]);
    for needle in ["COPY copied.txt", "/seen", "/used"] {
        let s = steps_with(&first, needle);
        assert_eq!(
            s.len(),
            1,
            "one step event describing {needle:?} in {first:?}"
        );
        assert!(
            !cached(s[0]),
            "first build: {needle} step must run: {first:?}"
        );
    }

    std::fs::write(ctx.join("unrelated.txt"), "two, not copied by any step\n").unwrap();
    let again = build(&["--build-arg", "UNUSED=a", "--build-arg", "USED=1"]);
    assert!(
        !again.is_empty() && again.iter().all(cached),
        "an uncopied file changed: every step cached: {again:?}"
    );

    let arg = build(&["--build-arg", "UNUSED=b", "--build-arg", "USED=1"]);
    assert!(
        !arg.is_empty() && arg.iter().all(cached),
        "an unused arg changed: every step cached: {arg:?}"
    );

    let used = build(&["--build-arg", "UNUSED=b", "--build-arg", "USED=2"]);
    assert!(
        cached(steps_with(&used, "COPY copied.txt")[0]),
        "USED changed: COPY cached: {used:?}"
    );
    assert!(
        cached(steps_with(&used, "/seen")[0]),
        "USED changed: the RUN before ARG USED cached: {used:?}"
    );
    assert!(
        !cached(steps_with(&used, "/used")[0]),
        "USED changed: the RUN using it runs: {used:?}"
    );

    std::fs::write(ctx.join("copied.txt"), "changed\n").unwrap();
    let copied = build(&["--build-arg", "UNUSED=b", "--build-arg", "USED=2"]);
    assert!(
        !cached(steps_with(&copied, "COPY copied.txt")[0]),
        "a copied file changed: COPY runs: {copied:?}"
    );
    assert!(
        !cached(steps_with(&copied, "/seen")[0]),
        "and the RUN after it: {copied:?}"
    );
}

/// Runs `gcr build` on a hostile context with a time limit; asserts a non-zero exit (no
/// panic, no signal) and one clear error line mentioning one of `words`.
fn refused(gcr: &Gcr, what: &str, ctx: &Path, words: &[&str]) {
    let case = case::load(ctx).unwrap();
    let mut child = gcr
        .build_cmd(
            &case,
            ctx,
            &ctx.join("Dockerfile"),
            "localhost/hostile:1",
            &["--progress", "plain"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let end = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: gcr build still running after 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reader.join().unwrap();
    let code = status.code();
    assert!(
        code.is_some(),
        "{what}: gcr was killed by a signal ({status}): {stderr}"
    );
    assert_ne!(code, Some(0), "{what}: gcr build succeeded");
    assert_ne!(code, Some(101), "{what}: gcr panicked: {stderr}");
    assert!(
        !stderr.contains("panicked"),
        "{what}: gcr panicked: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: want one error line on stderr, got: {stderr:?}"
    );
    assert!(
        lines[0].len() < 1000,
        "{what}: the error line is {} bytes long",
        lines[0].len()
    );
    let low = lines[0].to_lowercase();
    assert!(
        words.iter().any(|w| low.contains(&w.to_lowercase())),
        "{what}: the error should mention one of {words:?}: {}",
        lines[0]
    );
}

#[test]
fn hostile_inputs_fail_cleanly() {
    if !need_root("hostile_inputs_fail_cleanly") {
        return;
    }
    if only_peers() {
        eprintln!("skipped hostile_inputs_fail_cleanly: GCR_DOCKERFILE_ONLY_PEERS=1");
        return;
    }
    let gcr = Gcr::new();
    let dir = tempdir("gcr-df-hostile-");
    let marker = "MARKER-OUTSIDE-THE-CONTEXT-4f1d";
    std::fs::write(dir.path().join("outside.txt"), marker).unwrap();
    let ctx = |name: &str, dockerfile: &str| {
        let c = dir.path().join(name);
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("Dockerfile"), dockerfile).unwrap();
        c
    };

    let c = ctx("parent", "FROM localhost/base:1\nCOPY ../outside.txt /x\n");
    refused(&gcr, "COPY ../outside.txt", &c, &["outside.txt", "../"]);

    let c = ctx("symlink", "FROM localhost/base:1\nCOPY escape.txt /x\n");
    std::os::unix::fs::symlink("../outside.txt", c.join("escape.txt")).unwrap();
    refused(
        &gcr,
        "COPY of a symlink out of the context",
        &c,
        &["escape.txt", "outside"],
    );

    // A symlink inside a copied directory is copied as a link, never followed out.
    let c = ctx("symlink-in-dir", "FROM localhost/base:1\nCOPY dir/ /d/\n");
    std::fs::create_dir_all(c.join("dir")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), c.join("dir/link")).unwrap();
    let case = case::load(&c).unwrap();
    match build_case(&gcr, &case, &c, dir.path()) {
        Ok(img) => {
            let node = img.files.get("/d/link").expect("/d/link in the image");
            assert!(
                matches!(node.kind, image::Kind::Symlink(_)),
                "/d/link is {node}"
            );
            let size = marker.len() as u64;
            assert!(
                !img.files
                    .values()
                    .any(|n| matches!(n.kind, image::Kind::File { size: s, .. } if s == size)),
                "a file the size of the outside marker is in the image"
            );
        }
        Err(e) => assert!(
            !e.contains("panicked") && !e.contains("(exit status: 101)"),
            "{e}"
        ),
    }

    let mut long = String::from("FROM localhost/base:1\n");
    for i in 2..10_000 {
        long.push_str(&format!("LABEL l{i}=v{i}\n"));
    }
    long.push_str("NOTANINSTRUCTION at line 10000\n");
    let c = ctx("long", &long);
    refused(
        &gcr,
        "10,000-line Dockerfile with a bad last line",
        &c,
        &["10000"],
    );

    let mut args = String::from("FROM localhost/base:1\nARG A0=0123456789abcdef\n");
    for i in 1..=64 {
        args.push_str(&format!("ARG A{i}=${{A{}}}${{A{}}}\n", i - 1, i - 1));
    }
    args.push_str("RUN echo \"$A64\" > /x\n");
    let c = ctx("args", &args);
    refused(
        &gcr,
        "exponential ARG expansion",
        &c,
        &["ARG", "A6", "expan", "too long", "too large"],
    );

    let line = "x".repeat(1023) + "\n";
    let body = line.repeat(128 * 1024);
    let c = ctx(
        "heredoc",
        &format!("FROM localhost/base:1\nRUN <<EOF\n{body}EOF\n"),
    );
    refused(
        &gcr,
        "128 MiB heredoc",
        &c,
        &["heredoc", "Dockerfile", "too large", "too long", "limit"],
    );
    let c = ctx(
        "heredoc-open",
        &format!("FROM localhost/base:1\nRUN <<EOF\n{body}"),
    );
    refused(
        &gcr,
        "unterminated 128 MiB heredoc",
        &c,
        &["heredoc", "EOF", "Dockerfile", "too large"],
    );
}
