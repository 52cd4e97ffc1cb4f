//! [`Held`]: the figures read through files held open equal those read by path (fake v1
//! and v2 cgroupfs), follow the files as they change, and fail once a real group is gone.

use super::tests_fake::{fake_v1, fake_v2};
use super::testutil::is_root_or_skip;
use super::*;

#[test]
fn cgroups_held_v2_figures_are_those_read_by_path_and_follow_the_files() {
    let (_tmp, root, m) = fake_v2();
    let cg = m.create("h", &Resources::default()).unwrap();
    let d = root.join("gcr/h");
    let put = |f: &str, t: &str| std::fs::write(d.join(f), t).unwrap();
    put("memory.current", "1000000\n");
    put("memory.stat", "anon 1\ninactive_file 400000\n");
    put("memory.max", "max\n");
    put("cpu.stat", "usage_usec 1234\n");
    put("pids.current", "3\n");
    put("pids.max", "50\n");
    put("memory.events", "oom 2\noom_kill 2\n");
    std::fs::write(
        d.join("io.stat"),
        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n",
    )
    .unwrap();
    put("cgroup.procs", "2147480001\n");
    let held = cg.hold();
    assert_eq!(held.stats().unwrap(), cg.stats().unwrap());
    assert_eq!(held.stats().unwrap().memory_usage, 600000);
    assert_eq!(held.oom_kills(), 2);
    assert_eq!(held.procs(), vec![2147480001]);
    assert_eq!(held.block_io(), cg.block_io());
    assert_eq!(held.block_io().service_bytes.len(), 2);
    // Rewritten in place (as the kernel renders them afresh): the held files see it, a
    // longer text included.
    put("memory.current", "123456789012\n");
    put("memory.max", "2000000000000\n");
    put("pids.current", "7\n");
    let s = held.stats().unwrap();
    assert_eq!(s, cg.stats().unwrap());
    assert_eq!(
        (s.memory_usage, s.memory_limit, s.pids_current),
        (123456389012, Some(2000000000000), 7)
    );
    // A file absent at opening reads as absent (a counter 0, a limit none), like by path.
    std::fs::remove_file(d.join("pids.max")).unwrap();
    let later = cg.hold();
    assert_eq!(later.stats().unwrap().pids_limit, None);
    assert_eq!(later.stats().unwrap(), cg.stats().unwrap());
    // A bad number is an error, not a figure.
    put("pids.current", "many\n");
    assert!(held.stats().is_err());
}

#[test]
fn cgroups_held_v1_figures_are_those_read_by_path() {
    let (_tmp, base, m) = fake_v1();
    let cg = m.create("h", &Resources::default()).unwrap();
    let mem = base.join("memory/gcr/h");
    std::fs::write(mem.join("memory.usage_in_bytes"), "5000\n").unwrap();
    std::fs::write(
        mem.join("memory.stat"),
        "cache 1\ntotal_inactive_file 1000\n",
    )
    .unwrap();
    std::fs::write(mem.join("memory.limit_in_bytes"), "8000\n").unwrap();
    std::fs::write(mem.join("memory.oom_control"), "under_oom 0\noom_kill 3\n").unwrap();
    std::fs::write(base.join("cpuacct/gcr/h/cpuacct.usage"), "777\n").unwrap();
    std::fs::write(base.join("pids/gcr/h/pids.current"), "2\n").unwrap();
    std::fs::write(base.join("pids/gcr/h/pids.max"), "max\n").unwrap();
    std::fs::write(base.join("pids/gcr/h/cgroup.procs"), "2147480002\n").unwrap();
    let held = cg.hold();
    let s = held.stats().unwrap();
    assert_eq!(s, cg.stats().unwrap());
    assert_eq!(
        (s.memory_usage, s.memory_limit, s.cpu_usage_ns),
        (4000, Some(8000), 777)
    );
    assert_eq!(held.oom_kills(), 3);
    assert_eq!(held.oom_kills(), cg.oom_kills());
    assert_eq!(held.procs(), cg.procs());
    assert_eq!(held.procs(), vec![2147480002]);
}

#[test]
fn cgroups_held_files_fail_once_the_real_group_is_removed() {
    if !is_root_or_skip() {
        return;
    }
    let m = CgroupManager::detect().unwrap();
    let id = format!("test-held-{}", std::process::id());
    let cg = m
        .create(
            &id,
            &Resources {
                memory: Some(64 << 20),
                pids: Some(30),
                ..Default::default()
            },
        )
        .unwrap();
    let held = cg.hold();
    let first = held.stats();
    let again = held.stats();
    let by_path = cg.stats();
    // The group goes away while its files are held: removal is not held up by them.
    let destroyed = cg.destroy();
    let after = held.stats();
    let s = first.unwrap();
    assert_eq!(s.memory_limit, Some(64 << 20));
    assert_eq!(s.pids_limit, Some(30));
    assert_eq!(again.unwrap(), by_path.unwrap());
    destroyed.unwrap();
    assert!(cg.paths().iter().all(|p| !p.exists()));
    assert!(
        after.is_err(),
        "a removed group's held files read {after:?}"
    );
}
