//! The Docker compatibility table (docs/docker-compat.md) is generated here: every row is a
//! `docker` command or flag with gcr's status, and every row is checked against gcr —
//! "same" rows run the command and assert Docker's behaviour, "differs" rows assert gcr's
//! documented behaviour, "missing" rows assert that gcr refuses the command (so the table
//! goes stale loudly when one lands). The test fails when the file in the repository is
//! not what the rows say; `GCR_UPDATE_COMPAT=1` rewrites it.

mod common;

use common::{need_root, stderr, stdout, Env, IMAGE};

#[derive(Clone, Copy, PartialEq)]
enum Status {
    Same,
    Differs,
    Missing,
}

/// What a row runs: gcr's arguments (`{c}` is a running container, `{s}` a stopped one),
/// and what must hold.
enum Check {
    /// Succeeds, and its stdout contains this.
    Ok(&'static [&'static str], &'static str),
    /// Fails (gcr refuses the command or flag).
    Refused(&'static [&'static str]),
}

struct Row {
    area: &'static str,
    docker: &'static str,
    status: Status,
    note: &'static str,
    check: Check,
}

const fn row(
    area: &'static str,
    docker: &'static str,
    status: Status,
    note: &'static str,
    check: Check,
) -> Row {
    Row {
        area,
        docker,
        status,
        note,
        check,
    }
}

use Check::{Ok as Works, Refused};
use Status::{Differs, Missing, Same};

