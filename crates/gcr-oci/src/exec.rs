//! `exec`: a new process in a created or running container, through gcr-runtime's
//! [`gcr_runtime::exec_in_with`] (the helper that joins the container's cgroup and
//! namespaces, as the engine's `gcr exec`). The process is the `--process` file, or the
//! bundle's `process` with runc's overrides (args, `-e`, `--cwd`, `-u`, `--cap`, `-t`); the
//! container's own seccomp profile and all five capability sets apply, as in runc.

use std::os::fd::AsFd;
use std::path::Path;

use gcr_runtime::{SeccompMode, Stdio};
use oci_spec::runtime::{Capabilities, Capability, Process};

use crate::state::{State, Status};
use crate::{cgroup, console, Oci, OciError};

/// `exec`'s options.
pub struct Exec<'a> {
    pub id: &'a str,
    /// `--process`: a runtime-spec process JSON file.
    pub process_file: Option<&'a Path>,
    /// The command when there is no `--process`.
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: Option<&'a Path>,
    /// `-u UID[:GID]`.
    pub user: Option<&'a str>,
    pub caps: &'a [String],
    pub tty: bool,
    pub detach: bool,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
}

fn cap(name: &str) -> Result<Capability, OciError> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    serde_json::from_value(serde_json::Value::String(full)).map_err(|_| {
        OciError::Invalid(format!(
            "--cap {name:?} is not a capability; use a name such as CAP_NET_ADMIN"
        ))
    })
}

fn id_part(s: &str, what: &str) -> Result<u32, OciError> {
    s.parse().map_err(|_| {
        OciError::Invalid(format!(
            "-u {what} {s:?} is not a number; give UID[:GID] as numbers"
        ))
    })
}

/// The process to run: the file, or the bundle's process with the overrides.
fn process_of(st: &State, e: &Exec) -> Result<Process, OciError> {
    if let Some(f) = e.process_file {
        let text = std::fs::read(f).map_err(|err| OciError::io("cannot read --process", f, err))?;
        let p: Process = serde_json::from_slice(&text).map_err(|err| {
            OciError::Invalid(format!(
                "--process {} is not a runtime-spec process: {err}",
                f.display()
            ))
        })?;
        return Ok(p);
    }
    if e.args.is_empty() {
        return Err(OciError::Invalid(
            "exec needs a command: give args after the id or --process FILE".into(),
        ));
    }
    let b = crate::bundle::load(&st.bundle)?;
    let mut p = b.spec.process().clone().unwrap_or_default();
    p.set_args(Some(e.args.to_vec()));
    p.set_terminal(Some(e.tty));
    p.set_console_size(None);
    if let Some(c) = e.cwd {
        p.set_cwd(c.to_path_buf());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in e.env {
        let key = kv.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(u) = e.user {
        let mut user = p.user().clone();
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u, None),
        };
        user.set_uid(id_part(uid, "UID")?);
        if let Some(g) = gid {
            user.set_gid(id_part(g, "GID")?);
        }
        p.set_user(user);
    }
    if !e.caps.is_empty() {
        let mut c = p.capabilities().clone().unwrap_or_default();
        let add = |set: Option<&Capabilities>, extra: &[Capability]| -> Capabilities {
            let mut s = set.cloned().unwrap_or_default();
            s.extend(extra.iter().copied());
            s
        };
        let extra = e
            .caps
            .iter()
            .map(|n| cap(n))
            .collect::<Result<Vec<_>, _>>()?;
        c.set_bounding(Some(add(c.bounding().as_ref(), &extra)));
        c.set_effective(Some(add(c.effective().as_ref(), &extra)));
        c.set_permitted(Some(add(c.permitted().as_ref(), &extra)));
        // As runc: ambient only when the config already has an inheritable set.
        if c.inheritable().is_some() {
            c.set_inheritable(Some(add(c.inheritable().as_ref(), &extra)));
            c.set_ambient(Some(add(c.ambient().as_ref(), &extra)));
        }
        p.set_capabilities(Some(c));
    }
    Ok(p)
}

impl Oci {
    /// `exec`: runs the process; in the foreground returns its exit code (128+signal when
    /// killed), detached returns 0 once it has started.
    pub fn exec(&self, e: &Exec) -> Result<i32, OciError> {
        let st = State::load(&self.root, e.id)?;
        match st.status(&self.root) {
            Status::Running | Status::Created => {}
            s => {
                return Err(OciError::BadState {
                    id: e.id.to_string(),
                    status: s.as_str(),
                    what: "cannot exec in it; start or resume it first",
                })
            }
        }
        let process = process_of(&st, e)?;
        let terminal = process.terminal().unwrap_or(false);
        if terminal && e.detach && e.console_socket.is_none() {
            return Err(OciError::Invalid(
                "exec -t -d needs --console-socket to hand the terminal to; pass one or drop -t"
                    .into(),
            ));
        }
        let b = crate::bundle::load(&st.bundle)?;
        let profile = b.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
        if profile.is_some_and(crate::seccomp::notifies) {
            return Err(OciError::unsupported(
                "exec into a container whose linux.seccomp uses SCMP_ACT_NOTIFY",
            ));
        }
        let seccomp = match profile {
            Some(s) => SeccompMode::Custom(crate::seccomp::program(&self.root, s)?),
            None => SeccompMode::Unconfined,
        };
        // Into the devices group too: a process exec'd without it would have the host's
        // device access (and, with CAP_MKNOD, any disk).
        let cg = cgroup::open_with_devices(&st.cgroup, st.devices_cgroup.as_deref())?;
        let mut running = gcr_runtime::exec_in_with(
            st.pid,
            &process,
            Some(&cg),
            seccomp,
            if terminal { Stdio::Pty } else { Stdio::Inherit },
            true,
        )?;
        if let Some(p) = e.pid_file {
            crate::launch::write_pid_file(p, running.pid)?;
        }
        if let (Some(sock), Some(m)) = (e.console_socket, &running.pty_master) {
            console::send_master(sock, m)?;
        }
        if e.detach {
            return Ok(0);
        }
        let forwarder = gcr_runtime::signal_forwarder(running.pid, terminal)?;
        let relay = match (e.console_socket, running.pty_master.take()) {
            (None, Some(m)) => Some(std::thread::spawn(move || {
                let stdin = std::io::stdin();
                let stdout = std::io::stdout();
                let _ = gcr_runtime::pty::relay(m, Some(stdin.as_fd()), stdout.as_fd());
            })),
            _ => None,
        };
        let status = gcr_runtime::wait_exit(&running)?;
        drop(forwarder);
        if let Some(t) = relay {
            let _ = t.join();
        }
        Ok(status.code())
    }
}
