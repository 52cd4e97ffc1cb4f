//! Unit tests against a fake cgroupfs in a temp dir: control files are pre-created (a mkdir
//! hook plays the kernel's part of populating new groups) and the tests assert exactly what
//! was written and what was left alone.

use std::path::{Path, PathBuf};

use super::*;

const V2_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.subtree_control",
    "cgroup.freeze",
    "cgroup.events",
    "cgroup.kill",
    "memory.max",
    "memory.swap.max",
    "memory.events",
    "memory.current",
    "memory.stat",
    "cpu.max",
    "cpu.weight",
    "cpu.stat",
    "pids.max",
    "pids.current",
    "cpuset.cpus",
    "cpuset.mems",
];

const V1_FILES: &[&str] = &[
    "cgroup.procs",
    "tasks",
    "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "memory.oom_control",
    "memory.usage_in_bytes",
    "memory.stat",
    "cpu.cfs_quota_us",
    "cpu.cfs_period_us",
    "cpu.shares",
    "cpuacct.usage",
    "pids.max",
    "pids.current",
    "freezer.state",
    "cpuset.cpus",
    "cpuset.mems",
];

fn populate_v2(dir: &Path) {
    for f in V2_FILES {
        std::fs::write(dir.join(f), "").unwrap();
    }
}

fn populate_v1(dir: &Path) {
    for f in V1_FILES {
        std::fs::write(dir.join(f), "").unwrap();
    }
}

fn rd(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// Removes the plain files the hook created, as the kernel would on rmdir.
fn strip_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
}

pub(super) fn fake_v2() -> (tempfile::TempDir, PathBuf, CgroupManager) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cg");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    )
    .unwrap();
    std::fs::write(root.join("cgroup.subtree_control"), "cpu memory\n").unwrap();
    let mi = format!(
        "30 20 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        root.display()
    );
    let mut m = CgroupManager::from_mountinfo(&mi).unwrap();
    m.mkdir_hook = Some(populate_v2);
    (tmp, root, m)
}

#[test]
fn cgroups_v2_create_writes_exact_files() {
    let (_tmp, root, m) = fake_v2();
    assert_eq!(m.version(), CgroupVersion::V2);
    let res = Resources {
        memory: Some(64 << 20),
        cpus: Some(1.5),
        pids: Some(100),
        ..Default::default()
    };
    let cg = m.create("c1", &res).unwrap();
    // The gcr parent was new: missing controllers enabled in the root, all in gcr.
    // Written in place without truncation, as on cgroupfs (the fake kept "cpu memory\n").
    assert_eq!(rd(root.join("cgroup.subtree_control")), "+pids +cpuset");
    assert_eq!(
        rd(root.join("gcr/cgroup.subtree_control")),
        "+memory +cpu +pids +cpuset"
    );
    let d = root.join("gcr/c1");
    assert_eq!(rd(d.join("memory.max")), "67108864");
    assert_eq!(rd(d.join("memory.swap.max")), "67108864");
    assert_eq!(rd(d.join("cpu.max")), "150000 100000");
    assert_eq!(rd(d.join("pids.max")), "100");
    assert_eq!(rd(d.join("cpu.weight")), "", "cpu.weight not requested");
    assert_eq!(rd(d.join("cgroup.procs")), "");
    cg.add_pid(4242).unwrap();
    assert_eq!(rd(d.join("cgroup.procs")), "4242");
    let fd = cg.v2_dir_fd();
    assert!(fd.is_some());
    assert!(
        matches!(cg.join(), Ok(Join::IntoCgroup(_))),
        "v2 joins with clone3(CLONE_INTO_CGROUP)"
    );
    strip_files(&d);
    cg.destroy().unwrap();
    assert!(!d.exists());
    assert!(root.join("gcr").exists(), "the parent stays");
}