const ROWS: &[Row] = &[
    row(
        "run",
        "run IMAGE CMD",
        Same,
        "",
        Works(&["run", "--rm", "IMG", "echo", "hi"], "hi"),
    ),
    row(
        "run",
        "run -d, --name",
        Same,
        "",
        Works(&["run", "-d", "--name", "compat-d", "IMG", "true"], ""),
    ),
    row(
        "run",
        "run --rm",
        Same,
        "",
        Works(&["run", "--rm", "IMG", "true"], ""),
    ),
    row(
        "run",
        "run -e, --env-file",
        Same,
        "",
        Works(
            &["run", "--rm", "-e", "A=1", "IMG", "sh", "-c", "echo $A"],
            "1",
        ),
    ),
    row(
        "run",
        "run -w, -u",
        Same,
        "",
        Works(
            &[
                "run",
                "--rm",
                "-w",
                "/tmp",
                "-u",
                "1000",
                "IMG",
                "sh",
                "-c",
                "pwd; id -u",
            ],
            "/tmp\n1000",
        ),
    ),
    row(
        "run",
        "run --entrypoint",
        Same,
        "",
        Works(&["run", "--rm", "--entrypoint", "echo", "IMG", "x"], "x"),
    ),
    row(
        "run",
        "run --hostname",
        Same,
        "",
        Works(
            &["run", "--rm", "--hostname", "hn1", "IMG", "hostname"],
            "hn1",
        ),
    ),
    row(
        "run",
        "run HOME from passwd",
        Same,
        "",
        Works(
            &["run", "--rm", "-u", "1000", "IMG", "sh", "-c", "echo $HOME"],
            "/home/app",
        ),
    ),
    row(
        "run",
        "run --init",
        Same,
        "",
        Works(&["run", "--rm", "--init", "IMG", "true"], ""),
    ),
    row(
        "run",
        "run -m, --cpus, --pids-limit",
        Same,
        "limits also visible in /sys/fs/cgroup",
        Works(
            &[
                "run",
                "--rm",
                "-m",
                "64m",
                "--pids-limit",
                "20",
                "IMG",
                "cat",
                "/sys/fs/cgroup/pids/pids.max",
            ],
            "20",
        ),
    ),
    row(
        "run",
        "run --cpuset-cpus, --cpuset-mems, -c/--cpu-shares",
        Same,
        "cgroup v1 and v2; update moves a cpuset given at start",
        Works(
            &[
                "run",
                "--rm",
                "--cpuset-cpus",
                "0",
                "-c",
                "512",
                "IMG",
                "grep",
                "Cpus_allowed_list:.0$",
                "/proc/self/status",
            ],
            "Cpus_allowed_list",
        ),
    ),
    row(
        "run",
        "run --cpuset-cpus with CPUs the host lacks",
        Same,
        "refused, exit 125",
        Refused(&["run", "--rm", "--cpuset-cpus", "0-4095", "IMG", "true"]),
    ),
    row(
        "run",
        "run --cpus above the host's CPUs",
        Same,
        "refused, exit 125",
        Refused(&["run", "--rm", "--cpus", "512", "IMG", "true"]),
    ),
    row(
        "run",
        "run -e =x",
        Same,
        "refused, exit 125",
        Refused(&["run", "--rm", "-e", "=x", "IMG", "true"]),
    ),
    row(
        "run",
        "run --read-only",
        Same,
        "",
        Refused(&["run", "--rm", "--read-only", "IMG", "touch", "/x"]),
    ),
    row(
        "run",
        "run --privileged, --cap-add, --cap-drop, --security-opt",
        Same,
        "",
        Works(&["run", "--rm", "--cap-drop", "ALL", "IMG", "true"], ""),
    ),
    row(
        "run",
        "run --network none|host|bridge|NAME",
        Same,
        "",
        Works(&["run", "--rm", "--network", "none", "IMG", "true"], ""),
    ),
    row(
        "run",
        "run -p, -P",
        Same,
        "without an address both families as Docker's (0.0.0.0 and [::], IPv6 best effort), [IPv6]:PORT:PORT; port ranges (`-p 8000-8002:8000-8002`) as Docker's, 1000 ports per range at most; a host range for one container port is refused",
        Works(&["run", "--rm", "-p", "127.0.0.1::80-81", "IMG", "true"], ""),
    ),
    row(
        "run",
        "run -v, --tmpfs",
        Same,
        "",
        Works(
            &[
                "run",
                "--rm",
                "--tmpfs",
                "/scratch",
                "IMG",
                "sh",
                "-c",
                "touch /scratch/x && echo ok",
            ],
            "ok",
        ),
    ),
    row(
        "run",
        "run --restart, -l, --stop-signal, --stop-timeout",
        Same,
        "",
        Works(
            &[
                "run",
                "--rm",
                "-l",
                "a=b",
                "--stop-signal",
                "SIGINT",
                "IMG",
                "true",
            ],
            "",
        ),
    ),
    row(
        "run",
        "run --health-cmd and friends",
        Same,
        "with --health-start-interval (and the image's StartInterval, HEALTHCHECK --start-interval): checks during the start period at that pace",
        Works(&["run", "--rm", "--health-cmd", "true", "IMG", "true"], ""),
    ),
    row(
        "run",
        "run --secret",
        Differs,
        "gcr's encrypted secrets (`gcr secret create`), not swarm's",
        Refused(&["run", "--rm", "--secret", "no-such-secret", "IMG", "true"]),
    ),
    row(
        "run",
        "run --mount (bind, volume, tmpfs)",
        Same,
        "bind sources must exist; volume-driver options are refused by name",
        Works(
            &[
                "run",
                "--rm",
                "--mount",
                "type=tmpfs,dst=/x,tmpfs-size=1m",
                "IMG",
                "df",
                "-k",
                "/x",
            ],
            "1024",
        ),
    ),
    row(
        "run",
        "run --add-host",
        Same,
        "",
        Works(
            &[
                "run",
                "--rm",
                "--add-host",
                "a:1.2.3.4",
                "IMG",
                "cat",
                "/etc/hosts",
            ],
            "1.2.3.4\ta",
        ),
    ),
    row(
        "run",
        "run --cpu-period, --cpu-quota",
        Same,
        "the quota over the period is the CPU limit (inspect shows it as NanoCpus); with --cpus refused",
        Works(
            &["run", "--rm", "--cpu-quota", "50000", "IMG", "true"],
            "",
        ),
    ),
    row(
        "run",
        "run --domainname, --oom-score-adj",
        Same,
        "the OOM score is set by gcr's side of the start, as runc's; lowering it needs CAP_SYS_RESOURCE",
        Works(
            &["run", "--rm", "--domainname", "corp.test", "--oom-score-adj", "100", "IMG", "cat", "/proc/sys/kernel/domainname"],
            "corp.test",
        ),
    ),
    row(
        "run",
        "run --memory-reservation, --memory-swappiness, --oom-kill-disable",
        Same,
        "v1 memory.soft_limit_in_bytes/swappiness/oom_control, v2 memory.low; what the host's cgroups lack is discarded with Docker's warning (swappiness and the OOM switch on v2)",
        Works(
            &["run", "--rm", "-m", "64m", "--memory-reservation", "32m", "--oom-kill-disable", "IMG", "true"],
            "",
        ),
    ),
    row(
        "run",
        "run --blkio-weight, --blkio-weight-device, --device-read-bps/-iops, --device-write-bps/-iops",
        Same,
        "devices resolved at each start; weights need BFQ/CFQ on v1 (else discarded with Docker's warning); update takes --blkio-weight and --memory-reservation",
        Works(
            &["run", "--rm", "--blkio-weight", "300", "IMG", "true"],
            "",
        ),
    ),
    row(
        "run",
        "run --name X IMG (foreground), then logs X",
        Same,
        "a held run's output is shown and kept (pipes, or its terminal with -t); streams -a leaves out are kept too",
        Works(
            &["run", "--name", "fglog", "IMG", "echo", "kept"],
            "kept",
        ),
    ),
    row(
        "run",
        "run --log-driver json-file|local|none",
        Differs,
        "local is gcr's log (not Docker's protobuf file) with local's defaults, shown as json-file with max-size=20m, max-file=5; none: logs says the driver cannot be read; syslog, journald, fluentd, gelf and the other shipping drivers are refused",
        Works(
            &["run", "--rm", "--log-driver", "none", "IMG", "echo", "shown"],
            "shown",
        ),
    ),
    row(
        "run",
        "run --cgroup-parent PATH",
        Same,
        "the group is PATH/<id> in each hierarchy (relative to its root, as the cgroupfs driver); stats, top, exec, update, pause and rm find it by the container; the parent stays",
        Works(
            &["run", "--rm", "--cgroup-parent", "/gcr", "IMG", "true"],
            "",
        ),
    ),
    row(
        "run",
        "run --expose, -q/--quiet",
        Same,
        "exposed ports and ranges published by -P and shown in Config.ExposedPorts; -q silences --pull's lines",
        Works(
            &["run", "--rm", "-q", "--expose", "9000", "IMG", "true"],
            "",
        ),
    ),
    row(
        "run",
        "run --mac-address",
        Same,
        "the first interface's hardware address (default 02:42:<address>)",
        Works(
            &["run", "--rm", "--mac-address", "02:aa:bb:cc:dd:03", "IMG", "cat", "/sys/class/net/eth0/address"],
            "02:aa:bb:cc:dd:03",
        ),
    ),
    row(
        "run",
        "run --label-file",
        Same,
        "",
        Refused(&["run", "--rm", "--label-file", "/nonexistent/labels", "IMG", "true"]),
    ),
    row(
        "run",
        "run --volumes-from CONTAINER[:ro|rw]",
        Same,
        "its volumes and binds at their paths (not its tmpfs mounts); rm -v of the borrower leaves a borrowed anonymous volume",
        Works(
            &["run", "--rm", "--volumes-from", "{s}", "IMG", "true"],
            "",
        ),
    ),
    row(
        "run",
        "run --link NAME[:ALIAS]",
        Same,
        "the linked container's address in /etc/hosts (and DNS on a user network); Docker's legacy link environment variables are not set",
        Works(
            &["run", "--rm", "--link", "{c}:peer", "IMG", "grep", "-c", "peer", "/etc/hosts"],
            "1",
        ),
    ),
    row(
        "run",
        "run --dns, --dns-search, --dns-option",
        Same,
        "on a user network resolv.conf names the embedded server (127.0.0.11), which forwards to the --dns servers",
        Works(
            &[
                "run",
                "--rm",
                "--dns",
                "10.0.0.53",
                "IMG",
                "cat",
                "/etc/resolv.conf",
            ],
            "nameserver 10.0.0.53",
        ),
    ),
    row(
        "run",
        "run --ulimit",
        Same,
        "also for exec",
        Works(
            &[
                "run",
                "--rm",
                "--ulimit",
                "nofile=512",
                "IMG",
                "sh",
                "-c",
                "ulimit -n",
            ],
            "512",
        ),
    ),
    row(
        "run",
        "run --shm-size",
        Same,
        "",
        Works(
            &[
                "run",
                "--rm",
                "--shm-size",
                "1g",
                "IMG",
                "df",
                "-k",
                "/dev/shm",
            ],
            "1048576",
        ),
    ),
    row(
        "run",
        "run --device",
        Differs,
        "the host's node bind-mounted (every writable mount is nodev instead of a device cgroup); without w in the permissions read-only; only directly under /dev",
        Works(
            &[
                "run",
                "--rm",
                "--device",
                "/dev/null:/dev/mynull",
                "IMG",
                "ls",
                "/dev/mynull",
            ],
            "/dev/mynull",
        ),
    ),
    row(
        "run",
        "run --sysctl",
        Same,
        "namespaced keys only, refused with the host's namespace",
        Works(
            &[
                "run",
                "--rm",
                "--sysctl",
                "net.ipv4.ip_forward=1",
                "IMG",
                "cat",
                "/proc/sys/net/ipv4/ip_forward",
            ],
            "1",
        ),
    ),
    row(
        "run",
        "run --pid, --ipc, --uts, --network container:X",
        Differs,
        "host or container:X as Docker; with --ipc container:X /dev/shm stays the container's own (another mount namespace's tmpfs cannot be bound)",
        Works(&["run", "--rm", "--pid", "container:{c}", "IMG", "ps"], "sleep"),
    ),
    row(
        "run",
        "run --group-add",
        Same,
        "",
        Works(
            &["run", "--rm", "--group-add", "4242", "IMG", "id", "-G"],
            "4242",
        ),
    ),
    row(
        "run",
        "run --pull",
        Differs,
        "gcr pulls only when asked (--pull missing|always); the default is never",
        Refused(&["run", "--rm", "IMG-MISSING", "true"]),
    ),
    row(
        "run",
        "run --platform",
        Same,
        "checked against the image (no emulation)",
        Refused(&["run", "--rm", "--platform", "linux/s390x", "IMG", "true"]),
    ),
    row(
        "run",
        "run -a, --cidfile, stdin only with -i",
        Same,
        "",
        Works(
            &[
                "run",
                "--rm",
                "-a",
                "stdout",
                "IMG",
                "sh",
                "-c",
                "echo out; echo err >&2",
            ],
            "out",
        ),
    ),
    row(
        "run",
        "run --log-opt max-size, max-file",
        Same,
        "json-file's rotation over gcr's CRI log; other options are refused by name",
        Works(&["run", "--rm", "--log-opt", "max-size=1m", "IMG", "echo", "hi"], "hi"),
    ),
    row(
        "run",
        "run --userns host",
        Same,
        "dockerd without --userns-remap: the host's user namespace; other modes are refused by name, as gcr remaps none",
        Works(&["run", "--rm", "--userns", "host", "IMG", "echo", "hi"], "hi"),
    ),
    row(
        "run",
        "run --gpus",
        Missing,
        "",
        Refused(&["run", "--rm", "--gpus", "all", "IMG", "true"]),
    ),
    row(
        "containers",
        "port C [PORT[/PROTO]]",
        Same,
        "an unpublished port is an error (exit 1)",
        Refused(&["port", "{c}", "80/tcp"]),
    ),
    row(
        "containers",
        "create, start, stop, kill, restart",
        Same,
        "",
        Works(&["stop", "{s}"], ""),
    ),
    row(
        "containers",
        "stop of a stopped container",
        Same,
        "succeeds",
        Works(&["stop", "{s}"], ""),
    ),
    row(
        "containers",
        "start -a",
        Same,
        "",
        Works(&["start", "-a", "{s}"], ""),
    ),
    row(
        "containers",
        "start -i, attach (--detach-keys, --no-stdin), run -it detach with ctrl-p ctrl-q",
        Same,
        "through the container's supervisor; a container run in the foreground without -it is followed through its log",
        Refused(&["attach", "--detach-keys", "shift-x", "{c}"]),
    ),
    row(
        "containers",
        "rm -f, rm -v",
        Same,
        "",
        Works(&["rm", "-f", "-v", "compat-d"], ""),
    ),
    row(
        "containers",
        "rename",
        Same,
        "",
        Works(&["rename", "{s}", "NEW"], ""),
    ),
    row(
        "containers",
        "ps -a, -q, -l, -n, --no-trunc",
        Same,
        "",
        Works(&["ps", "-a", "-l", "--no-trunc", "-q"], ""),
    ),
    row(
        "containers",
        "ps --format json",
        Same,
        "",
        Works(&["ps", "--format", "json"], "\"Names\""),
    ),
    row(
        "containers",
        "ps --format TEMPLATE (and table TEMPLATE)",
        Same,
        "Go templates (gtmpl) with Docker's functions",
        Works(&["ps", "--format", "{{.Names}}"], "compat-c"),
    ),
    row(
        "containers",
        "ps --filter",
        Same,
        "status, name, label, ancestor, id, exited, health, network, volume",
        Works(
            &[
                "ps",
                "--filter",
                "status=running",
                "--filter",
                "name=compat",
            ],
            "compat-c",
        ),
    ),
    row(
        "containers",
        "logs -f, -n, -t, --since, --until",
        Same,
        "",
        Works(&["logs", "-n", "1", "-t", "--since", "1h", "{c}"], ""),
    ),
    row(
        "containers",
        "wait, attach, pause, unpause, top, port",
        Same,
        "",
        Works(&["top", "{c}"], "PID"),
    ),
    row(
        "containers",
        "exec -e, -u, -w, -d",
        Same,
        "",
        Works(
            &[
                "exec",
                "-e",
                "B=2",
                "-w",
                "/tmp",
                "{c}",
                "sh",
                "-c",
                "echo $B; pwd",
            ],
            "2\n/tmp",
        ),
    ),
    row(
        "containers",
        "run -it, exec -it",
        Differs,
        "the container's own /dev/pts pty sized as the caller's terminal, resizes passed on, 'the input device is not a TTY' without one; exec -it has no detach keys",
        Refused(&["exec", "-it", "{c}", "true"]),
    ),
    row(
        "containers",
        "stats --no-stream (CPU %, MEM, NET I/O, BLOCK I/O, PIDS)",
        Same,
        "",
        Works(&["stats", "--no-stream", "{c}"], "NET I/O"),
    ),
    row(
        "containers",
        "stats (streaming)",
        Same,
        "redraws every second; tests/docker_verbs.rs reads two tables",
        Works(&["stats", "--no-stream", "{c}"], "BLOCK I/O"),
    ),
    row(
        "containers",
        "cp (both ways, -a, -L, -)",
        Same,
        "",
        Works(&["cp", "{c}:/etc/hostname", "-"], "hostname"),
    ),
    row(
        "containers",
        "export, commit",
        Same,
        "",
        Works(&["commit", "{c}"], "sha256:"),
    ),
    row(
        "containers",
        "container ls|rm|inspect|prune|...",
        Same,
        "",
        Works(&["container", "ls", "-a", "-q"], ""),
    ),
    row(
        "images",
        "builder prune [-a] [--filter until=…] [--keep-storage SIZE]",
        Same,
        "the step cache entries no image uses (all with -a); also POST /build/prune",
        Works(&["builder", "prune", "-a", "-f"], "Total reclaimed space"),
    ),
    row(
        "containers",
        "container prune [--filter until=… label=… label!=…]",
        Same,
        "",
        Works(
            &["container", "prune", "-f", "--filter", "until=1h"],
            "Total reclaimed space",
        ),
    ),
    row(
        "containers",
        "update (--memory, --cpus, --pids-limit, --restart)",
        Same,
        "past the run policy's ceilings",
        Works(&["update", "--pids-limit", "100", "{c}"], "compat-c"),
    ),
    row("containers", "diff", Same, "", Works(&["diff", "{c}"], "")),
    row(
        "containers",
        "inspect",
        Same,
        "",
        Works(&["inspect", "{c}"], "\"State\""),
    ),
    row(
        "containers",
        "inspect -f TEMPLATE",
        Same,
        "",
        Works(&["inspect", "-f", "{{.State.Status}}", "{c}"], "running"),
    ),
    row(
        "containers",
        "events (--filter type, container, event, image, label; --format TEMPLATE)",
        Differs,
        "image and label filters see a container's image and labels while it exists (gcr's events do not copy them)",
        Works(
            &[
                "events",
                "--since",
                "1h",
                "--until",
                "0s",
                "--filter",
                "type=container",
                "--format",
                "{{.Type}}",
            ],
            "container",
        ),
    ),
    row(
        "images",
        "images, images REPO[:TAG], -q, -a",
        Same,
        "",
        Works(&["images", "-a", "IMG"], "test/busybox"),
    ),
    row(
        "images",
        "images --format TEMPLATE",
        Same,
        "",
        Works(
            &["images", "--format", "{{.Repository}}:{{.Tag}}"],
            "test/busybox:1",
        ),
    ),
    row(
        "images",
        "images --filter",
        Same,
        "reference, dangling, label, before, since",
        Works(&["images", "--filter", "reference=test/*"], "test/busybox"),
    ),
    row(
        "images",
        "image ls|rm|inspect|prune|...",
        Same,
        "",
        Works(&["image", "ls", "-q"], ""),
    ),
    row(
        "images",
        "image prune [-a] [--filter until=… label=… label!=…]",
        Same,
        "",
        Works(
            &["image", "prune", "-f", "--filter", "label!=keep"],
            "Total reclaimed space",
        ),
    ),
    row(
        "images",
        "tag, rmi, history",
        Same,
        "",
        Works(&["history", "IMG"], ""),
    ),
    row(
        "images",
        "import (mtimes kept)",
        Differs,
        "the same tarball is the same image: its Created is its newest mtime (dockerd: the time of the import), or SOURCE_DATE_EPOCH",
        Works(
            &["run", "--rm", "IMG", "stat", "-c", "%Y", "/bin/busybox"],
            "17",
        ),
    ),
    row(
        "images",
        "import --change, -m",
        Same,
        "",
        Works(
            &[
                "import",
                "-c",
                "ENV X=1",
                "-m",
                "compat",
                "/tmp/gcr-compat-rootfs.tar",
                "compat/imported:1",
            ],
            "sha256:",
        ),
    ),
    row(
        "images",
        "save, load",
        Same,
        "",
        Works(&["save", "-o", "/tmp/gcr-compat-save.tar", "IMG"], ""),
    ),
    row(
        "images",
        "build (Dockerfile)",
        Same,
        "see docs/dockerfile.md",
        Works(&["build", "--help"], "Dockerfile"),
    ),
    row(
        "images",
        "pull, push, login, logout",
        Same,
        "",
        Works(&["logout", "127.0.0.1:1"], ""),
    ),
    row(
        "images",
        "search [--limit] [--filter] [--format] [--no-trunc]",
        Same,
        "Docker Hub through its index; another registry through its catalog (dockerd asks it for the v1 search, which distribution registries lack); Podman's --list-tags too",
        Works(&["search", "--help"], "--list-tags"),
    ),
    row("system", "version, info", Same, "", Works(&["version"], "")),
    row(
        "system",
        "system info, system events",
        Same,
        "the group's names of info and events",
        Works(&["system", "info"], "CgroupVersion"),
    ),
    row(
        "system",
        "system df",
        Same,
        "",
        Works(&["system", "df"], ""),
    ),
    row(
        "system",
        "system df -v",
        Same,
        "",
        Works(&["system", "df", "-v"], "Local Volumes space usage"),
    ),
    row(
        "system",
        "system prune [-a] [--volumes] [--filter until=… label=… label!=…], network prune",
        Same,
        "until does not apply to volumes (refused with --volumes, as dockerd)",
        Works(
            &["system", "prune", "-f", "--filter", "until=1h"],
            "Total reclaimed space",
        ),
    ),
    row(
        "system",
        "network create|ls|rm|inspect (--format TEMPLATE, create -d bridge|macvlan|ipvlan --label --internal --ipv6 --subnet V4/V6 --gateway --ip-range -o bridge.name/driver.mtu/enable_icc/enable_ip_masquerade/host_binding_ipv4, -o parent/macvlan_mode/ipvlan_mode, ls --filter name/id/driver/type/label)",
        Same,
        "",
        Works(
            &[
                "network",
                "ls",
                "--filter",
                "type=builtin",
                "--format",
                "{{.Name}}",
            ],
            "bridge",
        ),
    ),
    row(
        "system",
        "network connect [--alias] [--ip] [--ip6] | disconnect",
        Same,
        "created, running or stopped containers, several networks each (eth0, eth1, ...); leaving the first moves the default route; names and aliases resolve through /etc/hosts and the embedded DNS server (127.0.0.11)",
        Works(&["network", "connect", "--help"], "--alias"),
    ),
    row(
        "run",
        "run --network-alias, --ip, --ip6",
        Same,
        "user networks only, as Docker",
        Works(&["run", "--help"], "--network-alias"),
    ),
    row(
        "system",
        "volume create|ls|rm|inspect|prune (create --label, ls --filter name/label/dangling/driver)",
        Same,
        "",
        Works(
            &["volume", "ls", "--filter", "label=nosuch", "--format", "{{.Name}}"],
            "",
        ),
    ),
];

