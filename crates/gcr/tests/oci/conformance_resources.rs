//! The `linux.resources` rows of the conformance table: a `sleep` container per runtime
//! with its own cgroupsPath, the files read from the host (v1 names; the v2 files are
//! unit-tested in gcr-runtime against a fake cgroupfs).

use serde_json::json;

use super::conformance::{edit, v1_mount, Expect, Mode, Probe, Row};
use super::conformance_rows::{out, Ctx};

/// Resource rows (cgroup files read from the host).
pub(super) fn rows(ctx: &Ctx) -> Vec<Row> {
    let dev = ctx.blockdev.clone();
    let hugetlb = v1_mount("hugetlb").is_some();
    let blkio_weight = v1_mount("blkio")
        .is_some_and(|m| m.join("blkio.weight").exists() || m.join("blkio.bfq.weight").exists());
    let host = |files: &[(&'static str, &'static str)]| Probe::Host(files.to_vec());
    vec![
        Row {
            field: "linux.resources.memory.limit",
            edit: edit(|c, _| c["linux"]["resources"]["memory"] = json!({"limit": 67108864})),
            probe: host(&[("memory", "memory.limit_in_bytes")]),
            expect: out("memory.limit_in_bytes: 67108864"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.resources.memory reservation/swappiness/disableOOMKiller",
            edit: edit(|c, _| {
                c["linux"]["resources"]["memory"] = json!({"reservation": 33554432,
                    "swappiness": 10, "disableOOMKiller": true})
            }),
            probe: host(&[
                ("memory", "memory.soft_limit_in_bytes"),
                ("memory", "memory.swappiness"),
                ("memory", "memory.oom_control"),
            ]),
            expect: out("memory.soft_limit_in_bytes: 33554432\nmemory.swappiness: 10\nmemory.oom_control: oom_kill_disable 1\nunder_oom 0\noom_kill 0"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.resources.cpu shares/quota/period",
            edit: edit(|c, _| {
                c["linux"]["resources"]["cpu"] =
                    json!({"shares": 512, "quota": 25000, "period": 50000})
            }),
            probe: host(&[
                ("cpu", "cpu.shares"),
                ("cpu", "cpu.cfs_quota_us"),
                ("cpu", "cpu.cfs_period_us"),
            ]),
            expect: out("cpu.shares: 512\ncpu.cfs_quota_us: 25000\ncpu.cfs_period_us: 50000"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.resources.cpu cpus/mems",
            edit: edit(|c, _| c["linux"]["resources"]["cpu"] = json!({"cpus": "0", "mems": "0"})),
            probe: host(&[("cpuset", "cpuset.cpus"), ("cpuset", "cpuset.mems")]),
            expect: out("cpuset.cpus: 0\ncpuset.mems: 0"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.resources.pids.limit",
            edit: edit(|c, _| c["linux"]["resources"]["pids"] = json!({"limit": 42})),
            probe: host(&[("pids", "pids.max")]),
            expect: out("pids.max: 42"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.resources.hugepageLimits",
            edit: edit(|c, _| {
                c["linux"]["resources"]["hugepageLimits"] =
                    json!([{"pageSize": "2MB", "limit": 4194304}])
            }),
            probe: host(&[("hugetlb", "hugetlb.2MB.limit_in_bytes")]),
            // Without a hugetlb hierarchy runc fails the create ("cannot set hugetlb
            // limit"), and so does gcr-runc.
            expect: if hugetlb {
                out("hugetlb.2MB.limit_in_bytes: 4194304")
            } else {
                Expect::Fails
            },
            mode: Mode::Both,
        },
        Row {
            // v2 interface files: on this v1 (or hybrid) host runc refuses them, and so
            // does gcr-runc (v2 writes are unit-tested in gcr-runtime).
            field: "linux.resources.unified on cgroup v1",
            edit: edit(|c, _| {
                c["linux"]["resources"]["unified"] = json!({"memory.high": "100000000"})
            }),
            probe: host(&[("memory", "memory.limit_in_bytes")]),
            expect: Expect::Fails,
            mode: Mode::Both,
        },
        Row {
            field: "linux.resources.blockIO throttle",
            edit: {
                let dev = dev.clone();
                edit(move |c, _| {
                    let (ma, mi) = dev.split_once(':').unwrap();
                    let (ma, mi): (i64, i64) = (ma.parse().unwrap(), mi.parse().unwrap());
                    c["linux"]["resources"]["blockIO"] = json!({
                        "throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 1048576}],
                        "throttleWriteBpsDevice": [{"major": ma, "minor": mi, "rate": 2097152}],
                        "throttleReadIOPSDevice": [{"major": ma, "minor": mi, "rate": 100}],
                        "throttleWriteIOPSDevice": [{"major": ma, "minor": mi, "rate": 200}]
                    })
                })
            },
            probe: host(&[
                ("blkio", "blkio.throttle.read_bps_device"),
                ("blkio", "blkio.throttle.write_bps_device"),
                ("blkio", "blkio.throttle.read_iops_device"),
                ("blkio", "blkio.throttle.write_iops_device"),
            ]),
            expect: out(&format!(
                "blkio.throttle.read_bps_device: {dev} 1048576\nblkio.throttle.write_bps_device: {dev} 2097152\nblkio.throttle.read_iops_device: {dev} 100\nblkio.throttle.write_iops_device: {dev} 200"
            )),
            mode: Mode::Both,
        },
        Row {
            field: "linux.resources.blockIO weight",
            edit: edit(|c, _| c["linux"]["resources"]["blockIO"] = json!({"weight": 300})),
            probe: host(&[("blkio", "blkio.weight")]),
            // Neither CFQ's blkio.weight nor BFQ's blkio.bfq.weight on this kernel: runc
            // fails writing blkio.bfq.weight, and so does gcr-runc.
            expect: if blkio_weight {
                out("blkio.weight: 300")
            } else {
                Expect::Fails
            },
            mode: Mode::Both,
        },
    ]
}
