//! The rows of the conformance table (see `conformance.rs`), and what they need from the
//! host: its namespaces, a shared mount to bind, a block device, a container whose pid
//! namespace others join.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::conformance::{edit, Edit, Expect, Mode, Probe, Row};
use super::Bundle;

/// Host facts and fixtures of the rows; unmounts what it mounted on drop (the sandbox
/// container is one of the bundle's, deleted with it).
pub(super) struct Ctx {
    pub dir: PathBuf,
    /// `<bundle>/shared`: a bind mount of itself made shared, with an executable `run.sh`.
    shared: PathBuf,
    mounted: bool,
    /// `/proc/PID/ns/pid` of a running `sleep` container.
    sandbox_pidns: String,
    /// `major:minor` of a block device.
    pub(super) blockdev: String,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.shared).status();
        }
    }
}

fn ns_link(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

impl Ctx {
    pub(super) fn new(b: &mut Bundle) -> Ctx {
        let dir = b.path().to_path_buf();
        let shared = dir.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::write(shared.join("run.sh"), "#!/bin/sh\necho ran\n").unwrap();
        assert!(Command::new("chmod")
            .arg("755")
            .arg(shared.join("run.sh"))
            .status()
            .unwrap()
            .success());
        let mut ctx = Ctx {
            dir,
            shared: shared.clone(),
            mounted: false,
            sandbox_pidns: String::new(),
            blockdev: blockdev(),
        };
        let sh = shared.to_str().unwrap();
        assert!(Command::new("mount")
            .args(["--bind", sh, sh])
            .status()
            .unwrap()
            .success());
        ctx.mounted = true;
        assert!(Command::new("mount")
            .args(["--make-shared", sh])
            .status()
            .unwrap()
            .success());
        // The pod sandbox of a shareProcessNamespace pod: a sleep in its own pid namespace.
        b.edit(|c| c["process"]["args"] = json!(["sleep", "60"]));
        b.ids.push("gcr:sandbox".into());
        let bundle = b.path().to_str().unwrap().to_string();
        assert!(b.detached("gcr", &["run", "-d", "--bundle", &bundle, "sandbox"]));
        let st: Value = serde_json::from_slice(&b.tool("gcr", &["state", "sandbox"]).stdout)
            .expect("sandbox state");
        ctx.sandbox_pidns = format!("/proc/{}/ns/pid", st["pid"].as_i64().unwrap());
        ctx
    }
}

/// `major:minor` of a disk (not loop, ram or zram), else the first block device.
fn blockdev() -> String {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_by_key(|n| {
        (
            n.starts_with("loop") || n.starts_with("ram") || n.starts_with("zram"),
            n.clone(),
        )
    });
    let first = names.first().expect("a block device");
    std::fs::read_to_string(format!("/sys/block/{first}/dev"))
        .unwrap()
        .trim()
        .to_string()
}

fn sh(s: &str) -> Probe {
    Probe::Sh(s.to_string())
}

/// A field gcr-runc refuses by name (exit 1, the field named) where runc runs `true`.
fn refused(field: &'static str, edit: Edit) -> Row {
    Row {
        field,
        edit,
        probe: sh("true"),
        expect: Expect::Fails,
        mode: Mode::Refused(field),
    }
}

pub(super) fn out(s: &str) -> Expect {
    Expect::Out(s.to_string())
}

fn mounts(c: &mut Value) -> &mut Vec<Value> {
    c["mounts"].as_array_mut().unwrap()
}

fn namespaces(c: &mut Value) -> &mut Vec<Value> {
    c["linux"]["namespaces"].as_array_mut().unwrap()
}

/// Prints `KIND:new` or `KIND:host` per namespace, the host's links given.
fn ns_probe(kinds: &[&str]) -> String {
    kinds
        .iter()
        .map(|k| {
            format!(
                "[ \"$(readlink /proc/self/ns/{k})\" = \"{}\" ] && echo {k}:host || echo {k}:new",
                ns_link(k)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The propagation of the mount at `dest`: private, master (slave) or shared.
fn propagation_probe(dest: &str) -> String {
    format!(
        "awk '$5==\"{dest}\" {{ if ($7 == \"-\") print \"private\"; else print substr($7, 1, index($7, \":\") - 1) }}' /proc/self/mountinfo"
    )
}

pub(super) fn rows(ctx: &Ctx) -> Vec<Row> {
    let mut rows = process_rows();
    rows.extend(linux_rows(ctx));
    rows.extend(super::conformance_resources::rows(ctx));
    rows
}

fn process_rows() -> Vec<Row> {
    vec![
        Row {
            field: "process.rlimits RLIMIT_NOFILE",
            edit: edit(|c, _| {
                c["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 4096}])
            }),
            probe: sh("ulimit -n; ulimit -Hn"),
            expect: out("2048\n4096"),
            mode: Mode::Both,
        },
        Row {
            field: "process.rlimits RLIMIT_NPROC",
            edit: edit(|c, _| {
                c["process"]["rlimits"] = json!([{"type": "RLIMIT_NPROC", "soft": 77, "hard": 78}])
            }),
            probe: sh("grep 'Max processes' /proc/self/limits | tr -s ' '"),
            expect: out("Max processes 77 78 processes"),
            mode: Mode::Both,
        },
        Row {
            field: "process.oomScoreAdj",
            edit: edit(|c, _| c["process"]["oomScoreAdj"] = json!(123)),
            probe: sh("cat /proc/self/oom_score_adj"),
            expect: out("123"),
            mode: Mode::Both,
        },
        Row {
            field: "process.noNewPrivileges true",
            edit: edit(|c, _| c["process"]["noNewPrivileges"] = json!(true)),
            probe: sh("grep NoNewPrivs /proc/self/status"),
            expect: out("NoNewPrivs:\t1"),
            mode: Mode::Both,
        },
        Row {
            field: "process.noNewPrivileges false",
            edit: edit(|c, _| c["process"]["noNewPrivileges"] = json!(false)),
            probe: sh("grep NoNewPrivs /proc/self/status"),
            expect: out("NoNewPrivs:\t0"),
            mode: Mode::Both,
        },
        // The runtime spec has no `process.umask`: the umask is `process.user.umask`.
        Row {
            field: "process.user.umask",
            edit: edit(|c, _| c["process"]["user"]["umask"] = json!(0o027)),
            probe: sh("umask"),
            expect: out("0027"),
            mode: Mode::Both,
        },
        Row {
            field: "process.user.umask unset",
            edit: edit(|_, _| {}),
            probe: sh("umask"),
            expect: out("0022"),
            mode: Mode::Both,
        },
        Row {
            field: "process.terminal false (stdio)",
            edit: edit(|c, _| c["process"]["terminal"] = json!(false)),
            probe: sh("echo out; echo err >&2; [ -t 0 ] && echo tty || echo notty; [ -t 1 ] && echo tty1 || echo pipe1"),
            expect: out("out\nnotty\npipe1"),
            mode: Mode::Both,
        },
        // runc 1.1 ignores it silently (no ioprio_set).
        refused(
            "process.ioPriority",
            edit(|c, _| {
                c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0})
            }),
        ),
        // runc 1.1 ignores it silently (the policy stays SCHED_OTHER).
        refused(
            "process.scheduler",
            edit(|c, _| c["process"]["scheduler"] = json!({"policy": "SCHED_IDLE"})),
        ),
        // The fields gcr-runc refuses by name (this host has no AppArmor, SELinux, RDT,
        // net_cls/net_prio or rdma controller to apply them with): exit 1, the field named.
        refused(
            "process.apparmorProfile",
            edit(|c, _| c["process"]["apparmorProfile"] = json!("docker-default")),
        ),
        refused(
            "process.selinuxLabel",
            edit(|c, _| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0")),
        ),
        refused(
            "linux.mountLabel",
            edit(|c, _| c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0")),
        ),
        refused(
            "linux.intelRdt",
            edit(|c, _| c["linux"]["intelRdt"] = json!({"closID": "gcr"})),
        ),
        refused(
            "linux.resources.network",
            edit(|c, _| c["linux"]["resources"]["network"] = json!({"classID": 1048577})),
        ),
        refused(
            "linux.resources.rdma",
            edit(|c, _| c["linux"]["resources"]["rdma"] = json!({"mlx5_1": {"hcaHandles": 3}})),
        ),
    ]
}

fn linux_rows(ctx: &Ctx) -> Vec<Row> {
    let all = ["ipc", "uts", "cgroup", "mnt", "pid", "net"];
    let shared = ctx.shared.clone();
    let shared2 = ctx.shared.clone();
    let shared3 = ctx.shared.clone();
    let pidns = ctx.sandbox_pidns.clone();
    let target_ns = std::fs::read_link(&ctx.sandbox_pidns)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let bind = |src: &Path, dest: &str, opts: &[&str]| json!({"destination": dest, "type": "bind", "source": src, "options": opts});
    let rw_root = |c: &mut Value| c["root"]["readonly"] = json!(false);
    vec![
        Row {
            field: "root.readonly false",
            edit: edit(move |c, _| rw_root(c)),
            probe: sh("touch /rw-probe && echo rw; rm -f /rw-probe"),
            expect: out("rw"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.readonlyPaths",
            edit: edit(move |c, _| {
                rw_root(c);
                c["linux"]["readonlyPaths"] = json!(["/tmp"]);
            }),
            probe: sh("touch /tmp/x 2>/dev/null && echo w || echo ro; touch /y && echo rootw; rm -f /y /tmp/x"),
            expect: out("ro\nrootw"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.maskedPaths (a directory)",
            edit: edit(|c, _| c["linux"]["maskedPaths"] = json!(["/etc"])),
            probe: sh("ls -A /etc | wc -l; touch /etc/x 2>/dev/null || echo ro"),
            expect: out("0\nro"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.rootfsPropagation private",
            edit: edit(|c, _| c["linux"]["rootfsPropagation"] = json!("private")),
            probe: Probe::Sh(propagation_probe("/")),
            expect: out("private"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.rootfsPropagation slave",
            edit: edit(|c, _| c["linux"]["rootfsPropagation"] = json!("slave")),
            probe: Probe::Sh(propagation_probe("/")),
            expect: out("private"), // the bundle's mount is not shared: nothing to follow
            mode: Mode::Both,
        },
        Row {
            field: "domainname",
            edit: edit(|c, _| c["domainname"] = json!("example.org")),
            probe: sh("cat /proc/sys/kernel/domainname"),
            expect: out("example.org"),
            mode: Mode::GcrOnly("runc 1.1 ignores domainname: it shows (none)"),
        },
        Row {
            field: "hostname without a UTS namespace",
            edit: edit(|c, _| namespaces(c).retain(|n| n["type"] != "uts")),
            probe: sh("true"),
            expect: Expect::Fails,
            mode: Mode::Both,
        },
        Row {
            field: "mounts: tmpfs size/mode (new destination)",
            edit: edit(|c, _| {
                mounts(c).push(json!({"destination": "/scratch/new", "type": "tmpfs",
                    "source": "tmpfs", "options": ["size=1m", "mode=0710", "nosuid"]}))
            }),
            // The first run makes the destination: only gcr-runc's run sees it new.
            probe: sh("stat -c %a /scratch/new; df -k /scratch/new | tail -1 | awk '{print $2}'"),
            expect: out("710\n1024"),
            mode: Mode::GcrOnly("one bundle: the first runtime makes the directory"),
        },
        Row {
            field: "mounts: tmpfs size/mode (existing destination)",
            edit: edit(|c, dir| {
                let d = dir.join("rootfs/scratch/old");
                std::fs::create_dir_all(&d).unwrap();
                std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o750))
                    .unwrap();
                mounts(c).push(json!({"destination": "/scratch/old", "type": "tmpfs",
                    "source": "tmpfs", "options": ["size=1m", "mode=0710"]}))
            }),
            // runc 1.1 gives the tmpfs the mode of the directory it covers.
            probe: sh("stat -c %a /scratch/old; df -k /scratch/old | tail -1 | awk '{print $2}'"),
            expect: out("750\n1024"),
            mode: Mode::Both,
        },
        Row {
            field: "mounts: bind rslave",
            edit: edit(move |c, _| mounts(c).push(bind(&shared, "/b", &["rbind", "rslave"]))),
            probe: Probe::Sh(propagation_probe("/b")),
            expect: out("master"),
            mode: Mode::Both,
        },
        Row {
            field: "mounts: bind rprivate",
            edit: edit(move |c, _| mounts(c).push(bind(&shared2, "/b", &["rbind", "rprivate"]))),
            probe: Probe::Sh(propagation_probe("/b")),
            expect: out("private"),
            mode: Mode::Both,
        },
        Row {
            field: "mounts: bind nodev,noexec",
            edit: edit(move |c, _| {
                mounts(c).push(bind(&shared3, "/b", &["rbind", "nodev", "noexec"]))
            }),
            probe: sh("/b/run.sh 2>/dev/null || echo noexec; awk '$5==\"/b\" {print $6}' /proc/self/mountinfo | tr ',' '\\n' | grep -E '^no(dev|exec)$'"),
            expect: out("noexec\nnodev\nnoexec"),
            mode: Mode::Both,
        },
        Row {
            field: "mounts: relative destination",
            edit: edit(|c, _| {
                mounts(c).push(json!({"destination": "reltmp", "type": "tmpfs", "source": "tmpfs"}))
            }),
            probe: sh("awk '$5==\"/reltmp\" {print $9}' /proc/self/mountinfo"),
            expect: out("tmpfs"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.namespaces new (ipc uts cgroup mount pid network)",
            edit: edit(|c, _| namespaces(c).push(json!({"type": "cgroup"}))),
            probe: Probe::Sh(ns_probe(&all)),
            expect: out("ipc:new\nuts:new\ncgroup:new\nmnt:new\npid:new\nnet:new"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.namespaces host (ipc uts cgroup pid network)",
            edit: edit(|c, _| {
                namespaces(c).retain(|n| n["type"] == "mount");
                c.as_object_mut().unwrap().remove("hostname");
            }),
            probe: Probe::Sh(ns_probe(&all)),
            expect: out("ipc:host\nuts:host\ncgroup:host\nmnt:new\npid:host\nnet:host"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.namespaces pid joined by path",
            edit: edit(move |c, _| {
                for n in namespaces(c) {
                    if n["type"] == "pid" {
                        n["path"] = json!(pidns);
                    }
                }
            }),
            probe: Probe::Sh(format!(
                "cat /proc/1/comm; [ \"$(readlink /proc/self/ns/pid)\" = \"{target_ns}\" ] && echo joined"
            )),
            expect: out("sleep\njoined"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.devices",
            edit: edit(|c, _| {
                c["linux"]["devices"] = json!([{"path": "/dev/mynull", "type": "c",
                    "major": 1, "minor": 3, "fileMode": 0o640, "uid": 0, "gid": 0}])
            }),
            probe: sh("ls -l /dev/mynull | awk '{print $1, $5, $6}'; cat /dev/mynull && echo readable"),
            expect: out("crw-r----- 1, 3\nreadable"),
            mode: Mode::Both,
        },
        Row {
            field: "linux.personality LINUX32",
            edit: edit(|c, _| c["linux"]["personality"] = json!({"domain": "LINUX32"})),
            probe: sh("uname -m"),
            expect: out(if cfg!(target_arch = "x86_64") { "i686" } else { "armv8l" }),
            mode: Mode::GcrOnly("runc 1.1 ignores linux.personality (uname -m stays x86_64)"),
        },
        Row {
            field: "linux.personality flags",
            edit: edit(|c, _| {
                c["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["x"]})
            }),
            probe: sh("true"),
            expect: Expect::Fails,
            mode: Mode::Refused("linux.personality.flags"),
        },
        Row {
            field: "linux.timeOffsets (time namespace)",
            edit: edit(|c, _| {
                namespaces(c).push(json!({"type": "time"}));
                c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000},
                    "monotonic": {"secs": 864000, "nanosecs": 0}});
            }),
            probe: Probe::Sh(format!(
                "awk '{{ print ($1 >= 864000) ? \"offset\" : \"none\" }}' /proc/uptime; sh -c 'awk \"{{ print (\\$1 >= 864000) ? \\\"child offset\\\" : \\\"child none\\\" }}\" /proc/uptime'; {}",
                ns_probe(&["time"])
            )),
            expect: out("offset\nchild offset\ntime:new"),
            mode: Mode::GcrOnly("runc 1.1: namespace {\"time\" \"\"} does not exist"),
        },
        Row {
            field: "linux.timeOffsets without a time namespace",
            edit: edit(|c, _| c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1}})),
            probe: sh("true"),
            expect: Expect::Fails,
            mode: Mode::GcrOnly("runc 1.1 ignores linux.timeOffsets"),
        },
    ]
}
