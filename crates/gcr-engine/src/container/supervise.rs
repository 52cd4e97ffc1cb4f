//! The per-container supervisor of detached containers.
//!
//! Started by [`super::detach`] as the container's parent and re-executed as
//! `gcr __supervise …`, it copies the container's output into the CRI log with timestamps,
//! records the exit (code, time, OOM; the code is first noted in the exit file, see
//! [`super::guard`]), applies the restart policy with exponential backoff and removes
//! `--rm` containers.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gcr_runtime::Stdio;

use super::attach::{AttachServer, STDERR, STDOUT};
use super::config::HealthConfig;
use super::health::{self, HealthState};
use super::procfs;
use super::record::{self, Record, State};
use crate::logfile::{LogFile, LogRotation};
use crate::logs::LineWriter;
use crate::{Engine, EngineError};

/// A container launched for its supervisor: its pid, the read ends of its output (one pty
/// master, or stdout and stderr pipes) and where its stdin goes (the master again, or a
/// pipe's write end with `-i`).
pub(super) struct Piped {
    pub pid: i32,
    pub outputs: Vec<OwnedFd>,
    pub input: Option<OwnedFd>,
}

/// Launches with pipes (or a pty) whose other ends the supervisor keeps.
pub(super) fn launch_piped(e: &Engine, r: &Record) -> Result<Piped, EngineError> {
    if r.config.opts.tty {
        let mut running = e.launch(r, Stdio::Pty)?;
        let master = running
            .pty_master
            .take()
            .ok_or_else(|| EngineError::Internal("the runtime returned no pty".into()))?;
        let input = master.try_clone().ok();
        let pid = running.pid;
        std::mem::forget(running);
        return Ok(Piped {
            pid,
            outputs: vec![master],
            input,
        });
    }
    let (out_r, out_w) = super::detach::pipe()?;
    let (err_r, err_w) = super::detach::pipe()?;
    let (stdin, input) = if r.config.opts.interactive {
        let (in_r, in_w) = super::detach::pipe()?;
        (Some(in_r), Some(in_w))
    } else {
        (None, None)
    };
    let running = e.launch(
        r,
        Stdio::Fds {
            stdin,
            stdout: out_w,
            stderr: err_w,
        },
    )?;
    let pid = running.pid;
    std::mem::forget(running);
    Ok(Piped {
        pid,
        outputs: vec![out_r, err_r],
        input,
    })
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
    fn pump(
        &mut self,
        log: &mut LogFile,
        block_ms: i32,
        pidfd: &OwnedFd,
        attach: &mut AttachServer,
    ) -> PumpResult {
        // Held for a first client: the output stays unread (in its pipe or pty).
        let held = attach.waiting();
        let mut polls: Vec<libc::pollfd> = self
            .fds
            .iter()
            .map(|(f, _, _)| libc::pollfd {
                fd: if held { -1 } else { f.as_raw_fd() },
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        polls.push(libc::pollfd {
            fd: if held { -1 } else { pidfd.as_raw_fd() },
            events: libc::POLLIN,
            revents: 0,
        });
        let own = polls.len();
        polls.extend(attach.pollfds());
        let block_ms = match (held, attach.wait_ms()) {
            (true, Some(w)) if block_ms < 0 || w < block_ms => w.max(1),
            _ => block_ms,
        };
        // SAFETY: `polls` is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, block_ms) };
        if n <= 0 {
            return PumpResult::Idle;
        }
        attach.ready(&polls[own..]);
        if held {
            return PumpResult::Data;
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
                let stream = if *name == "stderr" { STDERR } else { STDOUT };
                attach.broadcast(stream, &buf[..got as usize]);
            } else {
                w.flush(log, name, record::now_ns());
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            self.fds.remove(i);
        }
        if polls[own - 1].revents != 0 {
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

/// Entry point of `gcr __supervise ROOT RUN_DIR ID PID HEALTH_JSON|- SIZE:FILES|-
/// CONFIRM_FD:CLIENT_PID FD...`, and of `gcr __supervise guard ...` (see [`super::guard`]).
pub fn main(args: &[String]) -> i32 {
    if let Some(("guard", rest)) = args.split_first().map(|(a, r)| (a.as_str(), r)) {
        return super::guard::main(rest);
    }
    let [root, run_dir, id, pid, health, rotation, attach, input, confirm, fds @ ..] = args else {
        return 2;
    };
    let health: Option<HealthConfig> = serde_json::from_str(health).ok();
    let rotation = (rotation != "none").then(|| LogRotation::from_arg(rotation));
    let input = input
        .parse::<RawFd>()
        .ok()
        // SAFETY: handed to us across exec by our parent, which gave up ownership of it.
        .map(|f| unsafe { OwnedFd::from_raw_fd(f) });
    let Ok(pid) = pid.parse::<i32>() else {
        return 2;
    };
    let Some((Ok(confirm), Ok(client))) = confirm
        .split_once(':')
        .map(|(f, c)| (f.parse::<RawFd>(), c.parse::<i32>()))
    else {
        return 2;
    };
    // SAFETY: the confirmation pipe was handed to us across exec by our parent, which gave
    // up ownership of it.
    let confirm = unsafe { OwnedFd::from_raw_fd(confirm) };
    let fds: Vec<OwnedFd> = fds
        .iter()
        .filter_map(|f| f.parse::<RawFd>().ok())
        // SAFETY: these fds were handed to us across exec by our parent, which gave up
        // ownership of them.
        .map(|f| unsafe { OwnedFd::from_raw_fd(f) })
        .collect();
    let root = PathBuf::from(root);
    let run_dir = PathBuf::from(run_dir);
    let ours = super::detach::confirmed(confirm)
        || super::detach::take_over(&root, &run_dir, id, pid, client);
    if !ours {
        // Not ours to run (see take_over): it was killed; wait for it and leave no cgroup
        // behind when its row is gone.
        super::guard::reap_noted(&run_dir, id, pid);
        if let Ok(engine) = Engine::open(&root, &run_dir) {
            if let Err(EngineError::NotFound(_)) =
                engine.store().and_then(|s| record::find(s.conn(), id))
            {
                if let Ok(c) = engine.cgroup(id) {
                    let _ = c.destroy();
                }
            }
        }
        return 0;
    }
    let attach = AttachServer::bind(
        &run_dir,
        id,
        (fds.len() == 1, attach.contains('i'), attach.contains('w')),
    );
    let piped = Piped {
        pid,
        outputs: fds,
        input,
    };
    supervise(&root, &run_dir, id, piped, (health, rotation), attach)
}

/// The container's log; `rotation` None: `--log-driver none` (a log that keeps nothing).
fn open_log(root: &Path, id: &str, rotation: Option<Option<LogRotation>>) -> Option<LogFile> {
    let Some(rotation) = rotation else {
        return Some(LogFile::discard());
    };
    LogFile::open(
        &root.join("containers").join(id).join("container.log"),
        rotation,
    )
    .ok()
}

/// Drops this process's resident executable pages (text of gcr and its libraries). The
/// supervisor lives as long as its container but runs little code: the pages touched while
/// starting would otherwise stay counted in its RSS. Only read-and-execute, file-backed
/// private mappings are touched: their pages are never written, so they simply fault back
/// in from the page cache when needed.
pub(crate) fn drop_startup_pages() {
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
        if let Ok(r) = engine.store().and_then(|s| record::find(s.conn(), id)) {
            if r.state == State::Running {
                let mut h = r.extra.health.clone().unwrap_or_else(HealthState::starting);
                let in_start = started.elapsed() < Duration::from_millis(cfg.start_period_ms);
                h.record(health::run_check(&engine, &r, cfg), cfg, in_start);
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
    piped: Piped,
    (health, rotation): (Option<HealthConfig>, Option<Option<LogRotation>>),
    mut attach: AttachServer,
) -> i32 {
    let mut pid = piped.pid;
    let pid = &mut pid;
    attach.set_input(piped.input);
    let fds = piped.outputs;
    let Some(mut log) = open_log(root, id, rotation) else {
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
            .map(|h| started + Duration::from_millis(h.next_in_ms(0)));
        loop {
            let timeout = match next_check {
                None => -1,
                Some(t) => t
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as i32,
            };
            if let PumpResult::Exited = streams.pump(&mut log, timeout, &pidfd, &mut attach) {
                break;
            }
            if let (Some(cfg), Some(t)) = (&health, next_check) {
                if Instant::now() >= t {
                    health_tick(root, run_dir, id, cfg, started);
                    drop_startup_pages();
                    let since = started.elapsed().as_millis() as u64;
                    next_check =
                        Some(Instant::now() + Duration::from_millis(cfg.next_in_ms(since)));
                }
            }
        }
        let code = super::guard::reap_noted(run_dir, id, *pid);
        // Drain what the container wrote just before it exited (to the first client, when
        // the start waits for one).
        attach.wait_for_client();
        while !streams.fds.is_empty() {
            if let PumpResult::Idle = streams.pump(&mut log, 0, &pidfd, &mut attach) {
                break;
            }
        }
        for (_, name, w) in &mut streams.fds {
            w.flush(&mut log, name, record::now_ns());
        }
        attach.end_clients(code);
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
        let Ok(mut r) = engine.store().and_then(|s| record::find(s.conn(), id)) else {
            return 0;
        };
        if r.extra.stopped_by_user || r.state != State::Exited {
            return 0;
        }
        match launch_piped(&engine, &r) {
            Ok(p) => {
                let new_pid = p.pid;
                *pid = new_pid;
                streams = Streams::new(p.outputs);
                attach.set_input(p.input);
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
        match record::find(engine.store().ok()?.conn(), id) {
            Ok(r) if r.state != State::Created => return Some(r),
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
            Err(_) => return None,
        }
    }
    record::find(engine.store().ok()?.conn(), id).ok()
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
