//! The OCI-only limits (block I/O, hugetlb, memory extras) against a fake cgroupfs: exactly
//! the files runc 1.1 writes, nothing without a request, and a missing controller refused.

use std::path::Path;

use super::tests_fake::{fake_v1, fake_v2};
use super::*;

const V2_EXTRA: &[&str] = &[
    "cgroup.procs",
    "cgroup.subtree_control",
    "memory.low",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
    "hugetlb.1GB.max",
];

fn populate_v2_extra(dir: &Path) {
    for f in V2_EXTRA {
        std::fs::write(dir.join(f), "").unwrap();
    }
}

fn rd(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn throttle(major: i64, minor: i64, rate: u64) -> Throttle {
    Throttle { major, minor, rate }
}

fn extra_res() -> Resources {
    Resources {
        memory_reservation: Some(32 << 20),
        memory_swappiness: Some(10),
        disable_oom_killer: true,
        hugetlb: vec![("2MB".into(), 4 << 20)],
        block_io: Some(Box::new(BlockIo {
            weight: Some(500),
            read_bps: vec![throttle(8, 0, 1_048_576)],
            write_iops: vec![throttle(8, 0, 100)],
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[test]
fn cgroups_v2_extras_write_runc_files() {
    let (_tmp, root, mut m) = fake_v2();
    m.mkdir_hook = Some(populate_v2_extra);
    m.create("x", &extra_res()).unwrap();
    let d = root.join("gcr/x");
    assert_eq!(rd(d.join("memory.low")), "33554432");
    // No BFQ here: the weight goes to io.weight, converted as runc does.
    assert_eq!(rd(d.join("io.weight")), "4950");
    assert_eq!(rd(d.join("io.max")), "8:0 rbps=1048576 wiops=100");
    assert_eq!(rd(d.join("hugetlb.2MB.max")), "4194304");
    assert_eq!(rd(d.join("hugetlb.1GB.max")), "", "not asked for");
    // io and hugetlb were enabled for the group's parents.
    let ctl = rd(root.join("gcr/cgroup.subtree_control"));
    assert!(ctl.contains("+io") && ctl.contains("+hugetlb"), "{ctl}");
    assert_eq!(extra::blkio_to_io_weight(10), 1);
    assert_eq!(extra::blkio_to_io_weight(1000), 10_000);
}

#[test]
fn cgroups_v2_extras_untouched_without_request() {
    let (_tmp, root, mut m) = fake_v2();
    m.mkdir_hook = Some(populate_v2_extra);
    m.create("z", &Resources::default()).unwrap();
    for f in V2_EXTRA {
        assert_eq!(rd(root.join("gcr/z").join(f)), "", "{f} written");
    }
    let ctl = rd(root.join("gcr/cgroup.subtree_control"));
    assert!(!ctl.contains("io") && !ctl.contains("hugetlb"), "{ctl}");
}

#[test]
fn cgroups_v2_bfq_takes_weights_as_given() {
    let (_tmp, root, mut m) = fake_v2();
    m.mkdir_hook = Some(|d| {
        populate_v2_extra(d);
        std::fs::write(d.join("io.bfq.weight"), "").unwrap();
    });
    let res = Resources {
        block_io: Some(Box::new(BlockIo {
            weight_device: vec![WeightDevice {
                major: 8,
                minor: 16,
                weight: Some(300),
                leaf_weight: None,
            }],
            ..Default::default()
        })),
        ..Default::default()
    };
    m.create("b", &res).unwrap();
    assert_eq!(rd(root.join("gcr/b/io.bfq.weight")), "8:16 300");
    assert_eq!(rd(root.join("gcr/b/io.weight")), "");
}

#[test]
fn cgroups_v2_missing_hugetlb_file_fails_cleanly() {
    let (_tmp, _root, mut m) = fake_v2();
    m.mkdir_hook = Some(populate_v2_extra);
    let res = Resources {
        hugetlb: vec![("64KB".into(), 1)],
        ..Default::default()
    };
    let e = m.create("h", &res).unwrap_err();
    assert!(e.to_string().contains("hugetlb.64KB.max"), "{e}");
    let bad = Resources {
        hugetlb: vec![("../x".into(), 1)],
        ..Default::default()
    };
    assert!(matches!(m.create("i", &bad), Err(CgroupError::Invalid(_))));
    let bad = Resources {
        memory_swappiness: Some(101),
        ..Default::default()
    };
    assert!(matches!(m.create("j", &bad), Err(CgroupError::Invalid(_))));
}

#[test]
fn cgroups_v1_extras_write_runc_files() {
    let (_tmp, base, _) = fake_v1();
    let mut mi = String::new();
    for (i, c) in ["memory", "blkio", "hugetlb"].iter().enumerate() {
        std::fs::create_dir_all(base.join(c)).unwrap();
        mi += &format!(
            "{} 31 0:{} / {} rw - cgroup cgroup rw,{c}\n",
            50 + i,
            60 + i,
            base.join(c).display()
        );
    }
    let mut m = CgroupManager::from_mountinfo(&mi).unwrap();
    m.mkdir_hook = Some(|d| {
        for f in [
            "tasks",
            "cgroup.procs",
            "memory.soft_limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
            "blkio.bfq.weight",
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_iops_device",
            "hugetlb.2MB.limit_in_bytes",
        ] {
            std::fs::write(d.join(f), "").unwrap();
        }
    });
    m.create("plain", &Resources::default()).unwrap();
    assert!(
        !base.join("blkio/gcr/plain").exists(),
        "no blkio group unasked"
    );
    assert!(!base.join("hugetlb/gcr/plain").exists());
    let cg = m.create("c", &extra_res()).unwrap();
    let mem = base.join("memory/gcr/c");
    assert_eq!(rd(mem.join("memory.soft_limit_in_bytes")), "33554432");
    assert_eq!(rd(mem.join("memory.swappiness")), "10");
    assert_eq!(rd(mem.join("memory.oom_control")), "1");
    let b = base.join("blkio/gcr/c");
    assert_eq!(rd(b.join("blkio.bfq.weight")), "500");
    assert_eq!(rd(b.join("blkio.throttle.read_bps_device")), "8:0 1048576");
    assert_eq!(rd(b.join("blkio.throttle.write_iops_device")), "8:0 100");
    assert_eq!(
        rd(base.join("hugetlb/gcr/c/hugetlb.2MB.limit_in_bytes")),
        "4194304"
    );
    assert_eq!(cg.paths().len(), 3);
    // Without a hugetlb hierarchy the limit cannot be set: refused, nothing left.
    let mi2: String = mi.lines().take(2).map(|l| format!("{l}\n")).collect();
    let mut m2 = CgroupManager::from_mountinfo(&mi2).unwrap();
    m2.mkdir_hook = m.mkdir_hook;
    let e = m2
        .create(
            "d",
            &Resources {
                hugetlb: vec![("2MB".into(), 1)],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(e, CgroupError::NoController("hugetlb")), "{e}");
}

#[test]
fn cgroups_cpu_period_as_given() {
    let (_tmp, root, m) = fake_v2();
    let res = Resources {
        cpus: Some(0.5),
        cpu_period: Some(50_000),
        ..Default::default()
    };
    m.create("p", &res).unwrap();
    assert_eq!(rd(root.join("gcr/p/cpu.max")), "25000 50000");
    let (_tmp1, base, m1) = fake_v1();
    m1.create("p", &res).unwrap();
    assert_eq!(rd(base.join("cpu/gcr/p/cpu.cfs_period_us")), "50000");
    assert_eq!(rd(base.join("cpu/gcr/p/cpu.cfs_quota_us")), "25000");
}

#[test]
fn device_rules_bad_ones_are_refused_and_a_failed_attach_leaves_no_group() {
    let (_tmp, root, mut m) = fake_v2();
    // Empty group directories, so that removing one works as on cgroupfs (the parent
    // made by hand).
    m.mkdir_hook = Some(|_| {});
    std::fs::create_dir(root.join("gcr")).unwrap();
    std::fs::write(root.join("gcr/cgroup.subtree_control"), "").unwrap();
    let rule = |allow, s| devices::DeviceRule::parse(allow, s).unwrap();
    // A hole in a wildcard: refused before anything exists.
    let holes = Resources {
        devices: Some(vec![
            rule(false, "a"),
            rule(true, "c 1:* rw"),
            rule(false, "c 1:3 r"),
        ]),
        ..Default::default()
    };
    let e = m.create("d", &holes).unwrap_err();
    assert!(matches!(e, CgroupError::Invalid(_)), "{e}");
    assert!(!root.join("gcr/d").exists());
    // A directory of a temp dir is no cgroup: the program cannot be attached (or, without
    // root, loaded), and the half-made group goes.
    let ok = Resources {
        devices: Some(vec![rule(false, "a"), rule(true, "c 1:3 rwm")]),
        ..Default::default()
    };
    let e = m.create("d", &ok).unwrap_err().to_string();
    assert!(e.contains("device program"), "{e}");
    assert!(!root.join("gcr/d").exists());
    // v1 leaves device rules to its caller's devices group.
    let (_tmp1, base, m1) = fake_v1();
    m1.create("d", &ok).unwrap();
    assert!(base.join("memory/gcr/d").exists());
}

#[test]
fn cgroups_v2_unified_written_last_and_checked() {
    let (_tmp, root, mut m) = fake_v2();
    m.mkdir_hook = Some(|d| {
        populate_v2_extra(d);
        for f in ["memory.high", "pids.max"] {
            std::fs::write(d.join(f), "").unwrap();
        }
    });
    let res = Resources {
        unified: vec![
            ("memory.high".into(), "1000000".into()),
            ("pids.max".into(), "9".into()),
        ],
        ..Default::default()
    };
    m.create("u", &res).unwrap();
    let d = root.join("gcr/u");
    assert_eq!(rd(d.join("memory.high")), "1000000");
    assert_eq!(rd(d.join("pids.max")), "9");
    let ctl = rd(root.join("gcr/cgroup.subtree_control"));
    assert!(ctl.contains("+memory") && ctl.contains("+pids"), "{ctl}");
    // A file the kernel does not offer: refused, naming the controller.
    let missing = Resources {
        unified: vec![("rdma.max".into(), "x".into())],
        ..Default::default()
    };
    let e = m.create("v", &missing).unwrap_err().to_string();
    assert!(e.contains("rdma.max") && e.contains("\"rdma\""), "{e}");
    for bad in ["cgroup.procs", "memory", "../memory.max", ".high"] {
        let r = Resources {
            unified: vec![(bad.into(), "1".into())],
            ..Default::default()
        };
        let e = m.create("w", &r).unwrap_err().to_string();
        assert!(e.contains("unified key"), "{bad}: {e}");
    }
}

#[test]
fn cgroups_v1_refuses_unified() {
    let (_tmp, base, _) = fake_v1();
    std::fs::create_dir_all(base.join("memory")).unwrap();
    let mi = format!(
        "50 31 0:60 / {} rw - cgroup cgroup rw,memory\n",
        base.join("memory").display()
    );
    let mut m = CgroupManager::from_mountinfo(&mi).unwrap();
    m.mkdir_hook = Some(|d| {
        for f in ["tasks", "cgroup.procs"] {
            std::fs::write(d.join(f), "").unwrap();
        }
    });
    let res = Resources {
        unified: vec![("memory.high".into(), "1".into())],
        ..Default::default()
    };
    let e = m.create("u", &res).unwrap_err().to_string();
    assert!(e.contains("cgroup v2"), "{e}");
}

#[test]
fn a_v2_update_enables_the_controller_a_new_limit_needs() {
    let (_tmp, root, m) = fake_v2();
    let cg = m.create("x", &Resources::default()).unwrap();
    // As on a real v2 host, every group has cgroup.controllers.
    std::fs::write(root.join("gcr/cgroup.controllers"), "cpu io memory pids").unwrap();
    std::fs::write(root.join("cgroup.subtree_control"), "cpu memory pids").unwrap();
    let res = Resources {
        block_io: Some(Box::new(BlockIo {
            weight: Some(500),
            ..Default::default()
        })),
        ..Default::default()
    };
    // io.weight is missing (the parents do not enable io): io is enabled in the root and
    // in `gcr`, then the limit is written again (the fake kernel makes no file: it fails).
    assert!(cg.update(&res).is_err());
    assert!(rd(root.join("cgroup.subtree_control")).contains("+io"));
    assert!(rd(root.join("gcr/cgroup.subtree_control")).contains("+io"));
    // With the file there (as the kernel makes it once io is enabled) the update holds.
    std::fs::write(root.join("gcr/x/io.weight"), "").unwrap();
    cg.update(&res).unwrap();
    assert_eq!(rd(root.join("gcr/x/io.weight")), "4950");
}
