//! Asynchronous removal of container directories, as containerd's overlay snapshotter and
//! moby's graph drivers do: `rm` (and the end of a `--rm` container) renames the directory
//! into `<root>/trash/`, which takes one system call, and a detached reaper process
//! (`gcr __reap ROOT`) deletes what is there. Deleting even an empty upper/work pair costs
//! several block frees, each a synchronous discard on ext4 mounted with `discard`; a large
//! upper takes as long as it takes, and neither belongs on the caller's path.
//!
//! At most one reaper runs per store: it holds `trash/.lock` (flock). When the trash is
//! empty it lingers a little (inotify), keeping the database open and its WAL short and
//! serving foreground runs through [`crate::housekeeper`], then unlocks and looks once more,
//! so a directory renamed in by a process that found the lock taken is never left behind.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::{housekeeper, Engine};

const LOCK: &str = ".lock";

fn trash_dir(root: &Path) -> PathBuf {
    root.join("trash")
}

/// Entries waiting in the trash (the lock file aside).
pub fn pending(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(trash_dir(root))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name() != LOCK)
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

fn open_lock(root: &Path) -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(trash_dir(root).join(LOCK))
        .ok()
}

fn try_lock(f: &std::fs::File) -> bool {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

fn unlock(f: &std::fs::File) {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
}

impl Engine {
    /// Moves `dir` (a directory inside the store) into the trash and makes sure a reaper
    /// will delete it. Falls back to deleting it here when it cannot be moved.
    pub(crate) fn discard_dir(&self, dir: &Path, name: &str) {
        let trash = trash_dir(self.root());
        let dest = trash.join(name);
        let moved = match std::fs::rename(dir, &dest) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !dir.exists() {
                    return;
                }
                std::fs::create_dir_all(&trash).is_ok() && std::fs::rename(dir, &dest).is_ok()
            }
            // A name clash (an earlier removal of the same id still pending): delete here.
            Err(_) => false,
        };
        if !moved {
            let _ = std::fs::remove_dir_all(dir);
            return;
        }
        self.wake_reaper();
    }

    /// Starts a reaper unless one holds the lock (that one will see the new entry).
    pub(crate) fn wake_reaper(&self) {
        let Some(lock) = open_lock(self.root()) else {
            return;
        };
        if !try_lock(&lock) {
            return;
        }
        unlock(&lock);
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        // Detached: the reaper may outlive us (init reaps it then; a service reaps it as an
        // adopted child). It holds no descriptor of ours, so a caller reading our output
        // sees EOF when we exit.
        let spawned = std::process::Command::new(exe)
            .arg("__reap")
            .arg(self.root())
            .arg(self.run_dir())
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(child) = spawned {
            crate::children::adopt(child.id() as i32);
        }
    }
}

/// How long a reaper stays, watching the trash, after emptying it: a burst of `--rm` runs
/// then shares one reaper instead of starting one each.
const LINGER_MS: i32 = 2000;

/// An inotify watch for entries moved or created in the trash.
struct Watch(Option<std::os::fd::OwnedFd>);

impl Watch {
    fn new(dir: &Path) -> Watch {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return Watch(None);
        };
        // SAFETY: inotify_init1 returns a new descriptor (owned below) or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Watch(None);
        }
        // SAFETY: fd is ours and nobody else's.
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // SAFETY: a NUL-terminated path and a valid inotify descriptor.
        let wd =
            unsafe { libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_MOVED_TO | libc::IN_CREATE) };
        Watch((wd >= 0).then_some(owned))
    }

    /// Waits up to `ms` for an event on the watch, the janitor (a chore done) or the
    /// housekeeper's door and handles it; drains the watch's queue. False on timeout.
    fn wait(
        &self,
        door: Option<&mut housekeeper::Server>,
        store: Option<&gcr_store::Store>,
        janitor: &Janitor,
        ms: i32,
    ) -> bool {
        let pollfd = |fd: i32| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds = vec![
            pollfd(self.0.as_ref().map_or(-1, |f| f.as_raw_fd())),
            pollfd(janitor.done.as_ref().map_or(-1, |f| f.as_raw_fd())),
        ];
        if let Some(d) = &door {
            fds.extend(d.poll_fds());
        }
        // SAFETY: poll on a vector of pollfds we own, with its length (a negative fd is
        // ignored by poll).
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) } <= 0 {
            return false;
        }
        if let Some(d) = door {
            janitor.close(d.serve(&fds[2..], store));
            d.refill();
        }
        let mut buf = [0u8; 4096];
        for p in fds[..2].iter().filter(|p| p.revents != 0) {
            // SAFETY: reads into a stack buffer of the given size from our non-blocking
            // descriptors (the inotify queue, the janitor's eventfd counter).
            while unsafe { libc::read(p.fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        }
        true
    }
}

