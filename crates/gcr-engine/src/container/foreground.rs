//! Foreground `gcr run`: the calling gcr process prepares, stores and holds the container
//! and returns its exit code. From the image cache with the store's housekeeper there, the
//! store work (row, start, exit) goes to the housekeeper (see [`crate::housekeeper`]); a
//! lost answer falls back to the run's own store, checking first whether the write happened.

use std::os::fd::OwnedFd;

use gcr_runtime::{Running, Stdio};

use super::config::RunOptions;
use super::fgtee::{self, Keep, Tee, TeeEnds};
use super::imagecache;
use super::record::{self, Record, State, Update};
use super::rows::{self, Stored};
use super::run::runtime_err;
use crate::{timing, Engine, EngineError};

impl Engine {
    /// `gcr run` without `-d`: the calling process holds the container and returns its code.
    ///
    /// While the store is still opening (see [`Engine::open_deferred`]) and the image
    /// cache knows the image, the container is prepared and started from the cache; it is
    /// held before `pivot_root` until the store confirms the image and the row is stored,
    /// else it is discarded and the run starts over the ordinary way.
    pub fn run_foreground(&self, opts: RunOptions) -> Result<i32, EngineError> {
        // Secrets named by the flags must exist before anything is made.
        crate::secrets::grant::check(self, &opts.secrets, &opts.env)?;
        let none = opts.network.as_deref() == Some("none");
        let door_netns = crate::prestart::housekeeper(self.root(), self.run_dir(), none);
        let cached = self
            .store
            .is_pending()
            .then(|| imagecache::load(self.run_dir(), self.root(), &opts.image))
            .flatten();
        // The store opens meanwhile unless the housekeeper will do the store work.
        if cached.is_none() || crate::prestart::door().is_none() {
            self.store.begin();
        }
        if let Some(c) = cached {
            if let Some(started) = self.start_foreground(opts.clone(), Some(c), door_netns)? {
                return self.hold_foreground(started);
            }
            timing::mark("image cache stale");
        }
        let started = self
            .start_foreground(opts, None, door_netns)?
            .ok_or_else(|| EngineError::Internal("the start was cancelled".into()))?;
        self.hold_foreground(started)
    }

    /// Prepares, stores and starts a foreground container; None when the image cache
    /// entry it started from turned out stale (nothing is left behind then).
    fn start_foreground(
        &self,
        opts: RunOptions,
        cached: Option<imagecache::CachedImage>,
        door_netns: bool,
    ) -> Result<Option<(Record, Running, Keep)>, EngineError> {
        let tty = opts.tty;
        if tty {
            super::run::note_console_size();
        }
        let streams = [
            opts.attaches("stdin"),
            opts.attaches("stdout"),
            opts.attaches("stderr"),
        ];
        let from_cache = cached.is_some();
        let generated_name = opts.name.is_none();
        let mut ahead = None;
        let r = match cached {
            Some(c) => {
                // Flags and policy first: a refused container gets no overlay made ahead.
                let mut opts = opts;
                super::run::check_options(&opts)?;
                let note = self.gate_container(&mut opts, &c.id, &c.config, &c.lowers)?;
                let id = self.premount_ahead(&opts, &c).map(|(id, p)| {
                    ahead = Some(p);
                    id
                });
                self.prepare_container_cached(opts, c, id, note)?
            }
            None => {
                // The store is in the way first: make the container's network namespace
                // meanwhile, unless the housekeeper has one. (From the cache, the store
                // opens in parallel already and a third thread only competes for the CPU.)
                if opts.network.as_deref() == Some("none") && !door_netns {
                    crate::prestart::loopback_netns();
                }
                self.prepare_container(opts, true)?
            }
        };
        timing::mark("create");
        // From the cache with the housekeeper there, the row goes to it now (stored
        // `created` while the container is set up) and is marked running once the child
        // exists.
        let early = from_cache
            && crate::prestart::door().is_some_and(|d| {
                d.send_new(&rows::NewRow {
                    // Stored `created` and claimed by this process: no `start` or `rm`
                    // acts on it until it runs (see `Extra::starting`).
                    row: Record {
                        extra: super::record::Extra::claimed_by(std::process::id() as i32),
                        ..r.clone()
                    },
                    check_image: true,
                    generated_name,
                    maybe_stored: false,
                })
            });
        // The output is kept in the container's log as it is shown (unless its driver is
        // none): through pipes, or the pty relay.
        let keep = r
            .config
            .opts
            .log_settings()
            .ok()
            .filter(|(d, _)| *d != crate::logfile::LogDriver::None)
            .map(|(_, rotation)| rotation);
        let (stdio, keep) = match keep {
            Some(rotation) if !tty => {
                let (tee, ends) = Tee::new(streams[1], streams[2])?;
                let stdio = foreground_stdio(false, streams, Some(ends))?;
                (stdio, Keep::Pipes(tee, rotation))
            }
            Some(rotation) => (foreground_stdio(tty, streams, None)?, Keep::Pty(rotation)),
            None => (foreground_stdio(tty, streams, None)?, Keep::Nothing),
        };
        // The row is stored while the child sets up its namespaces and mounts (after the
        // store has confirmed the cached image, when the start came from the cache).
        let stored: std::cell::RefCell<Option<Result<Stored, EngineError>>> = Default::default();
        let store_row = Box::new(|pid| {
            crate::prestart::hand_over_mounts(pid);
            let res = if early {
                self.store_started(&r, pid, generated_name)
            } else {
                self.store_row(&r, pid, from_cache, generated_name)
            };
            let ok = matches!(res, Ok(Stored::Row(_)));
            *stored.borrow_mut() = Some(res);
            ok
        });
        let launched = self.launch_with(&r, stdio, Some(store_row), from_cache, ahead);
        let stored = stored.into_inner();
        if early && (launched.is_err() || stored.is_none()) {
            // The store is used here below: let the housekeeper finish what it was sent.
            if stored.is_none() {
                // Never started: the row sent ahead goes again (if it was stored).
                if let Some(Some(Ok(Stored::Row(created)))) =
                    crate::prestart::door().map(|d| d.stored_new())
                {
                    let _ = record::delete(self.store()?.conn(), &created, "error");
                }
            }
            if let Some(d) = crate::prestart::door() {
                d.flush();
            }
        }
        let running = match (launched, stored) {
            (Ok(x), Some(Ok(Stored::Row(row)))) => (*row, x),
            (Err(e), Some(Ok(Stored::Row(row)))) => {
                self.discard_after_failed_start(&row, e.exit_code());
                return Err(e);
            }
            (_, Some(Ok(Stored::Stale))) => {
                self.remove_files(&r);
                return Ok(None);
            }
            (res, insert) => {
                // Never stored: only the directories exist.
                self.remove_files(&r);
                return Err(match (insert, res) {
                    (Some(Err(ie)), _) => ie,
                    (_, Err(e)) => e,
                    _ => EngineError::Internal("the container row was not stored".into()),
                });
            }
        };
        Ok(Some((running.0, running.1, keep)))
    }

