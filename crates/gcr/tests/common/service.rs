//! `gcr system service` for the API tests: started on a socket (by default in the store's
//! directory) with a DOCKER_CONFIG of its own, driven by the stock docker CLI (its own empty
//! config, no hints, the classic builder) or curl, killed and reaped on drop — the drop
//! then waits (10 s at most) until no process of the store is left (supervisors finishing
//! an `--rm`, a lingering housekeeper), so the store's cleanup does not race them.
//! Every response it sent is recorded (GCR_API_RECORD) and, on drop, checked against
//! Docker's API swagger (see [`swagger_check`]); a response that does not validate fails
//! the test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{stderr, stdout, store_processes, Env};

pub struct Service {
    child: Child,
    root: PathBuf,
    pub host: String,
    /// The client side's docker config dir (so no user config is read).
    pub config: tempfile::TempDir,
    /// The service's own DOCKER_CONFIG (where `gcr login` would save credentials).
    pub own_config: tempfile::TempDir,
    /// Holds `responses.jsonl`, the service's recorded responses.
    record: tempfile::TempDir,
    /// Environment of the docker client (DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for TLS).
    pub client_env: Vec<(String, String)>,
}

/// `unix://<dir>/api/gcr.sock`.
pub fn sock_host(dir: &Path) -> String {
    format!("unix://{}", dir.join("api").join("gcr.sock").display())
}

impl Service {
    /// The service on the store's own socket ([`sock_host`]).
    pub fn on_socket(env: &Env) -> Service {
        Service::start(env, &sock_host(env.root.path()), &[])
    }

    /// The service on `host`, with `extra` arguments; waits until it answers.
    pub fn start(env: &Env, host: &str, extra: &[&str]) -> Service {
        Service::start_for(env, host, extra, Vec::new())
    }

    /// [`Service::start`] for a client with `client_env` (e.g. its TLS certificates).
    pub fn start_for(
        env: &Env,
        host: &str,
        extra: &[&str],
        client_env: Vec<(String, String)>,
    ) -> Service {
        let mut args = vec!["system", "service", "--host", host];
        args.extend_from_slice(extra);
        let own_config = tempfile::tempdir().expect("tempdir");
        let record = tempfile::tempdir().expect("tempdir");
        let child = env
            .cmd(&args)
            .env("DOCKER_CONFIG", own_config.path())
            .env("GCR_API_RECORD", record.path().join("responses.jsonl"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gcr system service");
        let svc = Service {
            child,
            root: env.root.path().to_path_buf(),
            // A service on every address is reached on loopback.
            host: host.replace("tcp://0.0.0.0:", "tcp://127.0.0.1:"),
            config: tempfile::tempdir().expect("tempdir"),
            own_config,
            record,
            client_env,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !svc.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "the service did not answer on {host}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        svc
    }

    /// Whether the service process is still running (it never panics or exits on a bad
    /// request).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `sig` to the service.
    #[allow(dead_code)]
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill of our own child's pid with a signal number.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// The service's children that have exited and not been reaped (zombies).
    #[allow(dead_code)]
    pub fn zombie_children(&self) -> Vec<u32> {
        let me = self.child.id();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let mut f = stat
                    .rsplit_once(')')
                    .map(|r| r.1)
                    .unwrap_or("")
                    .split_whitespace();
                let state = f.next();
                let ppid = f.next().and_then(|p| p.parse::<u32>().ok());
                state == Some("Z") && ppid == Some(me)
            })
            .collect()
    }

    /// The unix socket's path.
    pub fn socket(&self) -> PathBuf {
        PathBuf::from(self.host.trim_start_matches("unix://"))
    }

    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", self.config.path())
            .env("DOCKER_CLI_HINTS", "false")
            .env("DOCKER_BUILDKIT", "0")
            .envs(self.client_env.iter().map(|(k, v)| (k, v)))
            .args(["-H", &self.host])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).output().expect("run docker")
    }

    /// Runs docker with `input` on its stdin.
    pub fn docker_input(&self, args: &[&str], input: &str) -> Output {
        let mut c = self.docker_cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("run docker");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("docker")
    }

    /// `docker login -u USER --password-stdin HOST` with `password`.
    pub fn login(&self, host: &str, user: &str, password: &str) -> Output {
        self.docker_input(
            &["login", "-u", user, "--password-stdin", host],
            &format!("{password}\n"),
        )
    }

    /// Runs docker and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}): {}{}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// Runs docker and asserts failure with `says` in stderr.
    pub fn fails(&self, args: &[&str], says: &str) {
        let o = self.docker(args);
        assert!(
            !o.status.success(),
            "docker {args:?} succeeded: {}",
            stdout(&o)
        );
        assert!(
            stderr(&o).contains(says),
            "docker {args:?}: expected {says:?} in {}",
            stderr(&o)
        );
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !store_processes(&self.root).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(report) = swagger_check(&self.record.path().join("responses.jsonl")) {
            if std::thread::panicking() {
                eprintln!("{report}");
            } else {
                panic!("{report}");
            }
        }
    }
}