#[test]
fn cgroups_v2_existing_parent_and_no_limits_writes_nothing() {
    let (_tmp, root, m) = fake_v2();
    m.create("first", &Resources::default()).unwrap();
    std::fs::write(root.join("cgroup.subtree_control"), "sentinel").unwrap();
    std::fs::write(root.join("gcr/cgroup.subtree_control"), "sentinel").unwrap();
    let cg = m.create("second", &Resources::default()).unwrap();
    assert_eq!(rd(root.join("cgroup.subtree_control")), "sentinel");
    assert_eq!(rd(root.join("gcr/cgroup.subtree_control")), "sentinel");
    for f in V2_FILES {
        assert_eq!(
            rd(root.join("gcr/second").join(f)),
            "",
            "{f} written without a request"
        );
    }
    assert_eq!(cg.paths(), vec![root.join("gcr/second").as_path()]);
}

#[test]
fn cgroups_v2_swap_shares_and_unlimited() {
    let (_tmp, root, m) = fake_v2();
    let res = Resources {
        memory: Some(100),
        memory_swap: Some(-1),
        cpu_shares: Some(1024),
        pids: Some(-1),
        ..Default::default()
    };
    m.create("a", &res).unwrap();
    let d = root.join("gcr/a");
    assert_eq!(rd(d.join("memory.swap.max")), "max");
    assert_eq!(rd(d.join("cpu.weight")), "39");
    assert_eq!(
        rd(d.join("pids.max")),
        "",
        "pids -1 is unlimited: nothing written"
    );
    let res = Resources {
        memory: Some(100),
        memory_swap: Some(300),
        ..Default::default()
    };
    m.create("b", &res).unwrap();
    assert_eq!(rd(root.join("gcr/b/memory.swap.max")), "200");
    assert_eq!(v2::shares_to_weight(2), 1);
    assert_eq!(v2::shares_to_weight(262_144), 10_000);
}

#[test]
fn cgroups_invalid_input_is_refused_before_touching_disk() {
    let (_tmp, root, m) = fake_v2();
    let bad = [
        Resources {
            cpus: Some(0.0),
            ..Default::default()
        },
        Resources {
            cpus: Some(f64::NAN),
            ..Default::default()
        },
        Resources {
            memory_swap: Some(10),
            ..Default::default()
        },
        Resources {
            memory: Some(100),
            memory_swap: Some(50),
            ..Default::default()
        },
        Resources {
            memory: Some(0),
            ..Default::default()
        },
    ];
    for r in &bad {
        let e = m.create("x", r).unwrap_err();
        assert!(matches!(e, CgroupError::Invalid(_)), "{e}");
    }
    for id in ["", "..", "a/b", "a b"] {
        assert!(matches!(
            m.create(id, &Resources::default()),
            Err(CgroupError::BadId(_))
        ));
    }
    assert!(!root.join("gcr").exists());
}

