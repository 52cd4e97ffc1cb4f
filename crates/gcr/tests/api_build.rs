//! `POST /build` and `POST /build/prune` of `gcr system service` (issue 20): the stock docker
//! CLI's classic builder (`DOCKER_BUILDKIT=0 docker build`) and docker-py build through the
//! service (RUN, COPY, ENV, CMD, a build arg; the image runs and shows what the build put
//! there), a failing RUN ends the CLI with exit code 1 and the error text, a hostile context
//! (a symlink pointing out of it, an entry through that symlink, a `../` entry) writes
//! nothing outside, and `docker builder prune` answers. The service is killed and reaped by
//! a guard, and the store removed, even when a test fails.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::servers::need_tools;
use common::service::{docker_py, Service};
use common::{need_root, stderr, stdout, Env, IMAGE};

impl Service {
    /// A raw API call with curl: `POST path` with `body` (a file) as a tar; the answer.
    fn post(&self, path: &str, body: Option<&Path>) -> String {
        let mut c = Command::new("curl");
        c.args(["-sS", "--unix-socket"]).arg(self.socket()).args([
            "-X",
            "POST",
            "-H",
            "Content-Type: application/x-tar",
        ]);
        if let Some(b) = body {
            c.arg("--data-binary").arg(format!("@{}", b.display()));
        }
        let o = c
            .arg(format!("http://localhost/v1.41{path}"))
            .output()
            .expect("curl");
        assert!(o.status.success(), "curl {path}: {}", stderr(&o));
        stdout(&o)
    }
}

/// A `.gcr` spec (see crates/gcr/tests/build.rs) copying `one.txt` and running a command.
const SPEC: &str = r#"format: gcr-v1.0
name: test/spec
version: "1.0"
base: test/busybox:1
build:
  copy:
    - src: ./one.txt
      dest: /etc/app/
  commands:
    - echo spec-run > /spec.txt
runtime:
  cmd: [cat, /etc/app/one.txt, /spec.txt]
"#;

fn ready(test: &str) -> bool {
    need_root(test) && need_tools(test, &["docker", "curl"])
}

