//! Starting a detached container: the fork into its guard and its supervisor (see
//! [`super::guard`] and [`super::supervise`]), the client's confirmation that it recorded
//! the start, and the supervisor's take-over when the client died before confirming.
//!
//! `start_detached` forks the guard, which forks the supervisor; the supervisor launches
//! the container as its own child (so it can reap it), reports the pid through a pipe and
//! re-executes the gcr binary as `gcr __supervise …`, which keeps the pid and the
//! parenthood but drops the client's memory. The client records the container running and
//! confirms it through a second pipe; a supervisor whose client died unconfirmed records
//! the start itself when the row is still the client's claim, and otherwise kills the
//! container (it is not its to run).

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::procfs;
use super::record::{self, Record, State};
use super::supervise::launch_piped;
use crate::{Engine, EngineError};

pub(super) fn pipe() -> Result<(OwnedFd, OwnedFd), EngineError> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(EngineError::Io(
            "creating a pipe".into(),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: pipe2 succeeded, so both fds are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn clear_cloexec(fd: RawFd) {
    // SAFETY: fcntl on an fd we own, with integer arguments only.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
}

impl Engine {
    /// Starts `r` under a new supervisor and records it running. Returns when the
    /// container's command has been executed (or failed to) and the supervisor is known to
    /// be alive; a supervisor that died during the start is an error (the record then says
    /// what became of the container).
    pub fn start_detached(&self, r: &mut Record, cause: &str) -> Result<(), EngineError> {
        self.start_supervised(r, cause, false)
    }

    /// [`Engine::start_detached`]; with `attach_wait` the supervisor holds the output
    /// until the first attach (see [`super::attach`]).
    pub(crate) fn start_supervised(
        &self,
        r: &mut Record,
        cause: &str,
        attach_wait: bool,
    ) -> Result<(), EngineError> {
        if attach_wait && r.config.opts.tty {
            super::run::note_console_size();
        }
        let (ready_r, ready_w) = pipe()?;
        let (confirm_r, confirm_w) = pipe()?;
        // SAFETY: gcr is single-threaded here; the child only forks the supervisor, writes
        // to a pipe and execs or exits.
        let child = unsafe { libc::fork() };
        if child < 0 {
            return Err(EngineError::Io(
                "fork".into(),
                std::io::Error::last_os_error(),
            ));
        }
        if child == 0 {
            drop(ready_r);
            drop(confirm_w);
            guard_child(self, r, (ready_w, confirm_r), attach_wait);
        }
        drop(ready_w);
        drop(confirm_r);
        let mut msg = String::new();
        let _ = std::fs::File::from(ready_r).read_to_string(&mut msg);
        if let Some(rest) = msg.strip_prefix("OK ") {
            let mut nums = rest
                .split_whitespace()
                .map(|n| n.parse::<i32>().unwrap_or(0));
            let (pid, supervisor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
            // The guard stays: nobody here waits for it (see crate::children).
            crate::children::adopt(child);
            if let Err(e) = self.mark_running(r, pid, supervisor, cause) {
                // Not recorded: the container must not run unrecorded (the supervisor,
                // seeing no confirmation, records what it finds).
                procfs::signal(pid, libc::SIGKILL);
                return Err(e);
            }
            let _ = std::fs::File::from(confirm_w).write_all(b"R");
            return self.confirm_supervised(r);
        }
        // The supervisor failed before exec; the guard exits with it: reap the guard.
        let mut status = 0;
        // SAFETY: waiting for our own child; `status` is a valid out pointer.
        unsafe { libc::waitpid(child, &mut status, 0) };
        let (code, text) = msg
            .strip_prefix("ER ")
            .and_then(|m| m.split_once(' '))
            .map(|(c, t)| (c.parse().unwrap_or(125), t.to_string()))
            .unwrap_or((125, "the supervisor failed to start".to_string()));
        if code == 126 || code == 127 {
            Err(EngineError::Exec { msg: text, code })
        } else {
            Err(EngineError::Internal(text))
        }
    }

    /// After the start was recorded: the supervisor must still be there. If it died, the
    /// record is made true (see [`Engine::reconcile`]) and the start is an error.
    fn confirm_supervised(&self, r: &mut Record) -> Result<(), EngineError> {
        if r.extra.holder_alive() {
            return Ok(());
        }
        // Gone after doing its job: a container that exited at once was recorded (and with
        // --rm removed) by its supervisor, which then ended. Only a row still alive under a
        // dead holder means the supervisor died (read raw: `container` would reconcile it).
        match record::find(self.store()?.conn(), &r.id) {
            Ok(cur) if !cur.state.is_alive() => return Ok(()),
            Err(EngineError::NotFound(_)) if r.config.opts.rm => return Ok(()),
            _ => {}
        }
        let supervisor = r.extra.holder_pid;
        let now = match self.container(&r.id) {
            Ok(cur) => {
                let what = match cur.state {
                    State::Exited => format!("exited ({})", cur.exit_code.unwrap_or(0)),
                    State::Running => "running, no longer logged".to_string(),
                    other => other.to_string(),
                };
                *r = cur;
                what
            }
            Err(EngineError::NotFound(_)) => "removed".to_string(),
            Err(e) => return Err(e),
        };
        Err(EngineError::Internal(format!(
            "the supervisor (process {supervisor}) of container {} died while it started; \
             the container is {now}; remove it with 'gcr rm -f {}'",
            r.name, r.name
        )))
    }
}

/// Runs in the forked child: becomes the guard of the container (see [`super::guard`]):
/// a child subreaper that forks the supervisor. Never returns.
fn guard_child(
    e: &Engine,
    r: &Record,
    (ready, confirm): (OwnedFd, OwnedFd),
    attach_wait: bool,
) -> ! {
    // SAFETY: setsid has no memory arguments; the child leaves the caller's session.
    unsafe { libc::setsid() };
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this process.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    // SAFETY: prctl with integer arguments only; makes orphans of our descendants (the
    // container, once the supervisor is gone) our children.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let client = getppid();
    // SAFETY: still single-threaded; the child launches, writes to a pipe and execs or exits.
    let supervisor = unsafe { libc::fork() };
    if supervisor == 0 {
        supervisor_child(e, r, (ready, confirm), client, attach_wait);
    }
    if supervisor < 0 {
        let err = std::io::Error::last_os_error();
        let _ = write!(
            std::fs::File::from(ready),
            "ER 125 cannot fork the supervisor: {err}"
        );
        // SAFETY: leaving the forked child without running the parent's destructors.
        unsafe { libc::_exit(1) }
    }
    drop(ready);
    drop(confirm);
    exec_self(&[
        "gcr".to_string(),
        "__supervise".into(),
        "guard".into(),
        e.root().to_string_lossy().into_owned(),
        e.run_dir().to_string_lossy().into_owned(),
        r.id.clone(),
        supervisor.to_string(),
    ]);
    // Without the exec, guard here (with the client's memory).
    // SAFETY: as above.
    unsafe {
        libc::_exit(super::guard::main(&[
            e.root().to_string_lossy().into_owned(),
            e.run_dir().to_string_lossy().into_owned(),
            r.id.clone(),
            supervisor.to_string(),
        ]))
    }
}

fn getppid() -> i32 {
    // SAFETY: getppid has no arguments and cannot fail.
    unsafe { libc::getppid() }
}

/// Runs in the forked supervisor: never returns.
fn supervisor_child(
    e: &Engine,
    r: &Record,
    (ready, confirm): (OwnedFd, OwnedFd),
    client: i32,
    attach_wait: bool,
) -> ! {
    let mut ready = std::fs::File::from(ready);
    // The parent's SQLite connection stays the parent's: this process opens its own if the
    // launch needs the store (volumes, networks). The inherited one is never used or
    // closed here (we exec or _exit).
    let own = Engine::open_deferred(e.root(), e.run_dir());
    let e = &own;
    match launch_piped(e, r) {
        Ok(super::supervise::Piped {
            pid,
            outputs: fds,
            input,
        }) => {
            let _ = write!(ready, "OK {pid} {}", std::process::id());
            drop(ready);
            let confirm = confirm.into_raw_fd();
            clear_cloexec(confirm);
            let mut args = vec![
                "gcr".to_string(),
                "__supervise".into(),
                e.root().to_string_lossy().into_owned(),
                e.run_dir().to_string_lossy().into_owned(),
                r.id.clone(),
                pid.to_string(),
                // The healthcheck travels on the command line, so the supervisor does not
                // open the database until it has something to record.
                r.config
                    .resolved
                    .health
                    .as_ref()
                    .and_then(|h| serde_json::to_string(h).ok())
                    .unwrap_or_else(|| "-".into()),
                r.config.opts.log_settings().map_or_else(
                    |_| "-".to_string(),
                    |(driver, rotation)| driver.to_arg(rotation),
                ),
                // Attach: w = hold the output for a first client, i = stdin open.
                format!(
                    "-{}{}",
                    if attach_wait { "w" } else { "" },
                    if r.config.opts.interactive { "i" } else { "" }
                ),
                match input {
                    Some(f) => {
                        let raw = f.into_raw_fd();
                        clear_cloexec(raw);
                        raw.to_string()
                    }
                    None => "-".into(),
                },
                format!("{confirm}:{client}"),
            ];
            for fd in fds {
                let raw = fd.into_raw_fd();
                clear_cloexec(raw);
                args.push(raw.to_string());
            }
            exec_self(&args);
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(125) }
        }
        Err(err) => {
            let code = err.run_exit_code();
            let _ = write!(ready, "ER {code} {err}");
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
}

fn exec_self(args: &[String]) {
    let c: Vec<CString> = args
        .iter()
        .filter_map(|a| CString::new(a.as_str()).ok())
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = c.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let exe = c"/proc/self/exe";
    // SAFETY: `exe` and every pointer in `ptrs` point to NUL-terminated strings kept alive
    // by `c` for the call; the array is NULL-terminated.
    unsafe { libc::execv(exe.as_ptr(), ptrs.as_ptr()) };
}

/// Whether the client confirmed that it recorded the start (it writes one byte, or dies
/// without writing).
pub(super) fn confirmed(confirm: OwnedFd) -> bool {
    let mut f = std::fs::File::from(confirm);
    let mut b = [0u8; 1];
    loop {
        match f.read(&mut b) {
            Ok(n) => return n == 1,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// The client died before recording the start. Records it (held by this supervisor) when
/// the row is still the client's claim; otherwise (removed, or claimed by another start)
/// the container is not ours to run and is killed. Returns whether it is ours.
pub(super) fn take_over(root: &Path, run_dir: &Path, id: &str, pid: i32, client: i32) -> bool {
    let me = std::process::id() as i32;
    let ours = Engine::open(root, run_dir).and_then(|engine| {
        engine.store()?.transaction(|tx| {
            let cur = record::find(tx, id)?;
            if cur.state == State::Running && cur.pid == Some(pid) {
                return Ok(true);
            }
            let claimed = matches!(cur.state, State::Created | State::Exited)
                && cur.extra.starting
                && cur.extra.holder_pid == client;
            if !claimed {
                return Ok(false);
            }
            let (_, u) = engine.as_running(&cur, pid, me);
            record::set_state(tx, &cur, Some(cur.state), State::Running, "start", &u)?;
            Ok(true)
        })
    });
    if !matches!(ours, Ok(true)) {
        procfs::signal(pid, libc::SIGKILL);
        return false;
    }
    true
}
