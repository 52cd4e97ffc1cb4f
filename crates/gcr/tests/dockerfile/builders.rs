//! The three builders of a corpus case, each with private storage that is removed (with
//! its mounts and daemons) when it is dropped: gcr (a private store), buildah (`bud`,
//! private `--root/--runroot`, vfs driver) and, when installed, docker (a private
//! `dockerd` 20.10 with BuildKit, vfs driver, no bridge, no iptables).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::case::Case;
use crate::common::{self, stderr, stdout};

/// The base image every case starts from, under the same name for every builder.
pub const BASE: &str = "localhost/base:1";

/// The base image as archives, saved by gcr from the busybox rootfs it imported.
pub struct BaseArchives {
    pub oci: PathBuf,
    pub docker: PathBuf,
}

pub trait Builder {
    fn name(&self) -> &'static str;
    /// Builds `dockerfile` over the context `ctx` with the case's args, target, secrets and
    /// network, tagged `tag`; the error is the tool's output.
    fn build(&self, case: &Case, ctx: &Path, dockerfile: &Path, tag: &str) -> Result<(), String>;
    /// Writes the image `tag` to `out` (an oci-archive or docker-archive).
    fn export(&self, tag: &str, out: &Path) -> Result<(), String>;
}

fn run(mut c: Command, what: &str) -> Result<String, String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(stdout(&out))
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            tail(&stdout(&out)),
            tail(&stderr(&out))
        ))
    }
}

/// The last 40 lines of a tool's output.
fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let from = lines.len().saturating_sub(40);
    lines[from..].iter().map(|l| format!("    {l}\n")).collect()
}

/// `--build-arg`, `--target` and `--secret` flags, the same spelling for all three tools;
/// secret sources are relative to the context directory.
fn case_flags(case: &Case, ctx: &Path) -> Vec<String> {
    let mut f = Vec::new();
    for a in &case.build_args {
        f.extend(["--build-arg".to_string(), a.clone()]);
    }
    if let Some(t) = &case.target {
        f.extend(["--target".to_string(), t.clone()]);
    }
    for s in &case.secrets {
        let s = s
            .split(',')
            .map(|kv| match kv.strip_prefix("src=") {
                Some(src) => format!("src={}", ctx.join(src).display()),
                None => kv.to_string(),
            })
            .collect::<Vec<_>>()
            .join(",");
        f.extend(["--secret".to_string(), s]);
    }
    f
}

