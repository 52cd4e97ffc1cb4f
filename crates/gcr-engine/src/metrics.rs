//! The figures `gcr system service` exposes on `/metrics`: every container's record with
//! its cgroup figures when it runs, and the engine's counters, all from what the store and
//! the cgroup files hold, read in one pass per call:
//!
//! - container start latency: from the events table, the time from a container's
//!   `create` event to its first `start` event (a foreground `gcr run` stores both at once,
//!   after its process started, so it has no such interval and is left out);
//! - build cache hits and misses: the sums over the stored build transcripts
//!   (`cache.hits`, `cache.steps - cache.hits`; one transcript per image built, a rebuild
//!   of the same image id replaces its own);
//! - pulled bytes: the image `fetch` events a pull records (see [`Engine::pull`]);
//! - ledger entries: the rows of the events table (the ledger's leaves, never deleted);
//! - policy denials: the `policy` events whose `to_state` is `deny`;
//! - OOM kills per container: its `oom` exits recorded in events plus the running
//!   cgroup's `oom_kill` count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gcr_runtime::cgroups::{CgroupManager, Held, Stats};

use crate::container::record::{self, Head, State};
use crate::container::view::{live_io, Io};
use crate::{Engine, EngineError};

/// The cgroup figures of a running (or paused) container.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub stats: Stats,
    pub io: Io,
    pub oom_kills: u64,
}

/// One container's figures.
#[derive(Debug, Clone)]
pub struct ContainerFigures {
    pub record: Head,
    /// `oom` exits recorded in the events table.
    pub oom_exits: u64,
    /// None when it does not run (or its cgroup cannot be read).
    pub live: Option<Live>,
}

/// The engine's counters.
#[derive(Debug, Clone, Default)]
pub struct EngineFigures {
    /// Create-to-start intervals, in nanoseconds.
    pub start_latencies_ns: Vec<i64>,
    pub build_cache_hits: u64,
    pub build_cache_misses: u64,
    pub pull_bytes: u64,
    pub ledger_entries: u64,
    pub policy_denials: u64,
}

