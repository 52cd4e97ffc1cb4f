//! cpusets against the fake cgroupfs of `tests_fake`: v1 gives each new level its parent's
//! CPUs and memory nodes before the requested ones are written; v2 writes the two files;
//! neither makes or touches a cpuset group that was not asked for.

use super::tests_fake::{fake_v1, fake_v2};
use super::*;

fn rd(p: impl AsRef<std::path::Path>) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn cgroups_v1_cpuset_levels_inherit_then_take_the_request() {
    let (_tmp, base, m) = fake_v1();
    let mount = base.join("cpuset");
    std::fs::write(mount.join("cpuset.cpus"), "0-1\n").unwrap();
    std::fs::write(mount.join("cpuset.mems"), "0\n").unwrap();
    let res = Resources {
        cpuset_cpus: Some("0".into()),
        ..Default::default()
    };
    let cg = m.create("s", &res).unwrap();
    // The new `gcr` level got the root's lists, the container's group its own CPU list and
    // the parent's memory nodes (no task could join a group with either empty).
    assert_eq!(rd(mount.join("gcr/cpuset.cpus")), "0-1");
    assert_eq!(rd(mount.join("gcr/cpuset.mems")), "0");
    assert_eq!(rd(mount.join("gcr/s/cpuset.cpus")), "0");
    assert_eq!(rd(mount.join("gcr/s/cpuset.mems")), "0");
    assert!(cg.paths().iter().any(|p| p.starts_with(&mount)));
    // An update moves it.
    cg.update(&Resources {
        cpuset_cpus: Some("1".into()),
        cpuset_mems: Some("0".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(rd(mount.join("gcr/s/cpuset.cpus")), "1");
    // Without a cpuset request no cpuset group is made.
    m.create("t", &Resources::default()).unwrap();
    assert!(!mount.join("gcr/t").exists());
}

#[test]
fn cgroups_v2_cpuset_writes_both_lists() {
    let (_tmp, root, m) = fake_v2();
    let res = Resources {
        cpuset_cpus: Some("0-1".into()),
        cpuset_mems: Some("0".into()),
        ..Default::default()
    };
    m.create("c", &res).unwrap();
    assert_eq!(rd(root.join("gcr/c/cpuset.cpus")), "0-1");
    assert_eq!(rd(root.join("gcr/c/cpuset.mems")), "0");
    m.create("d", &Resources::default()).unwrap();
    assert_eq!(
        rd(root.join("gcr/d/cpuset.cpus")),
        "",
        "not requested, not written"
    );
}

#[test]
fn unavailable_cpus_are_refused_before_any_group_is_made() {
    let (_tmp, root, m) = fake_v2();
    let res = Resources {
        cpuset_cpus: Some("0-4095".into()),
        ..Default::default()
    };
    let e = m.create("x", &res).unwrap_err().to_string();
    assert!(
        e.contains("--cpuset-cpus") && e.contains("is not available"),
        "{e}"
    );
    assert!(!root.join("gcr/x").exists());
}
