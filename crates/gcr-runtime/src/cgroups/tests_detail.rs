//! runc-shaped figures ([`Cgroup::detailed_stats`]) and the OOM counter against a fake
//! cgroupfs (v2 and hybrid v1) in a temp dir, detected from mountinfo text as on a host.

use super::tests_fake::{fake_v1, fake_v2};
use super::*;

fn put(p: impl AsRef<Path>, text: &str) {
    std::fs::write(p, text).unwrap();
}

#[test]
fn cgroups_v2_detailed_stats() {
    let (_tmp, root, m) = fake_v2();
    let cg = m.create("s", &Resources::default()).unwrap();
    let d = root.join("gcr/s");
    put(
        d.join("cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 30\n",
    );
    put(d.join("memory.current"), "8192\n");
    put(d.join("memory.max"), "max\n");
    put(d.join("memory.peak"), "16384\n");
    put(
        d.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    );
    put(d.join("memory.stat"), "anon 4096\nfile 2048\n");
    put(d.join("memory.swap.current"), "100\n");
    put(d.join("memory.swap.max"), "max\n");
    put(d.join("pids.current"), "2\n");
    put(d.join("pids.max"), "max\n");
    put(d.join("io.stat"), "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n");
    let s = cg.detailed_stats().unwrap();
    assert_eq!(s.cpu.total, 1_500_000);
    assert_eq!((s.cpu.user, s.cpu.kernel), (1_000_000, 500_000));
    assert_eq!(
        (s.cpu.periods, s.cpu.throttled_periods, s.cpu.throttled_time),
        (10, 2, 30_000)
    );
    assert!(s.cpu.percpu.is_empty(), "v2 has no per-CPU split");
    assert_eq!(
        s.memory.usage,
        MemoryEntry {
            usage: 8192,
            max: 16384,
            limit: u64::MAX,
            failcnt: 3
        }
    );
    let swap = s.memory.swap.clone().unwrap();
    assert_eq!((swap.usage, swap.limit), (8292, u64::MAX), "memory + swap");
    assert_eq!(s.memory.cache, 2048);
    assert_eq!(
        s.memory.raw,
        vec![("anon".into(), 4096), ("file".into(), 2048)]
    );
    assert!(s.memory.kernel.is_none());
    assert_eq!(
        s.pids,
        PidsStats {
            current: 2,
            limit: None
        }
    );
    assert_eq!(s.blkio.service_bytes.len(), 2);
    assert_eq!(s.blkio.serviced[1].op, "Write");
    assert_eq!(cg.oom_kills(), 1);
    // Limits set: numbers, and swap's limit is memory + swap as on v1.
    put(d.join("memory.max"), "1048576\n");
    put(d.join("memory.swap.max"), "1048576\n");
    put(d.join("pids.max"), "50\n");
    let s = cg.detailed_stats().unwrap();
    assert_eq!(s.memory.usage.limit, 1 << 20);
    assert_eq!(s.memory.swap.unwrap().limit, 2 << 20);
    assert_eq!(s.pids.limit, Some(50));
    // A kernel without swap accounting or memory.peak: no swap entry, max 0.
    std::fs::remove_file(d.join("memory.swap.current")).unwrap();
    std::fs::remove_file(d.join("memory.peak")).unwrap();
    let s = cg.detailed_stats().unwrap();
    assert!(s.memory.swap.is_none());
    assert_eq!(s.memory.usage.max, 0);
}

#[test]
fn cgroups_v1_detailed_stats() {
    let (_tmp, base, m) = fake_v1();
    let cg = m
        .create(
            "s",
            &Resources {
                cpu_shares: Some(1024),
                ..Default::default()
            },
        )
        .unwrap();
    let acct = base.join("cpuacct/gcr/s");
    put(acct.join("cpuacct.usage"), "3000\n");
    put(acct.join("cpuacct.usage_percpu"), "1000 2000 \n");
    put(
        acct.join("cpuacct.usage_all"),
        "cpu user system\n0 600 400\n1 1500 500\n",
    );
    put(acct.join("cpuacct.stat"), "user 2\nsystem 1\n");
    put(
        base.join("cpu/gcr/s/cpu.stat"),
        "nr_periods 5\nnr_throttled 1\nthrottled_time 77\n",
    );
    let mem = base.join("memory/gcr/s");
    for (f, v) in [
        ("memory.usage_in_bytes", "4096"),
        ("memory.max_usage_in_bytes", "8192"),
        ("memory.limit_in_bytes", "9223372036854771712"),
        ("memory.failcnt", "0"),
        ("memory.memsw.usage_in_bytes", "4096"),
        ("memory.memsw.max_usage_in_bytes", "8192"),
        ("memory.memsw.limit_in_bytes", "9223372036854771712"),
        ("memory.memsw.failcnt", "0"),
        ("memory.stat", "cache 10\nrss 20\ntotal_cache 11\n"),
        (
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        ),
    ] {
        put(mem.join(f), v);
    }
    put(base.join("pids/gcr/s/pids.current"), "1\n");
    put(base.join("pids/gcr/s/pids.max"), "max\n");
    let s = cg.detailed_stats().unwrap();
    assert_eq!(s.cpu.total, 3000);
    assert_eq!(s.cpu.percpu, vec![1000, 2000]);
    assert_eq!(s.cpu.percpu_user, vec![600, 1500]);
    assert_eq!(s.cpu.percpu_kernel, vec![400, 500]);
    assert!(s.cpu.user > 0 && s.cpu.kernel > 0 && s.cpu.user == 2 * s.cpu.kernel);
    assert_eq!(
        (s.cpu.periods, s.cpu.throttled_periods, s.cpu.throttled_time),
        (5, 1, 77)
    );
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.max, 8192);
    assert_eq!(s.memory.usage.limit, 9223372036854771712);
    assert!(s.memory.swap.is_some());
    assert!(s.memory.kernel.is_none(), "no kmem files");
    assert_eq!(s.memory.cache, 11);
    assert_eq!(s.memory.raw.len(), 3);
    assert_eq!(
        s.pids,
        PidsStats {
            current: 1,
            limit: None
        }
    );
    assert!(s.blkio.service_bytes.is_empty());
    assert_eq!(cg.oom_kills(), 2);
}
