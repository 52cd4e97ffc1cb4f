//! Registry servers for tests: `gcr registry serve` and Debian's docker-registry on free
//! loopback ports, each killed and reaped when dropped, with their storage in a temp dir;
//! and the check for external tools (skip without them, fail with CI=true).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when every tool is on PATH; otherwise skips (prints why) or, with CI=true, panics.
pub fn need_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs {missing:?} (scripts/deps.sh installs them); skipping is not allowed when CI=true");
    }
    eprintln!("skipped {test}: needs {missing:?}");
    false
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until something listens on 127.0.0.1:`port`.
pub fn wait_port(port: u16) {
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// A registry process, killed and reaped on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// bcrypt("secret", cost 4): the password of the tests' registry users.
pub const SECRET_HASH: &str = "$2b$04$Gg2nl9CMpPJHyUZMC7EaZudyXPJg6snXLx7frLXinEMndczhD2Y16";

impl Server {
    /// `gcr registry serve` on its own store with one user, alice (password "secret").
    pub fn gcr_with_alice() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("htpasswd");
        std::fs::write(&p, format!("alice:{SECRET_HASH}\n")).unwrap();
        let p = p.to_string_lossy().into_owned();
        Server::gcr_in(dir, &["--htpasswd", &p], &[])
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `gcr registry serve` on its own store in a temp dir, with `args` after
    /// `--addr 127.0.0.1:0` and `envs`; its port is read from its first line.
    pub fn gcr(args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::gcr_in(tempfile::tempdir().unwrap(), args, envs)
    }

    /// [`Server::gcr`] with `dir` as its temp dir (for files the caller put there first).
    pub fn gcr_in(dir: tempfile::TempDir, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut child = Command::new(super::gcr_bin())
            .arg("--root")
            .arg(dir.path().join("store"))
            .args(["registry", "serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gcr registry serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from gcr registry serve: {line:?}"));
        let s = Server { child, port, dir };
        wait_port(port);
        s
    }

    /// Debian's docker-registry (distribution 2.8) with filesystem storage in a temp dir;
    /// `extra` is appended to its config (e.g. an `auth:` section).
    pub fn docker_registry(extra: &str) -> Server {
        Server::docker_registry_in(tempfile::tempdir().unwrap(), extra)
    }

    /// [`Server::docker_registry`] with `dir` as its temp dir.
    pub fn docker_registry_in(dir: tempfile::TempDir, extra: &str) -> Server {
        let port = free_port();
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let s = Server { child, port, dir };
        wait_port(port);
        s
    }
}
