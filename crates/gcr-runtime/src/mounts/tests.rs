//! Mount plans and their application.

use super::*;

#[test]
fn finds_host_hierarchies() {
    let mi = "31 27 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 27 0:39 / /mnt/other rw - cgroup cgroup rw,pids
";
    let h = host_hierarchies(mi);
    assert_eq!(
        h,
        vec![
            ("cpu".into(), "cgroup".into(), "cpu".into()),
            (
                "systemd".into(),
                "cgroup".into(),
                "xattr,name=systemd".into()
            ),
            ("unified".into(), "cgroup2".into(), String::new()),
        ]
    );
}

#[test]
fn long_overlay_options_use_relative_paths() {
    let base = PathBuf::from("/var/lib/gcr/snapshots");
    let lowers: Vec<PathBuf> = (0..200).map(|i| base.join(format!("{i:04}/fs"))).collect();
    let step = overlay_step(
        &lowers,
        &base.join("c/upper"),
        &base.join("c/work"),
        Path::new("/t"),
    )
    .unwrap();
    match step {
        RootStep::Overlay {
            chdir: Some(dir),
            opts,
            ..
        } => {
            assert_eq!(dir.to_str().unwrap(), "/var/lib/gcr/snapshots");
            let o = opts.to_str().unwrap();
            assert!(o.starts_with("lowerdir=0000/fs:0001/fs:"), "{o}");
            assert!(o.ends_with(",upperdir=c/upper,workdir=c/work"), "{o}");
            assert!(o.len() < 4096);
        }
        _ => panic!("expected a relative overlay step"),
    }
    let short = overlay_step(
        &lowers[..2],
        &base.join("c/upper"),
        &base.join("c/work"),
        Path::new("/t"),
    )
    .unwrap();
    assert!(matches!(short, RootStep::Overlay { chdir: None, .. }));
    assert!(overlay_step(&[PathBuf::from("/a,b")], &base, &base, Path::new("/t")).is_err());
}
