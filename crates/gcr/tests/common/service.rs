//! `gcr system service` for the API tests: started on a socket (by default in the store's
//! directory) with a DOCKER_CONFIG of its own, driven by the stock docker CLI (its own empty
//! config, no hints, the classic builder) or curl, killed and reaped on drop — the drop
//! then waits (10 s at most) until no process of the store is left (supervisors finishing
//! an `--rm`, a lingering housekeeper), so the store's cleanup does not race them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{stderr, stdout, Env};

pub struct Service {
    child: Child,
    root: PathBuf,
    pub host: String,
    /// The client side's docker config dir (so no user config is read).
    pub config: tempfile::TempDir,
    /// The service's own DOCKER_CONFIG (where `gcr login` would save credentials).
    pub own_config: tempfile::TempDir,
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
        let child = env
            .cmd(&args)
            .env("DOCKER_CONFIG", own_config.path())
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

/// Processes (other than this one) whose environment names `root` as GCR_ROOT.
pub fn store_processes(root: &Path) -> Vec<u32> {
    let want = format!("GCR_ROOT={}", root.display());
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == want.as_bytes()))
        })
        .collect()
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !store_processes(&self.root).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
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
