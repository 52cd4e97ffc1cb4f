//! Runs one build command with gcr-runtime: an OCI spec with Docker's defaults (the same
//! builder `gcr run` uses), an overlay of the layers built so far plus a fresh upper dir,
//! a loopback-only network unless `build.network: host`, a cgroup of its own (no limits;
//! see [`super::stepgroup`]) watched by a [`StepWatch`] so that the step dies with a killed
//! build, and stdout/stderr captured through a pipe line by line.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use gcr_build::{RunRequest, Runner};
use gcr_runtime::cgroups::{CgroupManager, Resources};
use gcr_runtime::{Launch, Network, Rootfs, SeccompMode, SecretFile, Stdio};
use zeroize::Zeroizing;

use super::stepgroup;
use super::watch::StepWatch;

use crate::container::config::{ContainerConfig, Resolved, RunOptions};
use crate::ocispec;

/// The engine's [`Runner`].
pub struct RuntimeRunner {
    #[allow(dead_code)]
    run_dir: PathBuf,
    /// Build secrets by id (wiped when the runner is dropped).
    secrets: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl RuntimeRunner {
    pub fn new(run_dir: PathBuf) -> RuntimeRunner {
        RuntimeRunner {
            run_dir,
            secrets: BTreeMap::new(),
        }
    }

    /// The runner mounting these build secrets for the steps that ask for them.
    pub fn with_secrets(self, secrets: BTreeMap<String, Zeroizing<Vec<u8>>>) -> RuntimeRunner {
        RuntimeRunner { secrets, ..self }
    }

    /// The secret files of a step: `/run/secrets/<id>`, root's, mode 0400 (BuildKit's).
    fn secret_files(&self, req: &RunRequest) -> Result<Vec<SecretFile>, String> {
        req.secrets
            .iter()
            .map(|id| {
                let data = self
                    .secrets
                    .get(id)
                    .ok_or_else(|| format!("build secret '{id}' has no value"))?;
                Ok(SecretFile {
                    target: PathBuf::from("/run/secrets").join(id),
                    uid: 0,
                    gid: 0,
                    mode: 0o400,
                    data: data.clone(),
                })
            })
            .collect()
    }
}

impl Runner for RuntimeRunner {
    fn run(&self, req: &RunRequest, output: &mut dyn FnMut(&str)) -> Result<i32, String> {
        let network = if req.network_host { "host" } else { "none" };
        let cfg = ContainerConfig {
            opts: RunOptions {
                network: Some(network.into()),
                ..Default::default()
            },
            resolved: Resolved {
                args: req.argv.clone(),
                env: req.env.clone(),
                cwd: req.cwd.clone(),
                hostname: "gcr-build".into(),
                caps_mask: gcr_runtime::DOCKER_DEFAULT_CAPS,
                seccomp: true,
                network: network.into(),
                lowers: req
                    .lowers
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect(),
                ..Default::default()
            },
            policy: None,
        };
        let spec = ocispec::build(&cfg, Vec::new()).map_err(|e| e.to_string())?;
        let manager = CgroupManager::detect()
            .map_err(|e| format!("cannot give the build step a cgroup: {e}"))?;
        let group = stepgroup::name(&req.id);
        // Watched before it exists: a build killed from here on takes the step with it.
        let watch = StepWatch::start(&manager.open(&group).paths())?;
        let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| format!("cannot create a pipe: {e}"))?;
        let wr2 = wr
            .try_clone()
            .map_err(|e| format!("cannot duplicate a pipe: {e}"))?;
        let secrets = self.secret_files(req)?;
        let launch = Launch {
            id: &group,
            spec: &spec,
            rootfs: Rootfs::Overlay {
                lowers: req.lowers.clone(),
                upper: req.upper.clone(),
                work: req.work.clone(),
                target: req.target.clone(),
                volatile: true,
            },
            stdio: Stdio::Fds {
                stdin: None,
                stdout: wr,
                stderr: wr2,
            },
            seccomp: SeccompMode::DockerDefault,
            init: false,
            cgroup_resources: Some(Resources::default()),
            network: if req.network_host {
                Network::Host
            } else {
                Network::NewLoopback
            },
            while_starting: None,
            gate: false,
            secrets,
        };
        let running = gcr_runtime::spawn(launch).map_err(|e| e.to_string())?;
        let mut lines = BufReader::new(std::fs::File::from(rd));
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match lines.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    let s = String::from_utf8_lossy(&buf);
                    output(s.trim_end_matches(['\n', '\r']));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let status = gcr_runtime::wait_exit(&running);
        // Whatever the step left behind in its group dies with it; a group that will not go
        // is left to the watcher, which keeps killing for a while.
        let removed = running.cgroup.as_ref().is_none_or(|cg| {
            cg.kill_all(libc::SIGKILL);
            cg.destroy().is_ok()
        });
        if removed {
            watch.release();
        }
        Ok(status.map_err(|e| e.to_string())?.code())
    }
}