    /// The row sent to the housekeeper before the start (stored `created`) now runs as
    /// `pid`: reads the housekeeper's answer and sends the start. When the housekeeper is
    /// gone meanwhile, the same happens on the store here.
    fn store_started(
        &self,
        r: &Record,
        pid: i32,
        generated_name: bool,
    ) -> Result<Stored, EngineError> {
        let holder = std::process::id() as i32;
        if let Some(door) = crate::prestart::door() {
            // The row was sent ahead: whatever happened to it, look before storing it here.
            let mut lost = true;
            match rows::settle(door.stored_new(), &mut lost)? {
                Some(Stored::Row(created)) => {
                    timing::mark("housekeeper: row stored");
                    let (running, update) = self.as_running(&created, pid, holder);
                    let started = rows::Started {
                        row: *created,
                        update,
                    };
                    // Not sent (the housekeeper went away meanwhile): recorded here.
                    if !door.started(&started) {
                        match rows::store_started(self.store.wait()?, &started) {
                            Ok(()) | Err(EngineError::Conflict(_)) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    return Ok(Stored::Row(Box::new(running)));
                }
                Some(Stored::Stale) => return Ok(Stored::Stale),
                None => {}
            }
        }
        let store = self.store.wait()?;
        let req = rows::NewRow {
            row: r.clone(),
            check_image: true,
            generated_name,
            maybe_stored: true,
        };
        match rows::store_new(store, req)? {
            Stored::Row(created) if created.state == State::Created => {
                let (running, update) = self.as_running(&created, pid, holder);
                rows::store_started(
                    store,
                    &rows::Started {
                        row: *created,
                        update,
                    },
                )?;
                Ok(Stored::Row(Box::new(running)))
            }
            other => Ok(other),
        }
    }

    /// Stores a new container's row; for a start from the image cache, first checks with
    /// the store that the image is still the cached one. A generated name that another
    /// container took meanwhile is replaced. The housekeeper does it when it is there.
    fn store_row(
        &self,
        r: &Record,
        pid: i32,
        from_cache: bool,
        generated_name: bool,
    ) -> Result<Stored, EngineError> {
        // Stored running (with its `start` event): the child is past clone and only
        // setup stands between it and the command.
        let (row, _) = self.as_running(r, pid, std::process::id() as i32);
        let mut req = rows::NewRow {
            row,
            check_image: from_cache,
            generated_name,
            maybe_stored: false,
        };
        if let Some(door) = crate::prestart::door() {
            if let Some(stored) = rows::settle(door.store_new(&req), &mut req.maybe_stored)? {
                return Ok(stored);
            }
        }
        let store = self.store.wait()?;
        timing::mark("store: ready");
        rows::store_new(store, req)
    }

    /// Holds a started foreground container: signals, terminal, its state and exit.
    fn hold_foreground(&self, started: (Record, Running, Keep)) -> Result<i32, EngineError> {
        let (r, mut running, keep) = started;
        timing::mark("launch");
        let pid = running.pid;
        let cg = running.cgroup.take();
        let master = running.pty_master.take();
        // Before any other thread exists, so that no thread takes a forwarded signal's
        // default action.
        let fwd = gcr_runtime::signal_forwarder(pid, false).map_err(runtime_err)?;
        let input = r.config.opts.attaches("stdin");
        let dir = self.container_dir(&r.id);
        let waited = match keep {
            Keep::Pipes(tee, rotation) => {
                tee.run(
                    &mut fgtee::open(&dir, rotation),
                    pid,
                    running.pidfd.as_ref(),
                );
                gcr_runtime::wait_exit(&running).map_err(runtime_err)
            }
            Keep::Pty(rotation) => {
                let mut log = fgtee::open(&dir, rotation);
                let mut sink = fgtee::LogSink {
                    log: &mut log,
                    lines: Default::default(),
                };
                let waited = relay_and_wait(&running, master, input, Some(&mut sink));
                sink.finish();
                waited
            }
            Keep::Nothing => relay_and_wait(&running, master, input, None),
        };
        drop(fwd);
        let status = waited?;
        timing::mark("wait");
        let code = status.code();
        let recorded = self.record_exit(&r, code, cg.as_ref());
        timing::mark("record_exit");
        match recorded {
            // Recorded by another process meanwhile: the first record stands.
            Ok(()) | Err(EngineError::Conflict(_)) => Ok(code),
            Err(e) => Err(e),
        }
    }

    /// A container whose process never started (its row stored as it is in `r`) is removed
    /// when `--rm`, else left `created` with the failure's code as exit code.
    fn discard_after_failed_start(&self, r: &Record, code: i32) {
        let Ok(store) = self.store() else {
            return;
        };
        let conn = store.conn();
        if r.config.opts.rm {
            self.remove_files(r);
            if record::delete(conn, r, "rm").is_ok() {
                // Its anonymous volumes go with it, as with any `--rm` container.
                self.volumes_release(r, true);
            }
        } else {
            let u = Update {
                pid: Some(None),
                exit_code: Some(code),
                ..Default::default()
            };
            let _ = record::set_state(conn, r, Some(r.state), State::Created, "error", &u);
        }
    }
}

/// The streams of a foreground run: a pty, the caller's own 0, 1 and 2 when all three are
/// connected, else the connected ones and /dev/null for the others (Docker connects stdin
/// only with `-i`, and only the streams `-a` names).
pub(super) fn foreground_stdio(
    tty: bool,
    [stdin, stdout, stderr]: [bool; 3],
    tee: Option<TeeEnds>,
) -> Result<Stdio, EngineError> {
    if tty {
        return Ok(Stdio::Pty);
    }
    if stdout && stderr && tee.is_none() {
        // The caller's own descriptors: nothing to duplicate on the start path.
        return Ok(if stdin {
            Stdio::Inherit
        } else {
            Stdio::NullStdin
        });
    }
    let own = |fd: i32, on: bool| -> Result<Option<OwnedFd>, EngineError> {
        if !on {
            return Ok(None);
        }
        // SAFETY: F_DUPFD_CLOEXEC of one of our standard descriptors; the copy is owned.
        let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if d < 0 {
            return Err(EngineError::Io(
                format!("duplicating descriptor {fd}"),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: a fresh descriptor from fcntl.
        Ok(Some(unsafe {
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(d)
        }))
    };
    let null = || -> Result<OwnedFd, EngineError> {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| EngineError::Io("opening /dev/null".into(), e))
    };
    // The output goes to the log's pipes, or to the attached streams (/dev/null for the
    // others).
    let (out, err) = match tee {
        Some(ends) => (ends.stdout, ends.stderr),
        None => (
            own(1, stdout)?.map_or_else(null, Ok)?,
            own(2, stderr)?.map_or_else(null, Ok)?,
        ),
    };
    Ok(Stdio::Fds {
        stdin: own(0, stdin)?,
        stdout: out,
        stderr: err,
    })
}

/// Waits for a foreground container, relaying its terminal when it has one (with the
/// caller's stdin when `input`).
fn relay_and_wait(
    running: &Running,
    master: Option<OwnedFd>,
    input: bool,
    sink: Option<&mut fgtee::LogSink<'_>>,
) -> Result<gcr_runtime::ExitStatus, EngineError> {
    if let Some(m) = master {
        {
            use std::os::fd::AsFd;
            let (i, o) = (std::io::stdin(), std::io::stdout());
            let i = input.then(|| i.as_fd());
            match sink {
                Some(sink) => {
                    let mut take = |d: &[u8]| sink.take(d);
                    gcr_runtime::pty::relay_with(m, i, o.as_fd(), Some(&mut take))
                }
                None => gcr_runtime::pty::relay(m, i, o.as_fd()),
            }
            .map_err(runtime_err)?;
        }
    }
    gcr_runtime::wait_exit(running).map_err(runtime_err)
}