#[test]
fn cgroups_v2_failed_limit_cleans_up() {
    let (_tmp, root, mut m) = fake_v2();
    // This "kernel" populates new groups with nothing: pids.max is missing.
    m.mkdir_hook = Some(|_| {});
    std::fs::create_dir(root.join("gcr")).unwrap();
    std::fs::write(root.join("gcr/cgroup.subtree_control"), "").unwrap();
    let e = m
        .create(
            "p",
            &Resources {
                pids: Some(5),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("pids.max"), "{e}");
    assert!(
        !root.join("gcr/p").exists(),
        "the half-made group was removed"
    );
    // The retry enabled the controllers in the existing parent.
    assert_eq!(
        rd(root.join("gcr/cgroup.subtree_control")),
        "+memory +cpu +pids +cpuset"
    );
}

#[test]
fn cgroups_v2_figures_freeze_kill_oom() {
    let (_tmp, root, m) = fake_v2();
    let cg = m.create("f", &Resources::default()).unwrap();
    let d = root.join("gcr/f");
    std::fs::write(d.join("memory.current"), "1000000\n").unwrap();
    std::fs::write(
        d.join("memory.stat"),
        "anon 1\ninactive_file 400000\nactive_file 5\n",
    )
    .unwrap();
    std::fs::write(d.join("memory.max"), "max\n").unwrap();
    std::fs::write(d.join("cpu.stat"), "usage_usec 1234\nuser_usec 1000\n").unwrap();
    std::fs::write(d.join("pids.current"), "3\n").unwrap();
    std::fs::write(d.join("pids.max"), "50\n").unwrap();
    let s = cg.stats().unwrap();
    assert_eq!(
        s,
        Stats {
            memory_usage: 600000,
            memory_limit: None,
            cpu_usage_ns: 1_234_000,
            pids_current: 3,
            pids_limit: Some(50)
        }
    );
    assert!(!cg.oom_killed());
    std::fs::write(
        d.join("memory.events"),
        "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n",
    )
    .unwrap();
    assert!(cg.oom_killed());
    std::fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    cg.freeze().unwrap();
    assert_eq!(rd(d.join("cgroup.freeze")), "1");
    assert!(cg.is_frozen());
    // Pids above any pid_max, so a fallback to kill(2) could never hit a host process.
    std::fs::write(d.join("cgroup.procs"), "2147480001\n2147480002\n").unwrap();
    assert_eq!(cg.procs(), vec![2147480001, 2147480002]);
    cg.kill_all(libc::SIGTERM);
    assert_eq!(rd(d.join("cgroup.kill")), "", "cgroup.kill only kills");
    cg.kill_all(libc::SIGKILL);
    assert_eq!(rd(d.join("cgroup.kill")), "1");
    // open() from a later process sees the same group.
    assert_eq!(m.open("f").procs(), vec![2147480001, 2147480002]);
}

pub(super) fn fake_v1() -> (tempfile::TempDir, PathBuf, CgroupManager) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("cgroup");
    let mut mi = String::new();
    for (i, c) in [
        "cpu", "cpuacct", "memory", "pids", "freezer", "devices", "cpuset",
    ]
    .iter()
    .enumerate()
    {
        std::fs::create_dir_all(base.join(c)).unwrap();
        mi += &format!(
            "{} 31 0:{} / {} rw - cgroup cgroup rw,{c}\n",
            32 + i,
            29 + i,
            base.join(c).display()
        );
    }
    std::fs::create_dir_all(base.join("unified")).unwrap();
    mi += &format!(
        "41 31 0:38 / {} rw - cgroup2 cgroup2 rw\n",
        base.join("unified").display()
    );
    let mut m = CgroupManager::from_mountinfo(&mi).unwrap();
    m.mkdir_hook = Some(populate_v1);
    (tmp, base, m)
}