fn table() -> String {
    let mut s = String::from(
        "# Docker compatibility\n\n\
         Generated by `crates/gcr/tests/docker_compat.rs`, which runs every row against gcr\n\
         (`GCR_UPDATE_COMPAT=1 cargo nextest run -p gcr --test docker_compat` rewrites it).\n\
         *same*: Docker's behaviour, checked; *differs*: how and why; *missing*: refused today.\n\n\
         | area | docker | gcr | notes |\n|---|---|---|---|\n",
    );
    for r in ROWS {
        let st = match r.status {
            Same => "same",
            Differs => "differs",
            Missing => "missing",
        };
        s.push_str(&format!(
            "| {} | `{}` | {st} | {} |\n",
            r.area,
            r.docker.replace('|', "\\|"),
            r.note
        ));
    }
    s
}

#[test]
fn the_table_is_true_and_up_to_date() {
    if !need_root("the_table_is_true_and_up_to_date") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "compat-c",
        IMAGE,
        "sh",
        "-c",
        "echo started; sleep 120",
    ]);
    env.ok(&["create", "--name", "compat-s", IMAGE, "true"]);
    // A rootfs tarball for the import row.
    let rootfs = tempfile::tempdir().unwrap();
    std::fs::write(rootfs.path().join("hello"), "hi\n").unwrap();
    let st = std::process::Command::new("tar")
        .args([
            "-C",
            rootfs.path().to_str().unwrap(),
            "-cf",
            "/tmp/gcr-compat-rootfs.tar",
            "hello",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let mut failures = Vec::new();
    // The stopped container's name, until the `rename` row renames it.
    let mut stopped = "compat-s";
    for r in ROWS {
        let subst = |a: &&str| -> String {
            match *a {
                "IMG" => IMAGE.to_string(),
                "IMG-MISSING" => "localhost/compat/not-here:1".to_string(),
                other => other.replace("{c}", "compat-c").replace("{s}", stopped),
            }
        };
        let (args, want) = match &r.check {
            Works(a, w) => (a, Some(*w)),
            Refused(a) => (a, None),
        };
        let mut args: Vec<String> = args.iter().map(subst).collect();
        if r.docker == "rename" {
            args[2] = "compat-renamed".into();
            stopped = "compat-renamed";
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.gcr(&refs);
        let ok = match want {
            Some(w) => out.status.success() && stdout(&out).contains(w),
            None => !out.status.success(),
        };
        if !ok {
            failures.push(format!(
                "{} ({:?}): exit {:?}, stdout {:?}, stderr {:?}",
                r.docker,
                args,
                out.status.code(),
                stdout(&out).chars().take(200).collect::<String>(),
                stderr(&out).chars().take(200).collect::<String>()
            ));
        }
    }
    let _ = env.gcr(&["rm", "-f", "compat-c", "compat-s", "compat-renamed"]);
    let _ = std::fs::remove_file("/tmp/gcr-compat-save.tar");
    let _ = std::fs::remove_file("/tmp/gcr-compat-rootfs.tar");
    assert!(
        failures.is_empty(),
        "rows that do not hold:\n{}",
        failures.join("\n")
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/docker-compat.md");
    let want = table();
    if std::env::var_os("GCR_UPDATE_COMPAT").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/docker-compat.md is stale; rerun with GCR_UPDATE_COMPAT=1 and commit it"
    );
}