/// The bytes of a `fetch: N bytes` cause.
fn fetched_bytes(cause: &str) -> u64 {
    cause
        .strip_prefix("fetch: ")
        .and_then(|r| r.strip_suffix(" bytes"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl Engine {
    /// Every container's figures and the engine's counters (see the module's notes).
    pub fn metrics(&self) -> Result<(Vec<ContainerFigures>, EngineFigures), EngineError> {
        let conn = self.store()?.conn();
        let records = record::heads(conn)?;
        let mut eng = EngineFigures::default();
        let mut oom: HashMap<String, u64> = HashMap::new();
        let mut created: HashMap<String, (i64, i64)> = HashMap::new();
        {
            // Every event is a ledger entry; of the rows, only those the counters below
            // look at are read (SQLite skips the others without making strings of them).
            eng.ledger_entries =
                conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))? as u64;
            let mut stmt = conn.prepare_cached(
                "SELECT seq, time_ns, kind, object, from_state, to_state, cause FROM events \
                 WHERE (kind = 'policy' AND to_state = 'deny') \
                    OR (kind = 'image' AND to_state = 'fetch') \
                    OR (kind = 'container' AND (cause = 'oom' OR to_state = 'created' \
                        OR (from_state = 'created' AND to_state = 'running'))) \
                 ORDER BY seq",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let kind: Option<String> = r.get(2)?;
                let to: Option<String> = r.get(5)?;
                let cause: Option<String> = r.get(6)?;
                match (kind.as_deref(), to.as_deref()) {
                    (Some("policy"), Some("deny")) => eng.policy_denials += 1,
                    (Some("image"), Some("fetch")) => {
                        eng.pull_bytes += cause.as_deref().map_or(0, fetched_bytes)
                    }
                    (Some("container"), to) => {
                        let object: String = r.get(3)?;
                        let from: Option<String> = r.get(4)?;
                        let seq: i64 = r.get(0)?;
                        let t: i64 = r.get(1)?;
                        if cause.as_deref() == Some("oom") {
                            *oom.entry(object).or_default() += 1;
                        } else if to == Some("created") {
                            created.insert(object, (seq, t));
                        } else if from.as_deref() == Some("created") && to == Some("running") {
                            if let Some((cseq, ct)) = created.remove(&object) {
                                // Stored in one unit with its create: no interval to count.
                                if !(seq == cseq + 1 && t - ct < 1_000) {
                                    eng.start_latencies_ns.push((t - ct).max(0));
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let (hits, steps): (Option<i64>, Option<i64>) = conn.query_row(
            "SELECT sum(json_extract(transcript, '$.cache.hits')), \
                    sum(json_extract(transcript, '$.cache.steps')) FROM build_transcripts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (hits, steps) = (
            hits.unwrap_or(0).max(0) as u64,
            steps.unwrap_or(0).max(0) as u64,
        );
        eng.build_cache_hits = hits;
        eng.build_cache_misses = steps.saturating_sub(hits);
        let running: Vec<usize> = (0..records.len())
            .filter(|i| matches!(records[*i].state, State::Running | State::Paused))
            .collect();
        let manager = (!running.is_empty())
            .then(CgroupManager::detect)
            .and_then(Result::ok);
        let containers = self.root().join("containers");
        let rel = |id: &str| crate::container::cgroup_rel(&containers.join(id), id);
        let held = held_for(&records, &running, manager.as_ref(), &rel);
        let live_of = |r: &Head| {
            if let Some(h) = held.get(&r.id) {
                if let Ok(stats) = h.stats() {
                    return Some(Live {
                        stats,
                        io: live_io(r.pid, h.as_ref()),
                        oom_kills: h.oom_kills(),
                    });
                }
                // Gone (or made anew by a restart): let go; the paths answer this time.
                forget(&r.id);
            }
            let cg = manager.as_ref()?.open_at(&rel(&r.id));
            cg.stats().ok().map(|stats| Live {
                stats,
                io: live_io(r.pid, &cg),
                oom_kills: cg.oom_kills(),
            })
        };
        // The cgroup files of many containers: a few threads read them (opening a cgroup
        // file is a path walk through kernfs, most of the time spent here), each an equal
        // share of the running ones (a share of all the records could leave one thread
        // every running container and the other only created ones).
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
            .min(running.len() / 8 + 1);
        let chunk = running.len().div_ceil(threads).max(1);
        let mut lives: Vec<Option<Live>> = records.iter().map(|_| None).collect();
        let read: Vec<(usize, Option<Live>)> = std::thread::scope(|sc| {
            let handles: Vec<_> = running
                .chunks(chunk)
                .map(|part| {
                    let (records, live_of) = (&records, &live_of);
                    sc.spawn(move || {
                        part.iter()
                            .map(|i| (*i, live_of(&records[*i])))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for (i, live) in read {
            lives[i] = live;
        }
        let figures = records
            .into_iter()
            .zip(lives)
            .map(|(r, live)| ContainerFigures {
                oom_exits: oom.get(&r.id).copied().unwrap_or(0),
                record: r,
                live,
            })
            .collect();
        Ok((figures, eng))
    }
}

/// The running containers' cgroup files held open, by container id, in a process that
/// asked for them ([`hold_cgroup_files`]); `None` in the others (a command that reads the
/// figures once gains nothing from holding them).
static HELD: Mutex<Option<HashMap<String, Arc<Held>>>> = Mutex::new(None);

/// For a long-lived process (the API service), which reads every running container's
/// figures on each `/metrics`: [`Engine::metrics`] then keeps each group's files open and
/// reads them with one `pread` each (see [`Held`]). Raises the soft limit of open files
/// to the hard one, as Go programs (dockerd among them) do at start; the files held stay
/// within a quarter of it.
pub fn hold_cgroup_files() {
    if let Some(mut lim) = nofile().filter(|l| l.rlim_cur < l.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit with a valid pointer to an rlimit on the stack.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
    if let Ok(mut h) = HELD.lock() {
        h.get_or_insert_with(HashMap::new);
    }
}

/// This process's open-files limit.
fn nofile() -> Option<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to an rlimit on the stack.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim)
}

/// How many descriptors the held files may take: a quarter of the soft limit.
fn fd_budget() -> usize {
    nofile().map_or(0, |l| usize::try_from(l.rlim_cur / 4).unwrap_or(usize::MAX))
}

/// The held files of the running containers (opening those not held yet, within the
/// budget), after letting go of those of containers that no longer run. Empty when the
/// process did not ask for them.
fn held_for(
    records: &[Head],
    running: &[usize],
    manager: Option<&CgroupManager>,
    rel: &dyn Fn(&str) -> std::path::PathBuf,
) -> HashMap<String, Arc<Held>> {
    let Ok(mut guard) = HELD.lock() else {
        return HashMap::new();
    };
    let (Some(map), Some(manager)) = (guard.as_mut(), manager) else {
        return HashMap::new();
    };
    let ids: std::collections::HashSet<&str> =
        running.iter().map(|i| records[*i].id.as_str()).collect();
    map.retain(|id, _| ids.contains(id.as_str()));
    let budget = fd_budget();
    let mut fds: usize = map.values().map(|h| h.fds()).sum();
    for i in running {
        let id = &records[*i].id;
        if map.contains_key(id) || fds + 16 > budget {
            continue;
        }
        let h = manager.open_at(&rel(id)).hold();
        fds += h.fds();
        map.insert(id.clone(), Arc::new(h));
    }
    map.clone()
}

/// Lets go of a container's held files.
fn forget(id: &str) {
    if let Ok(mut guard) = HELD.lock() {
        if let Some(map) = guard.as_mut() {
            map.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fetched_bytes() {
        assert_eq!(super::fetched_bytes("fetch: 1234 bytes"), 1234);
        assert_eq!(super::fetched_bytes("fetch: x bytes"), 0);
        assert_eq!(super::fetched_bytes("pull"), 0);
    }
}
