//! A cgroup's figure files held open, for a reader that asks again and again (the API
//! service's `/metrics`): each later reading is one `pread` per file from offset 0, which
//! makes the kernel render the file afresh — no path walk through kernfs, no open, no
//! close, which were most of the time a 100-container `/metrics` took. The group can still
//! be removed while its files are held (kernfs lets `rmdir` go ahead): they then read
//! `ENODEV`, [`Held::stats`] fails, and the holder lets go of them. The group's processes'
//! own figure files (`/proc/PID/net/dev`, `/proc/PID/io`) are held the same way once asked
//! for ([`Held::proc_text`]).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;

use super::mountinfo::{CPUACCT, FREEZER, MEMORY, PIDS};
use super::{detail, fs, v1, v2, BlkioStats, Cgroup, CgroupError, Stats};

/// The v1 files read for the figures, by controller.
const V1_FILES: [(u8, &str); 7] = [
    (MEMORY, "memory.usage_in_bytes"),
    (MEMORY, "memory.stat"),
    (MEMORY, "memory.limit_in_bytes"),
    (MEMORY, "memory.oom_control"),
    (CPUACCT, "cpuacct.usage"),
    (PIDS, "pids.current"),
    (PIDS, "pids.max"),
];
/// The v2 files read for the figures.
const V2_FILES: [&str; 8] = [
    "memory.current",
    "memory.stat",
    "cpu.stat",
    "memory.max",
    "pids.current",
    "pids.max",
    "memory.events",
    "io.stat",
];
/// Key of the held `cgroup.procs` (the first v1 hierarchy that has the group, as
/// [`Cgroup::procs`] reads it).
const PROCS: u8 = 0;

/// One held file: its controller (0 on v2), its name, the open file and its path (for
/// messages).
struct One {
    ctrl: u8,
    name: &'static str,
    file: File,
    path: PathBuf,
}

/// The figure files of one group, open (those that existed when it was opened).
pub struct Held {
    v2: bool,
    files: Vec<One>,
    /// One reader at a time: a read at 0 renders a file afresh, so a second reader's would
    /// cut into the first one's.
    reading: Mutex<()>,
    /// `/proc/PID/<name>` files of the group's processes, by pid and name.
    proc_files: Mutex<HashMap<(i32, &'static str), File>>,
}

/// The most `/proc` files one group holds (pids come and go; past it they are let go).
const PROC_FILES_MAX: usize = 32;

impl Held {
    /// How many descriptors it holds.
    pub fn fds(&self) -> usize {
        self.files.len() + self.proc_files.lock().map_or(0, |m| m.len())
    }

    /// Text of a held file; `None` when it was absent at opening.
    fn text(&self, ctrl: u8, name: &str) -> Result<Option<String>, CgroupError> {
        let Some(one) = self.files.iter().find(|o| o.ctrl == ctrl && o.name == name) else {
            return Ok(None);
        };
        let _one_reader = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        read_at_zero(&one.file)
            .map(Some)
            .map_err(|e| fs::err("read", &one.path, e))
    }

    /// The group's figures, as [`Cgroup::stats`] reads them; an error once the group is gone.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        if self.v2 {
            v2::stats_from(&|name| self.text(0, name))
        } else {
            v1::stats_from(&|ctrl, name| self.text(ctrl, name))
        }
    }

    /// As [`Cgroup::oom_kills`].
    pub fn oom_kills(&self) -> u64 {
        let (ctrl, name) = if self.v2 {
            (0, "memory.events")
        } else {
            (MEMORY, "memory.oom_control")
        };
        match self.text(ctrl, name) {
            Ok(Some(t)) => detail::oom_kills_in(&t, !self.v2),
            _ => 0,
        }
    }

    /// As [`Cgroup::block_io`].
    pub fn block_io(&self) -> BlkioStats {
        // Held on v2 only (gcr makes no v1 blkio group).
        match self.text(0, "io.stat") {
            Ok(Some(t)) => detail::io_stat(&t),
            _ => BlkioStats::default(),
        }
    }

    /// The text of `/proc/PID/<name>` (`net/dev`, `io`) of one of the group's processes,
    /// from a file held open after the first call. A held file that no longer reads (its
    /// process has exited: the file belongs to that very process, never to a later one
    /// with the same pid) is let go and the path opened afresh; `None` when that fails too.
    pub fn proc_text(&self, pid: i32, name: &'static str) -> Option<String> {
        let mut held = self.proc_files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = held.get(&(pid, name)) {
            match read_at_zero(f) {
                Ok(t) => return Some(t),
                Err(_) => {
                    held.remove(&(pid, name));
                }
            }
        }
        let f = File::open(format!("/proc/{pid}/{name}")).ok()?;
        let text = read_at_zero(&f).ok()?;
        if held.len() >= PROC_FILES_MAX {
            held.clear();
        }
        held.insert((pid, name), f);
        Some(text)
    }

    /// As [`Cgroup::procs`].
    pub fn procs(&self) -> Vec<i32> {
        match self.text(PROCS, "cgroup.procs") {
            Ok(Some(t)) => fs::pids_in(&t),
            _ => Vec::new(),
        }
    }
}

impl Cgroup {
    /// Opens the group's figure files for reading again and again (see [`Held`]).
    pub fn hold(&self) -> Held {
        let mut files = Vec::new();
        let mut open = |ctrl: u8, name: &'static str, dir: &std::path::Path| {
            let path = dir.join(name);
            if let Ok(file) = File::open(&path) {
                files.push(One {
                    ctrl,
                    name,
                    file,
                    path,
                });
            }
        };
        match self.v2_dir() {
            Some(dir) => {
                for name in V2_FILES.into_iter().chain(["cgroup.procs"]) {
                    open(0, name, dir);
                }
            }
            None => {
                for (ctrl, name) in V1_FILES {
                    if let Some(dir) = self.v1_dir(ctrl) {
                        open(ctrl, name, dir);
                    }
                }
                if let Some(dir) = [PIDS, FREEZER, MEMORY, CPUACCT]
                    .iter()
                    .find_map(|c| self.v1_dir(*c))
                {
                    open(PROCS, "cgroup.procs", dir);
                }
            }
        }
        Held {
            v2: self.v2_dir().is_some(),
            files,
            reading: Mutex::new(()),
            proc_files: Mutex::new(HashMap::new()),
        }
    }
}

/// The whole of a file read from offset 0 with `pread`s (a cgroup or proc file is
/// rendered afresh by a read at 0).
fn read_at_zero(f: &File) -> io::Result<String> {
    fs::read_whole(4096, |buf, at| f.read_at(buf, at))
}
