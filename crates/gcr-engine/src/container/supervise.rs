//! The per-container supervisor of detached containers.
//!
//! `start_detached` forks; the child starts a new session, launches the container as its own
//! child (so it can reap it), reports the pid through a pipe and then re-executes the gcr
//! binary as `gcr __supervise …`, which keeps the pid and the parenthood but drops the
//! client's memory. The supervisor copies the container's output into the CRI log with
//! timestamps, records the exit (code, time, OOM), applies the restart policy with
//! exponential backoff and removes `--rm` containers.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gcr_runtime::Stdio;

use super::config::HealthConfig;
use super::health::{self, HealthState};
use super::procfs;
use super::record::{self, Record};
use crate::logs::LineWriter;
use crate::{Engine, EngineError};

fn pipe() -> Result<(OwnedFd, OwnedFd), EngineError> {
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

/// Launches with pipes (or a pty) whose read ends the supervisor keeps.
fn launch_piped(e: &Engine, r: &Record) -> Result<(i32, Vec<OwnedFd>), EngineError> {
    if r.config.opts.tty {
        let mut running = e.launch(r, Stdio::Pty)?;
        let master = running
            .pty_master
            .take()
            .ok_or_else(|| EngineError::Internal("the runtime returned no pty".into()))?;
        let pid = running.pid;
        std::mem::forget(running);
        return Ok((pid, vec![master]));
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let running = e.launch(
        r,
        Stdio::Fds {
            stdin: None,
            stdout: out_w,
            stderr: err_w,
        },
    )?;
    let pid = running.pid;
    std::mem::forget(running);
    Ok((pid, vec![out_r, err_r]))
}

impl Engine {
    /// Starts `r` under a new supervisor and records it running. Returns when the
    /// container's command has been executed (or failed to).
    pub fn start_detached(&self, r: &mut Record, cause: &str) -> Result<(), EngineError> {
        let (ready_r, ready_w) = pipe()?;
        // SAFETY: gcr is single-threaded here; the child only launches the container, writes
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
            supervisor_child(self, r, ready_w);
        }
        drop(ready_w);
        let mut msg = String::new();
        let _ = std::fs::File::from(ready_r).read_to_string(&mut msg);
        let mut status = 0;
        if let Some(rest) = msg.strip_prefix("OK ") {
            let pid: i32 = rest.trim().parse().unwrap_or(0);
            self.mark_running(r, pid, child, cause)?;
            return Ok(());
        }
        // The child failed before exec; reap it.
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
}

/// Runs in the forked child: never returns.
fn supervisor_child(e: &Engine, r: &Record, ready: OwnedFd) -> ! {
    // SAFETY: setsid has no memory arguments; the child leaves the caller's session.
    unsafe { libc::setsid() };
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this process.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    let mut ready = std::fs::File::from(ready);
    // The parent's SQLite connection stays the parent's: this process opens its own if the
    // launch needs the store (volumes, networks). The inherited one is never used or
    // closed here (we exec or _exit).
    let own = Engine::open_deferred(e.root(), e.run_dir());
    let e = &own;
    match launch_piped(e, r) {
        Ok((pid, fds)) => {
            let _ = write!(ready, "OK {pid}");
            drop(ready);
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

/// Streams of one running container: fds and their stream names.
struct Streams {
    fds: Vec<(OwnedFd, &'static str, LineWriter)>,
}

impl Streams {
    fn new(fds: Vec<OwnedFd>) -> Streams {
        let names: &[&'static str] = if fds.len() == 1 {
            &["stdout"]
        } else {
            &["stdout", "stderr"]
        };
        Streams {
            fds: fds
                .into_iter()
                .zip(names.iter())
                .map(|(f, n)| (f, *n, LineWriter::default()))
                .collect(),
        }
    }

    /// Reads what is available from each fd into the log; returns false when all are closed.
    fn pump(&mut self, log: &mut std::fs::File, block_ms: i32, pidfd: &OwnedFd) -> PumpResult {
        let mut polls: Vec<libc::pollfd> = self
            .fds
            .iter()
            .map(|(f, _, _)| libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        polls.push(libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: `polls` is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, block_ms) };
        if n <= 0 {
            return PumpResult::Idle;
        }
        let mut buf = [0u8; 16 * 1024];
        let mut closed = Vec::new();
        for (i, p) in polls[..self.fds.len()].iter().enumerate() {
            if p.revents == 0 {
                continue;
            }
            let (fd, name, w) = &mut self.fds[i];
            // SAFETY: reading into a stack buffer of the stated length from an fd we own.
            let got = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if got > 0 {
                w.feed(log, name, &buf[..got as usize], record::now_ns());
            } else {
                w.flush(log, name, record::now_ns());
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            self.fds.remove(i);
        }
        if polls.last().is_some_and(|p| p.revents != 0) {
            PumpResult::Exited
        } else {
            PumpResult::Data
        }
    }
}

enum PumpResult {
    Idle,
    Data,
    Exited,
}

fn reap(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid out pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r != pid {
        return 255;
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// Entry point of `gcr __supervise ROOT RUN_DIR ID PID HEALTH_JSON|- FD...`.
pub fn main(args: &[String]) -> i32 {
    let [root, run_dir, id, pid, health, fds @ ..] = args else {
        return 2;
    };
    let health: Option<HealthConfig> = serde_json::from_str(health).ok();
    let Ok(mut pid) = pid.parse::<i32>() else {
        return 2;
    };
    let fds: Vec<OwnedFd> = fds
        .iter()
        .filter_map(|f| f.parse::<RawFd>().ok())
        // SAFETY: these fds were handed to us across exec by our parent, which gave up
        // ownership of them.
        .map(|f| unsafe { OwnedFd::from_raw_fd(f) })
        .collect();
    let root = PathBuf::from(root);
    let run_dir = PathBuf::from(run_dir);
    supervise(&root, &run_dir, id, &mut pid, fds, health)
}

fn open_log(root: &Path, id: &str) -> Option<std::fs::File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("containers").join(id).join("container.log"))
        .ok()
}

/// Drops this process's resident executable pages (text of gcr and its libraries). The
/// supervisor lives as long as its container but runs little code: the pages touched while
/// starting would otherwise stay counted in its RSS. Only read-and-execute, file-backed
/// private mappings are touched: their pages are never written, so they simply fault back
/// in from the page cache when needed.
fn drop_startup_pages() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let path = f.nth(3).unwrap_or("");
        if perms != "r-xp" || !path.starts_with('/') {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: the range is a read-only executable file mapping of this process (from
        // /proc/self/maps); MADV_DONTNEED on it only drops clean pages, which are re-read
        // from the file on the next access. No memory is written.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
    }
}

/// Runs one healthcheck and stores the result.
fn health_tick(root: &Path, run_dir: &Path, id: &str, cfg: &HealthConfig, started: Instant) {
    if let Ok(engine) = Engine::open(root, run_dir) {
        if let Ok(r) = record::find(engine.store.conn(), id) {
            if r.state == "running" {
                let mut h = r.extra.health.clone().unwrap_or_else(HealthState::starting);
                let in_start = started.elapsed() < Duration::from_millis(cfg.start_period_ms);
                h.record(health::run_check(&r, cfg), cfg, in_start);
                let _ = engine.store_health(id, &h);
            }
        }
    }
    trim_heap();
}

fn supervise(
    root: &Path,
    run_dir: &Path,
    id: &str,
    pid: &mut i32,
    fds: Vec<OwnedFd>,
    health: Option<HealthConfig>,
) -> i32 {
    let Some(mut log) = open_log(root, id) else {
        return 1;
    };
    let mut streams = Streams::new(fds);
    let mut backoff = Duration::from_millis(100);
    drop_startup_pages();
    loop {
        let Some(pidfd) = procfs::pidfd_open(*pid) else {
            return 1;
        };
        let started = Instant::now();
        let mut next_check = health
            .as_ref()
            .map(|h| started + Duration::from_millis(h.interval_ms));
        loop {
            let timeout = match next_check {
                None => -1,
                Some(t) => t
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as i32,
            };
            if let PumpResult::Exited = streams.pump(&mut log, timeout, &pidfd) {
                break;
            }
            if let (Some(cfg), Some(t)) = (&health, next_check) {
                if Instant::now() >= t {
                    health_tick(root, run_dir, id, cfg, started);
                    drop_startup_pages();
                    next_check = Some(Instant::now() + Duration::from_millis(cfg.interval_ms));
                }
            }
        }
        let code = reap(*pid);
        // Drain what the container wrote just before it exited.
        while !streams.fds.is_empty() {
            if let PumpResult::Idle = streams.pump(&mut log, 0, &pidfd) {
                break;
            }
        }
        for (_, name, w) in &mut streams.fds {
            w.flush(&mut log, name, record::now_ns());
        }
        let Ok(engine) = Engine::open(root, run_dir) else {
            return 1;
        };
        let Some(r) = wait_until_started(&engine, id) else {
            return 0;
        };
        if engine.record_exit(&r, code, None).is_err() || r.config.opts.rm {
            return 0;
        }
        let policy = r.config.opts.restart;
        if !policy.should_restart(code, r.restart_count, r.extra.stopped_by_user) {
            return 0;
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(60));
        // Re-read: `stop` or `rm` may have happened during the backoff.
        let Ok(mut r) = record::find(engine.store.conn(), id) else {
            return 0;
        };
        if r.extra.stopped_by_user || r.state != "exited" {
            return 0;
        }
        match launch_piped(&engine, &r) {
            Ok((new_pid, new_fds)) => {
                *pid = new_pid;
                streams = Streams::new(new_fds);
                let me = std::process::id() as i32;
                r.restart_count += 1;
                if engine.mark_running(&mut r, new_pid, me, "restart").is_err() {
                    return 1;
                }
            }
            Err(_) => return 1,
        }
    }
}

/// The client records `running` after we report the pid; wait for that before recording
/// the exit so the two writes cannot cross.
fn wait_until_started(engine: &Engine, id: &str) -> Option<Record> {
    for _ in 0..2000 {
        match record::find(engine.store.conn(), id) {
            Ok(r) if r.state != "created" => return Some(r),
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
            Err(_) => return None,
        }
    }
    record::find(engine.store.conn(), id).ok()
}

/// Gives freed heap pages back to the kernel (glibc keeps them otherwise), keeping the
/// supervisor's resident memory small between health checks.
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of this process's heap.
    unsafe {
        libc::malloc_trim(0);
    }
}