/// `gcr __reap ROOT RUN_DIR`: empties the trash of the store at ROOT, then lingers for a
/// while in case more arrives, serving runs through a socket under RUN_DIR; exits at once
/// when another reaper holds the lock. Returns the process exit code.
pub fn reap_main(root: &Path, run_dir: Option<&Path>) -> i32 {
    // Inherited descriptors (a caller's pipes that were not close-on-exec) would otherwise
    // stay open as long as the housekeeper lingers.
    // SAFETY: close_range on our own descriptor table; nothing of ours is open yet.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    reap(root, run_dir, LINGER_MS)
}

/// Empties the trash now unless a reaper is at work (`system prune`).
pub fn drain(root: &Path) {
    reap(root, None, 0);
}

fn reap(root: &Path, run_dir: Option<&Path>, linger_ms: i32) -> i32 {
    const TICK_MS: i32 = 250;
    let Some(lock) = open_lock(root) else {
        return 1;
    };
    // While it lingers the housekeeper keeps the database open: other gcr processes then
    // find SQLite's WAL index alive instead of rebuilding it from the whole WAL, and the WAL
    // is checkpointed here rather than by a command on its way out.
    let store = (linger_ms > 0)
        .then(|| gcr_store::Store::open_existing(root).ok())
        .flatten();
    if let Some(s) = &store {
        s.spread_containers();
        crate::container::orphans::sweep(root, s.conn());
    }
    // A drain (`system prune`) waits for the deletion to finish; a lingering housekeeper
    // notices at its next event or tick instead, and stays off the CPU while runs go on.
    let janitor = Janitor::start(root, linger_ms == 0);
    loop {
        if !try_lock(&lock) {
            return 0;
        }
        // Watch before looking, so nothing renamed in after a look goes unnoticed.
        let watch = Watch::new(&trash_dir(root));
        // While it lingers the housekeeper also serves runs (see crate::housekeeper).
        let mut door = run_dir
            .filter(|_| linger_ms > 0)
            .and_then(|run| housekeeper::Server::bind(root, run));
        let mut idle = 0;
        loop {
            if janitor.stuck() {
                // Something in the trash cannot be deleted (still mounted?): `gcr system
                // prune` or a later reaper tries again; never spin here. What runs sent
                // is handled first.
                if let Some(d) = door.as_mut() {
                    drop(d.drain(store.as_ref()));
                }
                return 1;
            }
            let busy = janitor.busy();
            let quiet = !busy && pending(root).is_empty();
            if !busy && !quiet {
                janitor.sweep();
            }
            if quiet {
                if let Some(s) = &store {
                    s.truncate_wal_over(gcr_store::WAL_LIMIT);
                    // Signing stays off the start path: checkpoints are made here.
                    crate::audit::checkpoint_if_due(s, root);
                }
                // A run killed meanwhile left a directory: linger until it is old enough
                // to be an orphan, so that the sweep below takes it.
                if idle >= linger_ms
                    && !store
                        .as_ref()
                        .is_some_and(|s| crate::container::orphans::becoming(root, s.conn()))
                {
                    break;
                }
            }
            let woke = watch.wait(door.as_mut(), store.as_ref(), &janitor, TICK_MS);
            idle = if woke || !quiet { 0 } else { idle + TICK_MS };
        }
        // Stop serving before unlocking, so that the next housekeeper can listen; what runs
        // sent is handled first.
        if let Some(d) = door.as_mut() {
            drop(d.drain(store.as_ref()));
        }
        drop(door);
        // Directories that killed runs left during the linger (deleted by the next turn).
        if let Some(s) = &store {
            crate::container::orphans::sweep(root, s.conn());
        }
        unlock(&lock);
        if pending(root).is_empty() {
            return 0;
        }
    }
}