#[test]
fn cgroups_v1_hybrid_create_writes_exact_files() {
    let (_tmp, base, m) = fake_v1();
    assert_eq!(m.version(), CgroupVersion::V1);
    let cg = m
        .create(
            "c",
            &Resources {
                memory: Some(100 << 20),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        rd(base.join("memory/gcr/c/memory.limit_in_bytes")),
        "104857600"
    );
    assert_eq!(
        rd(base.join("memory/gcr/c/memory.memsw.limit_in_bytes")),
        "209715200"
    );
    assert!(
        !base.join("cpu/gcr/c").exists(),
        "no cpu limit: the cpu hierarchy is not used"
    );
    assert!(!base.join("devices/gcr").exists());
    assert!(!base.join("unified/gcr").exists());
    for c in ["cpuacct", "pids", "freezer"] {
        let d = base.join(c).join("gcr/c");
        for f in V1_FILES {
            assert_eq!(rd(d.join(f)), "", "{c}/{f} written without a request");
        }
    }
    cg.add_pid(99).unwrap();
    for c in ["cpuacct", "memory", "pids", "freezer"] {
        assert_eq!(rd(base.join(c).join("gcr/c/cgroup.procs")), "99");
    }
    // open() knows the cpu hierarchy too but skips it because this group has no dir there.
    m.open("c").add_pid(100).unwrap();
    // Joining without a pid write: one `tasks` descriptor per hierarchy the group has (not
    // cpu), each taking "0" from the child.
    match m.open("c").join().unwrap() {
        Join::SelfTasks(fds) => {
            assert_eq!(fds.len(), 4);
            Join::SelfTasks(fds).enter_self().unwrap();
            for c in ["cpuacct", "memory", "pids", "freezer"] {
                assert_eq!(rd(base.join(c).join("gcr/c/tasks")), "0");
            }
        }
        Join::IntoCgroup(_) => panic!("v1 joins through tasks"),
    }
    std::fs::write(base.join("freezer/gcr/c/freezer.state"), "THAWED\n").unwrap();
    assert!(!cg.is_frozen());
    cg.freeze().unwrap();
    assert!(cg.is_frozen());
    for c in ["cpuacct", "memory", "pids", "freezer"] {
        strip_files(&base.join(c).join("gcr/c"));
    }
    m.open("c").destroy().unwrap();
    for c in ["cpu", "cpuacct", "memory", "pids", "freezer"] {
        assert!(!base.join(c).join("gcr/c").exists());
    }
}

#[test]
fn cgroups_v1_cpu_pids_swap_and_stats() {
    let (_tmp, base, m) = fake_v1();
    let res = Resources {
        memory: Some(1000),
        memory_swap: Some(-1),
        cpus: Some(0.5),
        cpu_shares: Some(512),
        pids: Some(20),
        ..Default::default()
    };
    let cg = m.create("k", &res).unwrap();
    assert_eq!(
        rd(base.join("memory/gcr/k/memory.memsw.limit_in_bytes")),
        ""
    );
    assert_eq!(rd(base.join("cpu/gcr/k/cpu.cfs_quota_us")), "50000");
    assert_eq!(
        rd(base.join("cpu/gcr/k/cpu.cfs_period_us")),
        "",
        "default period is not rewritten"
    );
    assert_eq!(rd(base.join("cpu/gcr/k/cpu.shares")), "512");
    assert_eq!(rd(base.join("pids/gcr/k/pids.max")), "20");
    let mem = base.join("memory/gcr/k");
    std::fs::write(mem.join("memory.usage_in_bytes"), "5000\n").unwrap();
    std::fs::write(
        mem.join("memory.stat"),
        "cache 1\ntotal_inactive_file 1000\n",
    )
    .unwrap();
    std::fs::write(mem.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
    std::fs::write(base.join("cpuacct/gcr/k/cpuacct.usage"), "777\n").unwrap();
    std::fs::write(base.join("pids/gcr/k/pids.current"), "2\n").unwrap();
    std::fs::write(base.join("pids/gcr/k/pids.max"), "max\n").unwrap();
    let s = cg.stats().unwrap();
    assert_eq!(
        s,
        Stats {
            memory_usage: 4000,
            memory_limit: None,
            cpu_usage_ns: 777,
            pids_current: 2,
            pids_limit: None
        }
    );
    std::fs::write(
        mem.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
    )
    .unwrap();
    assert!(!cg.oom_killed());
    std::fs::write(
        mem.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    )
    .unwrap();
    assert!(cg.oom_killed());
}

#[test]
fn cgroups_v1_without_swap_accounting_limits_memory_only() {
    let (_tmp, base, mut m) = fake_v1();
    m.mkdir_hook = Some(|dir| {
        populate_v1(dir);
        std::fs::remove_file(dir.join("memory.memsw.limit_in_bytes")).unwrap();
    });
    m.create(
        "s",
        &Resources {
            memory: Some(4096),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rd(base.join("memory/gcr/s/memory.limit_in_bytes")), "4096");
    assert!(!base
        .join("memory/gcr/s/memory.memsw.limit_in_bytes")
        .exists());
}

#[test]
fn cgroups_parent_dirs_are_those_of_the_hierarchies_in_use() {
    let (_tmp, base, m) = fake_v1();
    let mut dirs = m.parent_dirs();
    dirs.sort();
    let mut want: Vec<PathBuf> = ["cpu", "cpuacct", "cpuset", "freezer", "memory", "pids"]
        .iter()
        .map(|c| base.join(c).join(PARENT))
        .collect();
    want.sort();
    assert_eq!(dirs, want, "the devices and unified mounts are not gcr's");
    let (_tmp, root, m) = fake_v2();
    assert_eq!(m.parent_dirs(), vec![root.join(PARENT)]);
}
