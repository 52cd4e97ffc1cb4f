//! Timing loop for spawn + wait of `/bin/true` in a busybox overlay (root only).
//!
//! `cargo run --release -p gcr-runtime --example spawn_bench -- [N] [ROOTFS_LOWER]`
//! prints the median and mean wall time of spawn+wait over N runs (default 200). Without
//! ROOTFS_LOWER a busybox root is built in a temp dir. Environment: BENCH_CGROUP=1 creates a
//! cgroup per run, BENCH_HOSTNET=1 skips the network namespace, BENCH_NO_CGMOUNT=1 drops the
//! /sys/fs/cgroup mount of oci-spec's default spec (gcr's engine does not add one).

use std::os::unix::fs::symlink;
use std::time::Instant;

use gcr_runtime::{spawn, wait_exit, Launch, Network, Rootfs, SeccompMode, Stdio};
use oci_spec::runtime::{Capability, LinuxCapabilitiesBuilder, ProcessBuilder, Spec};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let tmp = tempfile::tempdir().expect("temp dir");
    let lower = match args.next() {
        Some(p) => p.into(),
        None => {
            let l = tmp.path().join("lower");
            for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
                std::fs::create_dir_all(l.join(d)).expect("mkdir");
            }
            std::fs::copy("/bin/busybox", l.join("bin/busybox")).expect("copy busybox");
            for a in ["true", "sh"] {
                symlink("busybox", l.join("bin").join(a)).expect("symlink");
            }
            l
        }
    };
    let mut spec = Spec::default();
    let process = ProcessBuilder::default()
        .args(vec!["/bin/true".to_string()])
        .env(vec!["PATH=/bin".to_string()])
        .cwd("/")
        .no_new_privileges(false)
        .capabilities(docker_caps())
        .build()
        .expect("process");
    spec.set_process(Some(process));
    if std::env::var("BENCH_NO_CGMOUNT").is_ok() {
        let mounts: Vec<_> = spec
            .mounts()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ().as_deref() != Some("cgroup"))
            .collect();
        spec.set_mounts(Some(mounts));
    }
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    let with_cgroup = std::env::var("BENCH_CGROUP").is_ok();
    let mut times = Vec::with_capacity(n);
    let mut spawn_times = Vec::with_capacity(n);
    for i in 0..n {
        let base = tmp.path().join(format!("c{}", i % 8));
        for d in ["upper", "work", "rootfs"] {
            std::fs::create_dir_all(base.join(d)).expect("mkdir");
        }
        let t = Instant::now();
        let r = spawn(Launch {
            id: &format!("bench{i}"),
            spec: &spec,
            rootfs: Rootfs::Overlay {
                lowers: vec![lower.clone()],
                upper: base.join("upper"),
                work: base.join("work"),
                target: base.join("rootfs"),
                volatile: true,
            },
            stdio: Stdio::Inherit,
            seccomp: SeccompMode::DockerDefault,
            init: false,
            cgroup_resources: with_cgroup.then(Default::default),
            network: if std::env::var("BENCH_HOSTNET").is_ok() {
                Network::Host
            } else {
                Network::NewLoopback
            },
            while_starting: None,
            gate: false,
            secrets: Vec::new(),
        })
        .expect("spawn");
        spawn_times.push(t.elapsed().as_secs_f64() * 1000.0);
        let st = wait_exit(&r).expect("wait");
        if let Some(cg) = &r.cgroup {
            let _ = cg.destroy();
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(st.code(), 0);
    }
    let mut base = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let st = std::process::Command::new(lower.join("bin/true"))
            .status()
            .expect("baseline");
        base.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(st.success());
    }
    base.sort_by(|a, b| a.total_cmp(b));
    println!(
        "baseline fork+exec+wait of the same /bin/true without isolation: median={:.3} ms",
        base[n / 2]
    );
    let mean = times.iter().sum::<f64>() / n as f64;
    times.sort_by(|a, b| a.total_cmp(b));
    spawn_times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "spawn alone (until exec): median={:.3} ms",
        spawn_times[n / 2]
    );
    println!(
        "spawn+wait /bin/true: n={n} median={:.3} ms mean={mean:.3} ms p10={:.3} p90={:.3} (cgroup: {with_cgroup})",
        times[n / 2],
        times[n / 10],
        times[n * 9 / 10]
    );
}

/// Docker's default capability set (its seccomp program is precompiled).
fn docker_caps() -> oci_spec::runtime::LinuxCapabilities {
    use Capability::*;
    let set: std::collections::HashSet<Capability> = [
        Chown,
        DacOverride,
        Fsetid,
        Fowner,
        Mknod,
        NetRaw,
        Setgid,
        Setuid,
        Setfcap,
        Setpcap,
        NetBindService,
        SysChroot,
        Kill,
        AuditWrite,
    ]
    .into_iter()
    .collect();
    LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .build()
        .expect("capabilities")
}