/// Build-context directories the service left in the store's `tmp/`.
fn leftover_contexts(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("build-context-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn docker_build_through_the_service() {
    if !ready("docker_build_through_the_service") {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("hello.txt"), "hello from the context\n").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {IMAGE}\n\
             ARG GREETING=nobody\n\
             ENV WHO=gcr-env\n\
             COPY hello.txt /hello.txt\n\
             RUN echo \"run says $GREETING\" > /run.txt && echo printed-by-run\n\
             CMD [\"sh\", \"-c\", \"cat /hello.txt /run.txt; echo $WHO\"]\n"
        ),
    )
    .unwrap();
    let dir = ctx.path().to_str().unwrap();
    let out = svc.ok(&["build", "-t", "x:1", "--build-arg", "GREETING=hi", dir]);
    for want in [
        "Step 1/6 : FROM test/busybox:1\n",
        "Step 2/6 : ARG GREETING=nobody\n",
        "Step 3/6 : ENV WHO=gcr-env\n",
        "Step 4/6 : COPY hello.txt /hello.txt\n",
        "Step 6/6 : CMD [",
        "printed-by-run",
        "Successfully built ",
        "Successfully tagged x:1",
    ] {
        assert!(
            out.contains(want),
            "no {want:?} in the build output:\n{out}"
        );
    }
    // Under the FROM, the base image's id, as dockerd shows it.
    let base = svc.ok(&["image", "inspect", "--format", "{{.Id}}", IMAGE]);
    let base = &base.trim().trim_start_matches("sha256:")[..12];
    assert!(
        out.contains(&format!("Step 1/6 : FROM {IMAGE}\n ---> {base}\n")),
        "{out}"
    );
    assert_eq!(
        svc.ok(&["run", "--rm", "x:1"]),
        "hello from the context\nrun says hi\ngcr-env\n"
    );
    assert!(env.ok(&["images"]).contains("x"), "gcr images lists x:1");
    assert!(leftover_contexts(env.root.path()).is_empty());

    // Again: the steps come from the cache; -q prints only the id.
    let out = svc.ok(&["build", "-t", "x:1", "--build-arg", "GREETING=hi", dir]);
    assert!(out.contains("Using cache"), "{out}");
    let id = svc.ok(&["build", "-q", "--build-arg", "GREETING=hi", dir]);
    assert!(id.trim().starts_with("sha256:"), "docker build -q: {id:?}");
    let inspected = svc.ok(&["image", "inspect", "--format", "{{.Id}}", "x:1"]);
    assert_eq!(id.trim(), inspected.trim());
    let out = svc.ok(&[
        "build",
        "--no-cache",
        "-t",
        "x:1",
        "--build-arg",
        "GREETING=hi",
        dir,
    ]);
    assert!(!out.contains("Using cache"), "--no-cache: {out}");

    // --target: the named stage is the image; the stage after it is not built.
    let staged = tempfile::tempdir().unwrap();
    std::fs::write(
        staged.path().join("Dockerfile"),
        format!(
            "FROM {IMAGE} AS first\nRUN echo first-stage > /s\nCMD [\"cat\", \"/s\"]\n\
             FROM first\nRUN echo second-stage > /s\n"
        ),
    )
    .unwrap();
    let out = svc.ok(&[
        "build",
        "--target",
        "first",
        "-t",
        "staged:1",
        staged.path().to_str().unwrap(),
    ]);
    assert!(!out.contains("second-stage"), "{out}");
    assert_eq!(svc.ok(&["run", "--rm", "staged:1"]), "first-stage\n");

    // A failing RUN: the CLI prints the error and exits 1.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(
        bad.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo about-to-fail; exit 7\n"),
    )
    .unwrap();
    let o = svc.docker(&["build", "-t", "bad:1", bad.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("about-to-fail"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("exit 7") || stderr(&o).contains("code: 7"),
        "the error names the failed command: {}",
        stderr(&o)
    );
    assert!(!env.ok(&["images"]).contains("bad"));
    assert!(leftover_contexts(env.root.path()).is_empty());

    // docker builder prune, and the API call behind it.
    let out = svc.ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Total"), "docker builder prune: {out}");
    // A fresh cache is kept by until=24h, and a cache smaller than keep-storage stays.
    for extra in [["--filter", "until=24h"], ["--keep-storage", "1g"]] {
        let mut args = vec!["builder", "prune", "-a", "-f"];
        args.extend(extra);
        let out = svc.ok(&args);
        assert!(
            out.contains("Total reclaimed space: 0B") && !out.contains("Deleted"),
            "{extra:?}: {out}"
        );
    }
    let said = svc.post(
        "/build/prune?filters=%7B%22type%22%3A%5B%22regular%22%5D%7D",
        None,
    );
    assert!(said.contains("invalid filter 'type'"), "{said}");
    let v: serde_json::Value =
        serde_json::from_str(&svc.post("/build/prune?all=1", None)).expect("prune answers JSON");
    let deleted = v["CachesDeleted"].as_array().expect("CachesDeleted");
    assert!(!deleted.is_empty(), "all=1 removes the step cache: {v}");
    assert!(v["SpaceReclaimed"].is_u64(), "{v}");
    // The image itself is untouched, and a rebuild runs its steps again.
    assert_eq!(
        svc.ok(&["run", "--rm", "x:1"]),
        "hello from the context\nrun says hi\ngcr-env\n"
    );
    let out = svc.ok(&["build", "-t", "x:2", "--build-arg", "GREETING=hi", dir]);
    assert!(!out.contains("Using cache"), "{out}");
}

/// A tar header for `name` written as raw bytes (the tar crate refuses `..`).
fn raw_entry(tar: &mut Vec<u8>, name: &str, kind: u8, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    {
        let b = h.as_mut_bytes();
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[157..157 + link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_mode(if kind == b'5' { 0o755 } else { 0o644 });
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    tar.extend_from_slice(h.as_bytes());
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

fn file_named(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if e.file_name() == name {
            return Some(p);
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if let Some(f) = file_named(&p, name) {
                return Some(f);
            }
        }
    }
    None
}

#[test]
fn hostile_build_contexts_stay_inside() {
    if !ready("hostile_build_contexts_stay_inside") {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "host-secret\n").unwrap();
    let target = outside.path().to_str().unwrap();
    let dockerfile = format!("FROM {IMAGE}\nCOPY . /ctx\n");
    // Names no other process uses, to look for anywhere.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tag = format!("{}-{nanos}", std::process::id());
    let escaped = format!("escaped-{tag}");
    let escaped2 = format!("escaped2-{tag}");

    // A symlink out of the context, an entry through it, and a `../` entry: refused.
    let mut tar = Vec::new();
    raw_entry(&mut tar, "Dockerfile", b'0', "", dockerfile.as_bytes());
    raw_entry(&mut tar, "out", b'2', target, b"");
    raw_entry(
        &mut tar,
        "out/pwned",
        b'0',
        "",
        b"written through the link\n",
    );
    raw_entry(
        &mut tar,
        "../escaped",
        b'0',
        "",
        b"written above the context\n",
    );
    tar.extend_from_slice(&[0u8; 1024]);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &tar).unwrap();
    let answer = svc.post("/build?t=evil:1", Some(file.path()));
    assert!(
        answer.contains("errorDetail") && answer.contains("refused"),
        "the hostile context is refused: {answer}"
    );
    assert!(
        !outside.path().join("pwned").exists(),
        "wrote through the link"
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
    assert_eq!(file_named(env.root.path(), "pwned"), None);
    assert_eq!(file_named(env.root.path(), &escaped), None);
    assert!(!env.root.path().parent().unwrap().join(&escaped).exists());
    assert!(!env.ok(&["images"]).contains("evil"));

    // The `../` entry alone (gzip'd): refused as well.
    let mut tar = Vec::new();
    raw_entry(&mut tar, "Dockerfile", b'0', "", dockerfile.as_bytes());
    raw_entry(&mut tar, &format!("a/../../{escaped2}"), b'0', "", b"x\n");
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    std::fs::write(file.path(), gz.finish().unwrap()).unwrap();
    let answer = svc.post("/build?t=evil:2", Some(file.path()));
    assert!(answer.contains("errorDetail"), "{answer}");
    assert_eq!(file_named(env.root.path(), &escaped2), None);

    // A symlink pointing out, copied into the image: it stays a link, the host file's
    // content never enters the image.
    let mut tar = Vec::new();
    raw_entry(&mut tar, "Dockerfile", b'0', "", dockerfile.as_bytes());
    let secret = format!("{target}/secret");
    raw_entry(&mut tar, "link", b'2', &secret, b"");
    raw_entry(&mut tar, "plain.txt", b'0', "", b"plain\n");
    tar.extend_from_slice(&[0u8; 1024]);
    std::fs::write(file.path(), &tar).unwrap();
    let answer = svc.post("/build?t=links%3A1", Some(file.path()));
    assert!(answer.contains("Successfully tagged links:1"), "{answer}");
    let o = svc.docker(&[
        "run",
        "--rm",
        "links:1",
        "sh",
        "-c",
        "readlink /ctx/link; cat /ctx/plain.txt; cat /ctx/link",
    ]);
    assert_eq!(stdout(&o), format!("{secret}\nplain\n"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("host-secret"));
    assert!(leftover_contexts(env.root.path()).is_empty());

    // A client that leaves in the middle of its upload: nothing is built, and the context
    // directory goes.
    let mut tar = Vec::new();
    raw_entry(&mut tar, "Dockerfile", b'0', "", dockerfile.as_bytes());
    raw_entry(&mut tar, "big", b'0', "", &vec![b'x'; 64 << 10]);
    {
        use std::io::Read;
        let mut s = std::os::unix::net::UnixStream::connect(svc.socket()).unwrap();
        write!(
            s,
            "POST /v1.41/build?t=cut%3A1 HTTP/1.1\r\nHost: gcr\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
            tar.len() + 4096
        )
        .unwrap();
        s.write_all(&tar[..tar.len() / 2]).unwrap();
        // The headers of the answer come at once; then the client goes.
        let mut first = [0u8; 12];
        s.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
    }
    // Time for the service to see the broken upload (its directory exists by then).
    std::thread::sleep(Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !leftover_contexts(env.root.path()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(leftover_contexts(env.root.path()).is_empty());
    assert!(!env.ok(&["images"]).contains("cut"));
}

#[test]
fn docker_py_builds_through_the_service() {
    if !ready("docker_py_builds_through_the_service") {
        return;
    }
    let Some(python) = docker_py("docker_py_builds_through_the_service") else {
        return;
    };
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nARG N=0\nRUN echo \"py-build $N\" > /n.txt\nCMD [\"cat\", \"/n.txt\"]\n"
        ),
    )
    .unwrap();
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1])
image, logs = c.images.build(path=sys.argv[2], tag="py:1", buildargs={"N": "42"}, labels={"made": "py"})
logs = list(logs)
assert "py:1" in image.tags, image.tags
assert image.labels.get("made") == "py", image.labels
text = "".join(l.get("stream", "") for l in logs)
assert "Successfully built" in text, logs
assert any("aux" in l for l in logs), logs
out = c.containers.run("py:1", remove=True)
assert out == b"py-build 42\n", out
try:
    c.images.build(path=sys.argv[3], tag="pybad:1")
    raise SystemExit("a failing build did not raise")
except docker.errors.BuildError as e:
    assert e.msg, e
# A context with a .gcr spec and no Dockerfile: the spec is built, as gcr build does.
image, logs = c.images.build(path=sys.argv[4], tag="pyspec:1")
assert "pyspec:1" in image.tags, image.tags
out = c.containers.run("pyspec:1", remove=True)
assert out == b"one\nspec-run\n", out
print("docker-py build ok")
"#;
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(
        bad.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN exit 4\n"),
    )
    .unwrap();
    let spec = tempfile::tempdir().unwrap();
    std::fs::write(spec.path().join("one.txt"), "one\n").unwrap();
    std::fs::write(spec.path().join("app.gcr"), SPEC).unwrap();
    let out = Command::new(&python)
        .args([
            "-c",
            script,
            &svc.host.clone(),
            ctx.path().to_str().unwrap(),
            bad.path().to_str().unwrap(),
            spec.path().to_str().unwrap(),
        ])
        .output()
        .expect("python");
    assert!(
        out.status.success() && stdout(&out).contains("docker-py build ok"),
        "docker-py script failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(leftover_contexts(env.root.path()).is_empty());

    // The docker CLI names the spec with -f.
    let spec_file = spec.path().join("app.gcr");
    let out = svc.ok(&[
        "build",
        "-f",
        spec_file.to_str().unwrap(),
        "-t",
        "clispec:1",
        spec.path().to_str().unwrap(),
    ]);
    assert!(out.contains("Successfully tagged clispec:1"), "{out}");
    assert_eq!(svc.ok(&["run", "--rm", "clispec:1"]), "one\nspec-run\n");
}

#[test]
fn missing_base_images_are_pulled() {
    if !ready("missing_base_images_are_pulled") {
        return;
    }
    let env = Env::new();
    let registry = common::servers::Server::gcr(&[], &[]);
    let base = format!("{}/api/base:1", registry.host());
    env.ok(&["push", "-q", IMAGE, &base]);
    let svc = Service::on_socket(&env);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo on-a-pulled-base > /p\nCMD [\"cat\", \"/p\"]\n"),
    )
    .unwrap();
    let dir = ctx.path().to_str().unwrap();
    let tags = svc.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        !tags.lines().any(|t| t == base),
        "the base is not here yet: {tags}"
    );
    let out = svc.ok(&["build", "-t", "onpulled:1", dir]);
    assert!(out.contains("Digest: sha256:"), "the base is pulled: {out}");
    assert!(out.contains("Successfully tagged onpulled:1"), "{out}");
    assert_eq!(svc.ok(&["run", "--rm", "onpulled:1"]), "on-a-pulled-base\n");
    let tags = svc.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(tags.lines().any(|t| t == base), "images: {tags}");
    // Present now: no pull without --pull, a pull with it.
    let out = svc.ok(&["build", "-t", "onpulled:1", dir]);
    assert!(!out.contains("Digest: "), "{out}");
    let out = svc.ok(&["build", "--pull", "-t", "onpulled:1", dir]);
    assert!(out.contains("Image is up to date for"), "{out}");
}

#[test]
fn private_bases_are_pulled_with_the_clients_credentials() {
    if !ready("private_bases_are_pulled_with_the_clients_credentials") {
        return;
    }
    let registry = common::servers::Server::gcr_with_alice();
    let host = registry.host();
    let env = Env::new();
    let svc = Service::on_socket(&env);
    // The client logs in (the service saves nothing) and pushes the base.
    let o = svc.login(&host, "alice", "secret");
    assert!(o.status.success(), "{}", stderr(&o));
    let base = format!("{host}/alice/base:1");
    svc.ok(&["tag", IMAGE, &base]);
    svc.ok(&["push", &base]);
    svc.ok(&["rmi", &base]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo private > /p\nCMD [\"cat\", \"/p\"]\n"),
    )
    .unwrap();
    let dir = ctx.path().to_str().unwrap();
    // The classic builder sends the client's credentials (X-Registry-Config): the base
    // comes from the registry that wants them.
    let out = svc.ok(&["build", "-t", "onprivate:1", dir]);
    assert!(out.contains("Digest: sha256:"), "the base is pulled: {out}");
    assert_eq!(svc.ok(&["run", "--rm", "onprivate:1"]), "private\n");
    // Logged out, the client sends none and the service has none: refused, as a pull is.
    svc.ok(&["rmi", "onprivate:1", &base]);
    svc.ok(&["logout", &host]);
    svc.fails(&["build", "-t", "onprivate:2", dir], "requires credentials");
}

/// Pids of processes whose command line is exactly `argv` (joined by spaces).
fn pids_running(argv: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .map(|c| {
                            c.split(|&b| b == 0)
                                .filter(|a| !a.is_empty())
                                .map(|a| String::from_utf8_lossy(a).into_owned())
                                .collect::<Vec<_>>()
                                .join(" ")
                                == argv
                        })
                        .unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_build_whose_client_leaves_is_cancelled() {
    if !ready("a_build_whose_client_leaves_is_cancelled") {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN sleep 4242\nRUN touch /never\n"),
    )
    .unwrap();
    let mut client = svc
        .docker_cmd(&["build", "-t", "cancelled:1", ctx.path().to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker build");
    let started = common::eventually(20, || !pids_running("sleep 4242").is_empty());
    let _ = client.kill();
    let _ = client.wait();
    assert!(started, "the RUN step never started");
    // The client is gone: the step is killed and the build goes no further.
    assert!(
        common::eventually(10, || pids_running("sleep 4242").is_empty()),
        "the RUN step of a build whose client left still runs"
    );
    assert!(
        common::eventually(10, || leftover_contexts(env.root.path()).is_empty()),
        "the cancelled build's context stayed: {:?}",
        leftover_contexts(env.root.path())
    );
    let images = svc.ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("cancelled"), "{images}");
    // The service goes on: another build runs to its end.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo after > /after\n"),
    )
    .unwrap();
    let out = svc.ok(&["build", "-t", "after:1", ctx.path().to_str().unwrap()]);
    assert!(out.contains("Successfully tagged after:1"), "{out}");
}

#[test]
fn run_steps_get_hosts_shm_and_limits() {
    if !ready("run_steps_get_hosts_shm_and_limits") {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {IMAGE}\n\
             RUN grep '10.1.2.3' /etc/hosts | grep -q db && \
                 df -k /dev/shm | tail -1 | awk '{{print $2}}' > /shm.txt && \
                 (cat /sys/fs/cgroup/memory.max 2>/dev/null || \
                  cat /sys/fs/cgroup/memory/memory.limit_in_bytes) > /mem.txt && \
                 ulimit -n > /nofile.txt\n"
        ),
    )
    .unwrap();
    let dir = ctx.path().to_str().unwrap();
    // Through the API (docker build's extrahosts, shmsize, memory).
    svc.ok(&[
        "build",
        "-t",
        "limited:1",
        "--add-host",
        "db:10.1.2.3",
        "--shm-size",
        "96m",
        "-m",
        "64m",
        "--ulimit",
        "nofile=1234:2345",
        dir,
    ]);
    let got = svc.ok(&[
        "run",
        "--rm",
        "limited:1",
        "cat",
        "/shm.txt",
        "/mem.txt",
        "/nofile.txt",
    ]);
    assert_eq!(got, "98304\n67108864\n1234\n");
    // Through the CLI, without a network: the hosts file is made for the step.
    env.ok(&[
        "build",
        "--network",
        "none",
        "--no-cache",
        "-t",
        "limited:2",
        "--add-host",
        "db:10.1.2.3",
        "--shm-size",
        "80m",
        "-m",
        "32m",
        "--ulimit",
        "nofile=4321",
        dir,
    ]);
    let got = env.ok(&[
        "run",
        "--rm",
        "limited:2",
        "cat",
        "/shm.txt",
        "/mem.txt",
        "/nofile.txt",
    ]);
    assert_eq!(got, "81920\n33554432\n4321\n");
    // The hosts lines are the step's, not the image's.
    let out = env.gcr(&[
        "run",
        "--rm",
        "--network",
        "none",
        "limited:2",
        "grep",
        "-c",
        "10.1.2.3",
        "/etc/hosts",
    ]);
    // (Grep for the address: the container's own hostname, hex, may contain "db".)
    assert_eq!(stdout(&out).trim(), "0", "{}", stderr(&out));
    // Bad values are refused before anything runs (the docker CLI checks --add-host
    // itself: the API is asked directly).
    let said = svc.post("/build?extrahosts=nohost&shmsize=0", None);
    assert!(said.contains("invalid --add-host 'nohost'"), "{said}");
    let said = svc.post("/build?ulimits=%5B%7B%22Name%22%3A%22bogus%22%7D%5D", None);
    assert!(said.contains("invalid --ulimit 'bogus=0:0'"), "{said}");
    let said = svc.post("/build?ulimits=nofile", None);
    assert!(said.contains(r#"invalid ulimits \"nofile\""#), "{said}");
    let o = env.gcr(&["build", "--ulimit", "nofile=9:1", dir]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("invalid --ulimit"), "{}", stderr(&o));
    let o = env.gcr(&["build", "-m", "1k", dir]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("minimum allowed memory"),
        "{}",
        stderr(&o)
    );
}
