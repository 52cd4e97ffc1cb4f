//! Runs one build command with gcr-runtime: an OCI spec with Docker's defaults (the same
//! builder `gcr run` uses), an overlay of the layers built so far plus a fresh upper dir,
//! the step's network (loopback only, the host's, or the default bridge network as docker
//! build gives RUN steps, with `/etc/hosts` and `/etc/resolv.conf` bind-mounted and their
//! mount points kept out of the layer), a cgroup of its own (no limits;
//! see [`super::stepgroup`]) watched by a [`StepWatch`] so that the step dies with a killed
//! build, and stdout/stderr captured through a pipe line by line.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use gcr_build::{BuildNet, RunRequest, Runner, StepMount};
use gcr_runtime::cgroups::{CgroupManager, Resources};
use gcr_runtime::{Launch, Network, Rootfs, SeccompMode, SecretFile, Stdio};
use zeroize::Zeroizing;

use super::stepgroup;
use super::watch::StepWatch;
use super::{Cancel, StepOptions};

use crate::container::config::{ContainerConfig, Resolved, RunOptions};
use crate::ocispec;

/// The engine's [`Runner`].
pub struct RuntimeRunner {
    /// The store whose default network bridge-networked steps join.
    root: PathBuf,
    run_dir: PathBuf,
    /// Build secrets by id (wiped when the runner is dropped).
    secrets: BTreeMap<String, Zeroizing<Vec<u8>>>,
    /// The build was cancelled (see [`crate::build::BuildRequest::cancel`]).
    cancel: Option<Cancel>,
    /// What every step runs with.
    steps: StepOptions,
}

impl RuntimeRunner {
    pub fn new(root: PathBuf, run_dir: PathBuf) -> RuntimeRunner {
        RuntimeRunner {
            root,
            run_dir,
            secrets: BTreeMap::new(),
            cancel: None,
            steps: StepOptions::default(),
        }
    }

    /// The runner whose steps run with `steps` (hosts lines, /dev/shm size, limits).
    pub fn with_steps(self, steps: StepOptions) -> RuntimeRunner {
        RuntimeRunner { steps, ..self }
    }

    /// The runner that kills its step and starts no other once `cancel` is set.
    pub fn with_cancel(self, cancel: Option<Cancel>) -> RuntimeRunner {
        RuntimeRunner { cancel, ..self }
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(Cancel::is_set)
    }

    /// The runner mounting these build secrets for the steps that ask for them.
    pub fn with_secrets(self, secrets: BTreeMap<String, Zeroizing<Vec<u8>>>) -> RuntimeRunner {
        RuntimeRunner { secrets, ..self }
    }

    /// The secret files of a step (where, whose and which mode the step asked for).
    fn secret_files(&self, req: &RunRequest) -> Result<Vec<SecretFile>, String> {
        req.secrets
            .iter()
            .map(|s| {
                let data = self
                    .secrets
                    .get(&s.id)
                    .ok_or_else(|| format!("build secret '{}' has no value", s.id))?;
                Ok(SecretFile {
                    target: PathBuf::from(&s.target),
                    uid: s.uid,
                    gid: s.gid,
                    mode: s.mode,
                    data: data.clone(),
                })
            })
            .collect()
    }
}

/// The runtime mounts of a step's `RUN --mount`s.
fn step_mounts(req: &RunRequest) -> Result<Vec<oci_spec::runtime::Mount>, String> {
    use oci_spec::runtime::MountBuilder;
    let mut out = Vec::with_capacity(req.mounts.len());
    for m in &req.mounts {
        let b = MountBuilder::default();
        let built = match m {
            StepMount::Bind {
                source,
                target,
                readonly,
            } => {
                let mut opts = vec!["rbind".to_string(), "nosuid".into(), "nodev".into()];
                if *readonly {
                    opts.push("ro".into());
                }
                b.destination(target)
                    .typ("bind")
                    .source(source)
                    .options(opts)
                    .build()
            }
            StepMount::Tmpfs { target, size } => {
                let mut opts = vec!["nosuid".to_string(), "nodev".into()];
                if let Some(s) = size {
                    opts.push(format!("size={s}"));
                }
                b.destination(target)
                    .typ("tmpfs")
                    .source("tmpfs")
                    .options(opts)
                    .build()
            }
            StepMount::Layers { lowers, target } => {
                let dirs: Vec<String> = lowers
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                if dirs.iter().any(|d| d.contains([',', ':'])) {
                    return Err("a layer path of a --mount from= contains ',' or ':'".into());
                }
                // One lower needs a second for a read-only overlay: bind the lone one.
                if dirs.len() == 1 {
                    b.destination(target)
                        .typ("bind")
                        .source(&dirs[0])
                        .options(vec!["rbind".to_string(), "ro".into()])
                        .build()
                } else {
                    b.destination(target)
                        .typ("overlay")
                        .source("overlay")
                        .options(vec![
                            "ro".to_string(),
                            format!("lowerdir={}", dirs.join(":")),
                        ])
                        .build()
                }
            }
        };
        out.push(built.map_err(|e| format!("bad mount: {e}"))?);
    }
    Ok(out)
}

impl RuntimeRunner {
    /// The step's user, resolved in the image's own files.
    fn user(req: &RunRequest) -> Result<(u32, u32, Vec<u32>), String> {
        gcr_runtime::users::resolve_user(&req.user, &req.lowers).map_err(|e| e.0)
    }
}