/// Unmounts everything mounted at or below `dir` (deepest first).
pub fn unmount_below(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let dir = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p == &dir || p.starts_with(&format!("{dir}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Ok(c) = std::ffi::CString::new(p) {
            // SAFETY: umount2 on a NUL-terminated path; failure (already gone) is fine.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// gcr, in a private store (the test harness's `Env`) with the base imported.
pub struct Gcr {
    pub env: common::Env,
}

impl Gcr {
    pub fn new() -> Gcr {
        let env = common::Env::new();
        env.ok(&["import", common::busybox_tar().to_str().unwrap(), BASE]);
        Gcr { env }
    }

    /// Saves the base for the other builders into `dir`.
    pub fn save_base(&self, dir: &Path) -> BaseArchives {
        let oci = dir.join("base.oci.tar");
        let docker = dir.join("base.docker.tar");
        for (fmt, p) in [("oci-archive", &oci), ("docker-archive", &docker)] {
            self.env
                .ok(&["save", "--format", fmt, "-o", p.to_str().unwrap(), BASE]);
        }
        BaseArchives { oci, docker }
    }

    /// The `gcr build` command line for a case, with extra flags before the context.
    pub fn build_cmd(
        &self,
        case: &Case,
        ctx: &Path,
        dockerfile: &Path,
        tag: &str,
        extra: &[&str],
    ) -> Command {
        let mut args: Vec<String> = [
            "build",
            "--network",
            case.network.as_str(),
            "-f",
            dockerfile.to_str().unwrap(),
            "-t",
            tag,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(case_flags(case, ctx));
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(ctx.to_str().unwrap().to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.env.cmd(&args)
    }
}

impl Builder for Gcr {
    fn name(&self) -> &'static str {
        "gcr"
    }

    fn build(&self, case: &Case, ctx: &Path, dockerfile: &Path, tag: &str) -> Result<(), String> {
        let c = self.build_cmd(case, ctx, dockerfile, tag, &["--progress", "plain"]);
        run(c, "gcr build").map(drop)
    }

    fn export(&self, tag: &str, out: &Path) -> Result<(), String> {
        let c = self.env.cmd(&[
            "save",
            "--format",
            "oci-archive",
            "-o",
            out.to_str().unwrap(),
            tag,
        ]);
        run(c, "gcr save").map(drop)
    }
}

/// buildah with private storage (vfs: no overlay mounts to leak).
pub struct Buildah {
    dir: tempfile::TempDir,
}

impl Buildah {
    pub fn new(base: &BaseArchives) -> Result<Buildah, String> {
        let b = Buildah {
            dir: tempdir("gcr-df-buildah-"),
        };
        std::fs::create_dir_all(b.dir.path().join("tmp")).unwrap();
        let mut c = b.cmd();
        c.args(["pull", "-q", &format!("oci-archive:{}", base.oci.display())]);
        let id = run(c, "buildah pull")?;
        let mut c = b.cmd();
        c.args(["tag", id.trim(), BASE]);
        run(c, "buildah tag")?;
        Ok(b)
    }

    fn cmd(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .args(["--storage-driver", "vfs"])
            .env("TMPDIR", d.join("tmp"))
            .env("BUILDAH_LAYERS", "true");
        c
    }
}

impl Builder for Buildah {
    fn name(&self) -> &'static str {
        "buildah"
    }

    fn build(&self, case: &Case, ctx: &Path, dockerfile: &Path, tag: &str) -> Result<(), String> {
        let mut c = self.cmd();
        c.args(["bud", "--format", "docker", "--layers", "--network"])
            .arg(&case.network)
            .arg("-f")
            .arg(dockerfile)
            .args(["-t", tag])
            .args(case_flags(case, ctx))
            .arg(ctx);
        run(c, "buildah bud").map(drop)
    }

    fn export(&self, tag: &str, out: &Path) -> Result<(), String> {
        // docker-archive, not oci-archive: converting to an OCI config drops the Docker
        // fields (Healthcheck, Shell, OnBuild) that the comparison needs.
        let mut c = self.cmd();
        c.args([
            "push",
            tag,
            &format!("docker-archive:{}:{tag}", out.display()),
        ]);
        run(c, "buildah push").map(drop)
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        let _ = self.cmd().args(["rm", "--all"]).output();
        unmount_below(self.dir.path());
    }
}

/// A private dockerd (Debian's docker.io 20.10) and its own CLI, whose BuildKit is built
/// in (a newer `docker` CLI would need the buildx plugin).
pub struct Docker {
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    cli: PathBuf,
}

impl Docker {
    /// None (after saying why) when docker is not installed or disabled with
    /// GCR_DOCKERFILE_DOCKER=0.
    pub fn available() -> Option<(PathBuf, PathBuf)> {
        if std::env::var("GCR_DOCKERFILE_DOCKER").as_deref() == Ok("0") {
            eprintln!("docker peer disabled (GCR_DOCKERFILE_DOCKER=0)");
            return None;
        }
        let dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        let cli = std::env::var_os("GCR_DOCKER_CLI")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/docker"));
        match dockerd {
            Some(d) if cli.exists() => Some((d, cli)),
            _ => {
                eprintln!(
                    "docker peer skipped: no dockerd or {} (apt-get install docker.io)",
                    cli.display()
                );
                None
            }
        }
    }

    pub fn start(dockerd: &Path, cli: PathBuf, base: &BaseArchives) -> Result<Docker, String> {
        let dir = tempdir("gcr-df-docker-");
        let d = dir.path();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let daemon = Command::new(dockerd)
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip-masq=false",
                "--storage-driver",
                "vfs",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("start dockerd: {e}"))?;
        let me = Docker {
            dir,
            daemon: Some(daemon),
            cli,
        };
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let mut c = me.cmd();
            c.arg("version");
            match run(c, "docker version") {
                Ok(_) => break,
                Err(e) if Instant::now() > end => {
                    let log = std::fs::read_to_string(me.dir.path().join("dockerd.log"));
                    return Err(format!(
                        "{e}\ndockerd log:\n{}",
                        tail(&log.unwrap_or_default())
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        let mut c = me.cmd();
        c.arg("load").arg("-i").arg(&base.docker);
        let loaded = run(c, "docker load")?;
        let mut c = me.cmd();
        c.args(["image", "inspect", BASE]);
        if run(c, "docker image inspect").is_err() {
            let id = loaded
                .lines()
                .find_map(|l| l.strip_prefix("Loaded image ID: "))
                .ok_or_else(|| format!("docker load did not name the image: {loaded}"))?;
            let mut c = me.cmd();
            c.args(["tag", id.trim(), BASE]);
            run(c, "docker tag")?;
        }
        Ok(me)
    }

    fn cmd(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new(&self.cli);
        c.arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .env("DOCKER_CONFIG", d.join("config"))
            .env("DOCKER_BUILDKIT", "1")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT");
        c
    }
}

impl Builder for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn build(&self, case: &Case, ctx: &Path, dockerfile: &Path, tag: &str) -> Result<(), String> {
        let mut c = self.cmd();
        c.args(["build", "--progress", "plain", "--network"])
            .arg(&case.network)
            .arg("-f")
            .arg(dockerfile)
            .args(["-t", tag])
            .args(case_flags(case, ctx))
            .arg(ctx);
        run(c, "docker build").map(drop)
    }

    fn export(&self, tag: &str, out: &Path) -> Result<(), String> {
        let mut c = self.cmd();
        c.arg("save").arg("-o").arg(out).arg(tag);
        run(c, "docker save").map(drop)
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // The containerd that dockerd started for itself (its pid file is in exec-root).
        let containerd =
            std::fs::read_to_string(self.dir.path().join("exec/containerd/containerd.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
        if let Some(mut d) = self.daemon.take() {
            let pid = d.id() as i32;
            // SAFETY: SIGTERM to the dockerd this harness started (its own child).
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let end = Instant::now() + Duration::from_secs(20);
            while Instant::now() < end && d.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        if let Some(pid) = containerd.filter(|p| *p > 1) {
            let end = Instant::now() + Duration::from_secs(10);
            while alive(pid) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(100));
            }
            if alive(pid) {
                // SAFETY: the containerd child of the dockerd this harness started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        unmount_below(self.dir.path());
    }
}