/// What the janitor thread does.
enum Chore {
    /// Delete what is in the trash.
    Sweep,
    /// Close these descriptors (a finished run's mount namespace: closing the last
    /// reference unmounts everything in it, which waits for RCU grace periods).
    Close(Vec<std::os::fd::OwnedFd>),
}

/// The housekeeper's slow work on a thread of its own, so that its loop stays free to
/// answer runs.
struct Janitor {
    tx: std::sync::mpsc::Sender<Chore>,
    /// An eventfd counting chores done, which wakes the loop waiting for them (a drain).
    done: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
    /// Chores sent and not yet done.
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stuck: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Janitor {
    /// `wake`: signal each chore done on `done`.
    fn start(root: &Path, wake: bool) -> Janitor {
        use std::sync::atomic::Ordering;
        let (tx, rx) = std::sync::mpsc::channel::<Chore>();
        let queued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stuck = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        use std::os::fd::FromRawFd;
        let fd = match wake {
            // SAFETY: eventfd returns a new descriptor (owned below) or -1.
            true => unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) },
            false => -1,
        };
        // SAFETY: a fresh descriptor that nobody else owns. (Without one, the loop only
        // notices a finished chore at its next event or tick.)
        let done = (fd >= 0)
            .then(|| std::sync::Arc::new(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }));
        let (q, st, root, d) = (
            queued.clone(),
            stuck.clone(),
            root.to_path_buf(),
            done.clone(),
        );
        std::thread::spawn(move || {
            for chore in rx {
                match chore {
                    Chore::Sweep => {
                        let items = pending(&root);
                        let mut progress = items.is_empty();
                        let cgroups = gcr_runtime::cgroups::CgroupManager::detect().ok();
                        for p in &items {
                            // A container's files in the trash: its cgroup goes too, with
                            // whatever a start killed half-way left in it (otherwise no
                            // row names it and nothing else would ever remove it).
                            if let (Some(m), Some(id)) = (&cgroups, p.file_name()) {
                                let id = id.to_string_lossy();
                                if crate::names::is_container_id(&id) {
                                    crate::container::ops::remove_stray_cgroup(m, p, &id);
                                }
                            }
                            progress |= std::fs::remove_dir_all(p)
                                .or_else(|_| std::fs::remove_file(p))
                                .is_ok();
                        }
                        if !progress {
                            st.store(true, Ordering::SeqCst);
                        }
                    }
                    Chore::Close(fds) => drop(fds),
                }
                q.fetch_sub(1, Ordering::SeqCst);
                if let Some(d) = &d {
                    // SAFETY: an 8-byte write from a stack value to our eventfd.
                    unsafe { libc::write(d.as_raw_fd(), (&1u64 as *const u64).cast(), 8) };
                }
            }
        });
        Janitor {
            tx,
            done,
            queued,
            stuck,
        }
    }

    fn send(&self, c: Chore) {
        use std::sync::atomic::Ordering;
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(c).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn sweep(&self) {
        self.send(Chore::Sweep);
    }

    fn close(&self, fds: Vec<std::os::fd::OwnedFd>) {
        if !fds.is_empty() {
            self.send(Chore::Close(fds));
        }
    }

    fn busy(&self) -> bool {
        self.queued.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    fn stuck(&self) -> bool {
        self.stuck.load(std::sync::atomic::Ordering::SeqCst)
    }
}