impl Runner for RuntimeRunner {
    fn run(&self, req: &RunRequest, output: &mut dyn FnMut(&str)) -> Result<i32, String> {
        if self.cancelled() {
            return Err(CANCELLED.into());
        }
        let network = match req.network {
            BuildNet::None => "none",
            BuildNet::Host => "host",
            BuildNet::Bridge => crate::network::DEFAULT,
        };
        let (uid, gid, additional_gids) = Self::user(req)?;
        let cfg = ContainerConfig {
            opts: RunOptions {
                network: Some(network.into()),
                shm_size: self.steps.shm_size,
                ulimits: self.steps.ulimits.clone(),
                ..Default::default()
            },
            resolved: Resolved {
                args: req.argv.clone(),
                env: {
                    // HOME from the user's passwd entry, else / (as docker build and run).
                    let mut env = req.env.clone();
                    if !env.iter().any(|e| e.starts_with("HOME=")) {
                        env.push(format!(
                            "HOME={}",
                            gcr_runtime::users::home(&req.user, &req.lowers)
                        ));
                    }
                    env
                },
                cwd: req.cwd.clone(),
                uid,
                gid,
                additional_gids,
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
        // The step's network files go next to its upper dir (and with it).
        let files_dir = req.upper.parent().unwrap_or(&req.upper).to_path_buf();
        let engine = crate::Engine::open_deferred(&self.root, &self.run_dir);
        let (net, mut mounts) = match req.network {
            BuildNet::None => (StepNetwork::Loopback, Vec::new()),
            BuildNet::Host => (
                StepNetwork::Host,
                crate::network::step_files(&files_dir, HOSTNAME, crate::network::NetFiles::Host)
                    .map_err(|e| e.to_string())?,
            ),
            BuildNet::Bridge => {
                let n = engine
                    .step_attach(&req.id, HOSTNAME, &files_dir)
                    .map_err(|e| e.to_string())?;
                let m = n.mounts.clone();
                (StepNetwork::Bridge(n), m)
            }
        };
        let hosts = self.add_hosts(&files_dir, &net, &mut mounts);
        let result = hosts.and_then(|()| self.run_in(req, cfg, &mut mounts, &net, output));
        if let StepNetwork::Bridge(n) = net {
            engine.step_detach(n);
        }
        if req.network != BuildNet::None || !self.steps.add_hosts.is_empty() {
            for f in ["/etc/hosts", "/etc/resolv.conf"] {
                gcr_build::drop_file_stub(&req.upper, f);
            }
        }
        result
    }
}

/// The step's hostname (BuildKit's is `buildkitsandbox`).
const HOSTNAME: &str = "gcr-build";

/// A step's network while it runs.
enum StepNetwork {
    Loopback,
    Host,
    Bridge(crate::network::StepNet),
}

impl RuntimeRunner {
    /// `--add-host` lines in the step's /etc/hosts (made for a step without a network,
    /// which has no hosts file of its own).
    fn add_hosts(
        &self,
        files_dir: &std::path::Path,
        net: &StepNetwork,
        mounts: &mut Vec<oci_spec::runtime::Mount>,
    ) -> Result<(), String> {
        if self.steps.add_hosts.is_empty() {
            return Ok(());
        }
        if matches!(net, StepNetwork::Loopback) {
            *mounts =
                crate::network::step_files(files_dir, HOSTNAME, crate::network::NetFiles::Loopback)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .filter(|m| m.destination() == std::path::Path::new("/etc/hosts"))
                    .collect();
        }
        let path = files_dir.join("hosts");
        let mut text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading the step's hosts file: {e}"))?;
        for h in &self.steps.add_hosts {
            if let Some((name, ip)) = crate::network::parse_add_host(h) {
                text.push_str(&format!("{ip}\t{name}\n"));
            }
        }
        std::fs::write(&path, text).map_err(|e| format!("writing the step's hosts file: {e}"))
    }

    fn run_in(
        &self,
        req: &RunRequest,
        cfg: ContainerConfig,
        net_mounts: &mut Vec<oci_spec::runtime::Mount>,
        net: &StepNetwork,
        output: &mut dyn FnMut(&str),
    ) -> Result<i32, String> {
        let mut mounts = step_mounts(req)?;
        mounts.append(net_mounts);
        let spec = ocispec::build(&cfg, mounts).map_err(|e| e.to_string())?;
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
            cgroup_resources: Some(Resources {
                memory: self.steps.memory,
                memory_swap: self.steps.memory_swap,
                cpus: self.steps.cpus,
                cpu_shares: self.steps.cpu_shares,
                cpuset_cpus: self.steps.cpuset_cpus.clone(),
                cpuset_mems: self.steps.cpuset_mems.clone(),
                ..Default::default()
            }),
            network: match net {
                StepNetwork::Loopback => Network::NewLoopback,
                StepNetwork::Host => Network::Host,
                StepNetwork::Bridge(n) => {
                    use std::os::fd::AsRawFd;
                    Network::Join(format!("/proc/self/fd/{}", n.netns.as_raw_fd()).into())
                }
            },
            while_starting: None,
            gate: false,
            secrets,
        };
        let running = gcr_runtime::spawn(launch).map_err(|e| e.to_string())?;
        let ended = AtomicBool::new(false);
        std::thread::scope(|sc| {
            // A cancellable build: a watcher kills the step's group once the build is
            // cancelled (its output then ends, and the step fails).
            if let (Some(cancel), Some(cg)) = (&self.cancel, &running.cgroup) {
                let ended = &ended;
                sc.spawn(move || {
                    while !ended.load(Ordering::Relaxed) {
                        if cancel.is_set() {
                            cg.kill_all(libc::SIGKILL);
                            return;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                });
            }
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
            ended.store(true, Ordering::Relaxed);
        });
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
        if self.cancelled() {
            return Err(CANCELLED.into());
        }
        Ok(status.map_err(|e| e.to_string())?.code())
    }
}

/// The error of a step that a cancelled build killed or did not start.
const CANCELLED: &str = "the build was cancelled (its client went away)";
