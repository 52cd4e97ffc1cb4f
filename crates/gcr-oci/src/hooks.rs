//! The config's `hooks` (runtime-spec "POSIX-platform Hooks"), runc's way:
//! `prestart` (deprecated) and `createRuntime` run by gcr-runc while the container process
//! waits before pivot_root (the runtime's namespaces; status `creating`, the host pid);
//! `createContainer` and `startContainer` run by the container process itself (see
//! [`gcr_runtime::hooks`]); `poststart` after the start once the user's program runs
//! (status `running`); `poststop` after delete, also when a create fails (status
//! `stopped`, no pid). A hook gets the state on stdin; a failure of the first four fails
//! create or start with a message naming the hook; `poststart` and `poststop` failures are
//! warnings. A timeout kills the hook.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::state::{State, OCI_VERSION};
use crate::OciError;

/// What the state a hook reads on stdin says besides its status and pid.
#[derive(Clone)]
pub(crate) struct Doc {
    pub id: String,
    pub bundle: std::path::PathBuf,
    pub annotations: HashMap<String, String>,
}

impl Doc {
    pub(crate) fn of(st: &State) -> Doc {
        Doc {
            id: st.id.clone(),
            bundle: st.bundle.clone(),
            annotations: st.annotations.clone(),
        }
    }

    /// The runtime-spec state (`pid` left out when 0).
    pub(crate) fn json(&self, status: &str, pid: i32) -> Vec<u8> {
        let mut v = serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "status": status,
            "bundle": self.bundle,
        });
        if pid > 0 {
            v["pid"] = pid.into();
        }
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// The hooks of one kind (`prestart` counts as `createRuntime`, ahead of it), each with
/// its name for messages (`prestart hook #0 (/path)`).
pub(crate) fn of<'a>(h: Option<&'a Hooks>, kind: &str) -> Vec<(String, &'a Hook)> {
    let Some(h) = h else { return Vec::new() };
    let lists: Vec<(&str, &Option<Vec<Hook>>)> = match kind {
        "createRuntime" => vec![("prestart", h.prestart()), (kind, h.create_runtime())],
        "createContainer" => vec![(kind, h.create_container())],
        "startContainer" => vec![(kind, h.start_container())],
        "poststart" => vec![(kind, h.poststart())],
        "poststop" => vec![(kind, h.poststop())],
        _ => Vec::new(),
    };
    lists
        .into_iter()
        .flat_map(|(k, l)| {
            l.iter()
                .flatten()
                .enumerate()
                .map(move |(i, x)| (format!("{k} hook #{i} ({})", x.path().display()), x))
        })
        .collect()
}

/// As gcr-runtime takes them (for the hooks the container process runs).
pub(crate) fn for_runtime(h: Option<&Hooks>, kind: &str) -> Vec<gcr_runtime::hooks::Hook> {
    of(h, kind)
        .into_iter()
        .map(|(_, h)| gcr_runtime::hooks::Hook {
            path: h.path().clone(),
            args: h.args().clone().unwrap_or_default(),
            env: h.env().clone(),
            timeout: h.timeout().map(|t| t.max(1) as u32),
        })
        .collect()
}

/// Checks what the spec requires of every hook: an absolute path, a positive timeout.
pub(crate) fn check(h: Option<&Hooks>) -> Result<(), OciError> {
    for kind in [
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        for (name, x) in of(h, kind) {
            if !x.path().is_absolute() {
                return Err(OciError::Invalid(format!(
                    "hooks: {name}: the path is not absolute"
                )));
            }
            if x.timeout().is_some_and(|t| t <= 0) {
                return Err(OciError::Invalid(format!(
                    "hooks: {name}: the timeout must be more than 0 seconds"
                )));
            }
        }
    }
    Ok(())
}

/// An anonymous file for a hook's output (read back for the error message).
fn output_file() -> Option<std::fs::File> {
    // SAFETY: memfd_create with a NUL-terminated name; the descriptor is owned below.
    let fd = unsafe { libc::memfd_create(c"gcr-hook".as_ptr(), libc::MFD_CLOEXEC) };
    // SAFETY: fd is fresh and ours.
    (fd >= 0).then(|| std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Runs one hook in this process's namespaces with `state` on stdin.
fn run_one(label: &str, h: &Hook, state: &[u8]) -> Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(a0) = args.first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, a0);
        cmd.args(&args[1..]);
    }
    if let Some(env) = h.env() {
        cmd.env_clear();
        for e in env {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            cmd.env(k, v);
        }
    }
    let out = output_file();
    let (o, e) = match &out {
        Some(f) => match (f.try_clone(), f.try_clone()) {
            (Ok(a), Ok(b)) => (Stdio::from(a), Stdio::from(b)),
            _ => (Stdio::null(), Stdio::null()),
        },
        None => (Stdio::null(), Stdio::null()),
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(o)
        .stderr(e)
        .spawn()
        .map_err(|e| format!("{label}: cannot run it: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE, or a full pipe it never
        // drains: the write is given up with the timeout below).
        let state = state.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&state);
        });
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let mut delay = Duration::from_micros(100);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(format!("{label}: cannot wait for it: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{label}: timed out after {} s (killed){}",
                h.timeout().unwrap_or(0),
                output_of(out)
            ));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    };
    if status.success() {
        return Ok(());
    }
    let why = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".to_string(),
    };
    Err(format!("{label}: {why}{}", output_of(out)))
}

fn output_of(f: Option<std::fs::File>) -> String {
    let Some(mut f) = f else {
        return String::new();
    };
    let mut b = Vec::new();
    let _ = f.rewind();
    let _ = f.take(512).read_to_end(&mut b);
    let t = String::from_utf8_lossy(&b).trim().to_string();
    if t.is_empty() {
        t
    } else {
        format!(", output: {t}")
    }
}

/// Runs the hooks of `kind` in order; the first failure stops them.
pub(crate) fn run(h: Option<&Hooks>, kind: &str, state: &[u8]) -> Result<(), String> {
    for (name, x) in of(h, kind) {
        run_one(&name, x, state)?;
    }
    Ok(())
}

/// Runs the hooks of `kind`, each failure a warning (poststart, poststop).
pub(crate) fn run_warn(h: Option<&Hooks>, kind: &str, state: &[u8], warn: &dyn Fn(&str)) {
    for (name, x) in of(h, kind) {
        if let Err(e) = run_one(&name, x, state) {
            warn(&e);
        }
    }
}

/// Waits until a started container's process has exec'd its program or failed a
/// `startContainer` hook (what it wrote to `r` before exiting), through a descriptor
/// that reads EOF when the process's copy closes (on execve or exit).
pub(crate) fn await_exec(r: OwnedFd, what: &Path) -> Result<(), OciError> {
    let mut f = std::fs::File::from(r);
    let mut text = Vec::new();
    loop {
        let mut b = [0u8; 2048];
        match f.read(&mut b) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut p = libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(&f),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: poll of one descriptor we own, for at most 100 ms.
                unsafe { libc::poll(&mut p, 1, 100) };
            }
            Err(e) => return Err(OciError::io("cannot read", what, e)),
        }
    }
    if text.is_empty() {
        Ok(())
    } else {
        Err(OciError::Hook(String::from_utf8_lossy(&text).into_owned()))
    }
}