/// Docker's API swagger (v1.41): GCR_DOCKER_SWAGGER, else the one Debian's
/// golang-github-docker-docker-dev ships.
fn swagger_yaml() -> PathBuf {
    std::env::var_os("GCR_DOCKER_SWAGGER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from("/usr/share/gocode/src/github.com/docker/docker/api/swagger.yaml")
        })
}

/// The peers' venv (GCR_PEERS, else target/peers of the checkout).
fn peers() -> PathBuf {
    std::env::var_os("GCR_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers"))
}

/// Whether the swagger check can run: the swagger file and jsonschema + PyYAML in the
/// peers' venv.
pub fn swagger_check_usable() -> bool {
    swagger_yaml().is_file()
        && Command::new(peers().join("venv/bin/python"))
            .args(["-c", "import jsonschema, yaml"])
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Checks the responses recorded in `record` against Docker's swagger with
/// tests/peers/swagger_check.py: Err with its report (each response that does not
/// validate: method, path, status, field, reason). Skipped (after saying so) when the
/// swagger or the venv's jsonschema is missing, unless CI=true.
pub fn swagger_check(record: &Path) -> Result<(), String> {
    let python = peers().join("venv/bin/python");
    let swagger = swagger_yaml();
    if !swagger_check_usable() {
        let why = format!(
            "the swagger check needs {} (golang-github-docker-docker-dev) and jsonschema + \
             PyYAML in {} (scripts/deps.sh installs both)",
            swagger.display(),
            python.display()
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            return Err(format!("{why}; skipping is not allowed when CI=true"));
        }
        eprintln!("skipped the swagger check: {why}");
        return Ok(());
    }
    let lines = std::fs::read_to_string(record).unwrap_or_default();
    if lines.lines().next().is_none() {
        return Err(format!(
            "the service recorded no response in {} (GCR_API_RECORD)",
            record.display()
        ));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/swagger_check.py");
    let o = Command::new(&python)
        .arg(&script)
        .arg(&swagger)
        .arg(record)
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if o.status.success() {
        return Ok(());
    }
    Err(format!(
        "responses that Docker's API swagger ({}) does not accept:\n{}{}",
        swagger.display(),
        stdout(&o),
        stderr(&o)
    ))
}

/// The peers' venv python with docker-py 7 (scripts/deps.sh), else the host's python3;
/// None (after printing why) when neither has it.
pub fn docker_py(test: &str) -> Option<PathBuf> {
    let peers = std::env::var_os("GCR_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers"));
    let python = [peers.join("venv/bin/python"), PathBuf::from("python3")]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args([
                    "-c",
                    "import docker, sys; sys.exit(int(docker.__version__.split('.')[0]) < 7)",
                ])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if python.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: docker-py 7 is missing (scripts/deps.sh installs it); skipping is not allowed when CI=true"
        );
        eprintln!("skipped {test}: docker-py 7 missing");
    }
    python
}
