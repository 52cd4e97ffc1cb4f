//! Command-line definitions (clap derive): Docker's verbs and flags.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "gcr",
    version,
    about = "gcr — the glass-box container runtime: deterministic images, fast isolated containers",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Store directory (images, containers, database).
    #[arg(long, global = true, env = "GCR_ROOT")]
    pub root: Option<PathBuf>,
    /// Image policy (containers-policy.json format); default <root>/policy.json if present.
    #[arg(long, global = true, env = "GCR_POLICY")]
    pub policy: Option<PathBuf>,
    /// Run policy (what containers may do); default <root>/run-policy.json if present.
    #[arg(long, global = true, env = "GCR_RUN_POLICY")]
    pub run_policy: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// List images.
    Images(ImagesArgs),
    /// Show low-level information on images or containers.
    Inspect(InspectArgs),
    /// Show the history of an image.
    History {
        image: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Create a tag TARGET that refers to SOURCE.
    Tag { source: String, target: String },
    /// Remove one or more images.
    Rmi {
        #[arg(required = true)]
        images: Vec<String>,
        #[arg(short, long)]
        force: bool,
    },
    /// Import a root filesystem tarball as a single-layer image.
    Import {
        /// Tarball path (plain or gzip), or - for stdin.
        file: String,
        /// Reference to tag the image with.
        reference: Option<String>,
        /// Apply a Dockerfile instruction to the image's config (CMD, ENV, ...).
        #[arg(short, long = "change")]
        changes: Vec<String>,
        /// The history entry's comment.
        #[arg(short, long)]
        message: Option<String>,
    },
    /// Load images from an oci-archive or docker-archive.
    Load {
        #[arg(short, long)]
        input: Option<PathBuf>,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Save images to an archive.
    Save {
        /// Names (their tags travel) or ids (no name travels, as with docker save).
        #[arg(required = true)]
        images: Vec<String>,
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// oci-archive or docker-archive.
        #[arg(long, default_value = "docker-archive")]
        format: String,
    },
    /// Show version information.
    Version {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show system-wide information.
    Info {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Manage gcr's store.
    System {
        #[command(subcommand)]
        cmd: SystemCmd,
    },
    /// Verify every blob and the database against the disk.
    Doctor {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Also re-hash every snapshot's contents against the digest recorded at unpack.
        #[arg(long)]
        snapshots: bool,
        /// Fix what can be fixed safely (stale temp files, orphaned or damaged snapshots,
        /// this store's run-dir image cache); list the rest.
        #[arg(long)]
        repair: bool,
    },
    /// Print a shell completion script.
    Completion { shell: clap_complete::Shell },

    /// Create and run a new container.
    Run(RunArgs),
    /// Create a new container without starting it.
    Create(RunArgs),
    /// Start stopped containers.
    Start {
        #[arg(required = true)]
        containers: Vec<String>,
        /// Attach output and wait for the exit (returns the container's code).
        #[arg(short, long)]
        attach: bool,
        /// Attach stdin too (the container must have been created with -i).
        #[arg(short, long)]
        interactive: bool,
        /// The key sequence that detaches (default ctrl-p,ctrl-q).
        #[arg(long = "detach-keys")]
        detach_keys: Option<String>,
    },
    /// Stop running containers (stop signal, then SIGKILL after the timeout).
    Stop {
        #[arg(required = true)]
        containers: Vec<String>,
        #[arg(short = 't', long = "time")]
        time: Option<u32>,
    },
    /// Send a signal to running containers.
    Kill {
        #[arg(required = true)]
        containers: Vec<String>,
        #[arg(short, long, default_value = "KILL")]
        signal: String,
    },
    /// Restart containers.
    Restart {
        #[arg(required = true)]
        containers: Vec<String>,
        #[arg(short = 't', long = "time")]
        time: Option<u32>,
    },
    /// Remove containers.
    Rm {
        #[arg(required = true)]
        containers: Vec<String>,
        #[arg(short, long)]
        force: bool,
        /// Remove the container's anonymous volumes too.
        #[arg(short, long)]
        volumes: bool,
    },
    /// Create a new image from a container's changes.
    Commit(crate::parity::CommitArgs),
    /// Copy files between a container and the local filesystem.
    Cp(crate::parity::CpArgs),
    /// Show what a container changed in its filesystem (A added, C changed, D deleted).
    Diff { container: String },
    /// Update the limits or restart policy of containers.
    Update(crate::parity::UpdateArgs),
    /// Rename a container.
    Rename { container: String, new_name: String },
    /// Export a container's filesystem as a tar archive.
    Export {
        container: String,
        /// Write to a file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Manage containers (Docker's group: ls, rm, inspect, prune, and the other verbs).
    Container {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Manage images (Docker's group: ls, rm, inspect, prune, and the other verbs).
    Image {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Remove all stopped containers (`gcr container prune`).
    #[command(name = "container-prune", hide = true)]
    ContainerPrune {
        #[arg(short, long)]
        force: bool,
        /// Only what matches: until=DURATION|TIMESTAMP, label=KEY[=VALUE], label!=KEY[=VALUE]
        /// (repeatable; all must hold).
        #[arg(long, value_name = "FILTER")]
        filter: Vec<String>,
    },
    /// Manage builds (Docker's group: build, prune).
    Builder {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Remove the build step cache no image uses; -a all of it (`gcr builder prune`).
    #[command(name = "builder-prune", hide = true)]
    BuilderPrune {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
        /// until=DURATION|TIMESTAMP: only cache made before then (e.g. until=24h).
        #[arg(long, value_name = "until=…")]
        filter: Vec<String>,
        /// Keep this much cache (e.g. 1g): the oldest entries go until the rest fits.
        #[arg(long, value_name = "SIZE")]
        keep_storage: Option<String>,
    },
    /// Remove dangling images, with -a every image no container uses (`gcr image prune`).
    #[command(name = "image-prune", hide = true)]
    ImagePrune {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
        /// Only what matches: until=DURATION|TIMESTAMP, label=KEY[=VALUE], label!=KEY[=VALUE]
        /// (repeatable; all must hold).
        #[arg(long, value_name = "FILTER")]
        filter: Vec<String>,
    },
    /// List containers.
    Ps(crate::parity::PsArgs),
    /// Fetch the logs of a container.
    Logs {
        container: String,
        #[arg(short, long)]
        follow: bool,
        /// Number of lines to show from the end of the logs (or all).
        #[arg(short = 'n', long)]
        tail: Option<String>,
        #[arg(short, long)]
        timestamps: bool,
        /// Show logs since a time (unix seconds, RFC 3339) or for a duration (10m, 1h).
        #[arg(long)]
        since: Option<String>,
        /// Show logs before a time (unix seconds, RFC 3339) or a duration ago.
        #[arg(long)]
        until: Option<String>,
    },
    /// Block until containers stop, then print their exit codes.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Attach to a running container's input and output (detach with ctrl-p ctrl-q).
    Attach {
        container: String,
        /// The key sequence that detaches (default ctrl-p,ctrl-q).
        #[arg(long = "detach-keys")]
        detach_keys: Option<String>,
        /// Do not attach stdin.
        #[arg(long = "no-stdin")]
        no_stdin: bool,
        /// Accepted for Docker compatibility (signals reach a container through its
        /// terminal or `gcr kill`).
        #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
        sig_proxy: bool,
    },
    /// Pause all processes of containers.
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause containers.
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Resource usage of containers.
    Stats {
        containers: Vec<String>,
        #[arg(long)]
        no_stream: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Processes of a container, as the host's `ps` shows them (default `-ef`).
    Top {
        container: String,
        /// Options for ps (e.g. aux, or -o pid,user,comm).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_options: Vec<String>,
    },
    /// Lifecycle, image, volume and network events.
    Events {
        /// Show events from this time (unix seconds, RFC 3339, or a duration ago: 10m).
        #[arg(long)]
        since: Option<String>,
        /// Stop at this time (same forms; `0s` is now); without it, follow new events.
        #[arg(long)]
        until: Option<String>,
        /// Only matching events: type=container|image|…, container=NAME|ID, event=CAUSE,
        /// image=NAME|ID, label=KEY[=VALUE] (repeatable; the same key twice matches either).
        #[arg(short, long = "filter", value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// table, json, or a Go template over Docker's event shape (`{{.Action}}`,
        /// `{{.Actor.Attributes.name}}`, `{{.Type}}`, `{{.TimeNano}}`).
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// The tamper-evident audit ledger: log, verify, proofs, checkpoints.
    Audit {
        #[command(subcommand)]
        cmd: crate::audit::AuditCmd,
    },
    /// Build an image from a Dockerfile or a .gcr spec.
    Build(crate::build::BuildArgs),
    /// Pull an image from a registry.
    Pull(crate::registry::PullArgs),
    /// Push an image to a registry.
    Push(crate::registry::PushArgs),
    /// Search a registry for repositories (Docker Hub's index, or another registry's
    /// catalog), or list a repository's tags.
    Search(crate::registry::SearchArgs),
    /// Log in to a registry.
    Login(crate::registry::LoginArgs),
    /// Log out from a registry.
    Logout { server: String },
    /// Serve an OCI registry from a gcr store.
    Registry {
        #[command(subcommand)]
        cmd: crate::registry::RegistryCmd,
    },
    /// Manage networks.
    Network {
        #[command(subcommand)]
        cmd: crate::network::NetworkCmd,
    },
    /// Manage volumes.
    Volume {
        #[command(subcommand)]
        cmd: crate::network::VolumeCmd,
    },
    /// List port mappings of a container.
    Port {
        container: String,
        /// Only this container port: PORT[/tcp|udp] (prints its host addresses).
        private_port: Option<String>,
    },
    /// Manage signing keys (Ed25519).
    Key {
        #[command(subcommand)]
        cmd: crate::trust::KeyCmd,
    },
    /// Manage secrets (encrypted at rest; given to containers with --secret or
    /// -e VAR=grant://NAME).
    Secret {
        #[command(subcommand)]
        cmd: crate::secrets::SecretCmd,
    },
    /// Sign an image: an in-toto statement in a Sigstore bundle, attached as a referrer.
    Sign(crate::trust::SignArgs),
    /// Verify an image's blobs and its signature by a key.
    Verify(crate::trust::VerifyArgs),
    /// MiniContainer manifests (ll.minicontainer.v1): verify, sign, apply, plan.
    Manifest {
        #[command(subcommand)]
        cmd: crate::manifest::ManifestCmd,
    },
    /// Policy: explain what the policy gate decides (`policy check IMAGE [run flags]`).
    Policy {
        #[command(subcommand)]
        cmd: crate::policy::PolicyCmd,
    },
    /// Test hook: attach FILE to an image as an OCI 1.1 artifact; prints its digest.
    #[command(name = "__attach", hide = true)]
    AttachArtifact {
        /// Image (or referrer digest) the artifact refers to.
        subject: String,
        artifact_type: String,
        file: PathBuf,
        /// KEY=VALUE annotations.
        #[arg(long = "annotation")]
        annotations: Vec<String>,
    },
    #[command(name = "__supervise", hide = true)]
    Supervise {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

// Parsed once per process: the service's many options make that variant large, which
// costs nothing here.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum SystemCmd {
    /// Disk usage.
    Df {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Per image, container and volume.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Remove stopped containers, unused networks and dangling images (-a: every unused
    /// image; --volumes: anonymous volumes too).
    Prune {
        #[arg(short, long)]
        force: bool,
        /// Remove every image no container uses, not only dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Remove anonymous volumes no container uses too.
        #[arg(long)]
        volumes: bool,
        /// Only what matches: until=DURATION|TIMESTAMP, label=KEY[=VALUE], label!=KEY[=VALUE]
        /// (repeatable; all must hold).
        #[arg(long, value_name = "FILTER")]
        filter: Vec<String>,
    },
    /// Serve the Docker Engine API (v1.41) for the docker CLI, docker-compose and SDKs, on
    /// a root-only unix socket (default unix://RUN_DIR/gcr.sock, i.e.
    /// unix:///run/gcr/gcr.sock) or a TCP port (loopback, or any address with --tls), and
    /// the JSONL protocol on a unix socket next to it (docs/jsonl.md); runs until SIGINT or
    /// SIGTERM.
    Service {
        /// unix:///path/to/gcr.sock or tcp://IP:PORT (non-loopback TCP needs --tls).
        #[arg(short = 'H', long)]
        host: Option<String>,
        /// Members of this group (name or gid) may use the unix socket too.
        #[arg(long)]
        group: Option<String>,
        /// Serve TCP with TLS and require client certificates signed by --tlscacert
        /// (dockerd's --tlsverify).
        #[arg(long, visible_alias = "tlsverify")]
        tls: bool,
        /// CA of the client certificates [default: $DOCKER_CERT_PATH/ca.pem or ~/.docker/ca.pem].
        #[arg(long, value_name = "FILE")]
        tlscacert: Option<std::path::PathBuf>,
        /// The service's certificate [default: cert.pem beside the CA's default].
        #[arg(long, value_name = "FILE")]
        tlscert: Option<std::path::PathBuf>,
        /// The service's private key [default: key.pem beside the CA's default].
        #[arg(long, value_name = "FILE")]
        tlskey: Option<std::path::PathBuf>,
        /// Revoked client certificates: the CA's certificate revocation list(s), PEM. The
        /// TLS files are read again on SIGHUP (a renewed certificate, a new list).
        #[arg(long, value_name = "FILE")]
        tlscrl: Option<std::path::PathBuf>,
        /// The JSONL protocol's unix socket (docs/jsonl.md); default: next to the API's
        /// unix socket (gcr.sock -> gcr.jsonl.sock), or RUN_DIR/gcr.jsonl.sock.
        #[arg(long, value_name = "PATH")]
        jsonl: Option<String>,
        /// Serve no JSONL socket.
        #[arg(long, conflicts_with = "jsonl")]
        no_jsonl: bool,
        /// POST every live event (run_state.*, deploy.*, grant.*, minicontainer.*) to this
        /// URL as JSON, in order, retried until it answers 2xx (https://, or http:// to a
        /// loopback address).
        #[arg(long, value_name = "URL")]
        webhook: Option<String>,
        /// Only these event names or prefixes (comma-separated or repeated).
        #[arg(long, value_name = "LIST")]
        webhook_types: Vec<String>,
        /// Sign each body: X-Gcr-Signature-256 is sha256=HMAC-SHA256(the file's bytes, body).
        #[arg(long, value_name = "FILE")]
        webhook_secret: Option<PathBuf>,
        /// A registry the service may reach over plain http (or https it cannot verify
        /// instead: never), as dockerd's --insecure-registry: HOST[:PORT], or a network
        /// (CIDR, e.g. 10.0.0.0/8) for every registry whose address is in it; repeatable.
        /// Loopback registries need none.
        #[arg(long = "insecure-registry", value_name = "HOST[:PORT]|CIDR")]
        insecure_registry: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// table, json, or a Go template (`{{.Repository}}:{{.Tag}}`, `table {{.ID}}`).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Only images of this repository (`REPOSITORY[:TAG]`).
    pub reference: Option<String>,
    /// Show all images (gcr keeps no intermediate images: the same list).
    #[arg(short, long)]
    pub all: bool,
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long)]
    pub no_trunc: bool,
    /// Only images matching KEY=VALUE: reference, dangling, label, before, since.
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub objects: Vec<String>,
    /// image or container.
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Show the build transcript of an image built by `gcr build`.
    #[arg(long)]
    pub transcript: bool,
    /// List the image's OCI 1.1 referrers (signatures, attestations, other artifacts).
    #[arg(long, conflicts_with = "transcript")]
    pub referrers: bool,
    /// With --referrers: only those of this artifact type.
    #[arg(long, requires = "referrers")]
    pub artifact_type: Option<String>,
    /// Print each container's DNA: one digest over its image manifest, the key ids that
    /// verify the image's signatures, and its runtime definition, with those parts.
    #[arg(long, conflicts_with_all = ["transcript", "referrers"])]
    pub dna: bool,
    /// A Go template applied to each object (`{{.State.Status}}`, `{{json .Config}}`).
    #[arg(short, long, conflicts_with_all = ["transcript", "referrers", "dna"])]
    pub format: Option<String>,
}

/// The limits `run`/`create` and `update` share, as Docker's flags.
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    #[arg(long, short = 'm')]
    pub memory: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long)]
    pub cpus: Option<String>,
    /// The CPU CFS period in microseconds (1000 to 1000000; default 100000), with --cpu-quota.
    #[arg(long = "cpu-period", value_name = "MICROSECONDS")]
    pub cpu_period: Option<i64>,
    /// The CPU CFS quota in microseconds per period (at least 1000; -1: none): --cpus as
    /// quota over period.
    #[arg(
        long = "cpu-quota",
        value_name = "MICROSECONDS",
        allow_hyphen_values = true
    )]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight; 1024 is the default share).
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Memory soft limit: what reclaim leaves the container under memory pressure (e.g. 256m).
    #[arg(long = "memory-reservation", value_name = "SIZE")]
    pub memory_reservation: Option<String>,
    /// Block I/O weight, relative (10 to 1000; 0: not set).
    #[arg(long = "blkio-weight", value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    #[arg(short, long)]
    pub detach: bool,
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long)]
    pub rm: bool,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(long)]
    pub entrypoint: Option<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    #[arg(long)]
    pub init: bool,
    /// Memory, CPU and pids limits (shared with `update`).
    #[command(flatten)]
    pub limits: LimitArgs,
    #[arg(long = "read-only")]
    pub read_only: bool,
    #[arg(long)]
    pub privileged: bool,
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// The container's networks: the first is `eth0`, each further one `eth1`, ...
    #[arg(long, alias = "net")]
    pub network: Vec<String>,
    #[arg(long, default_value = "no")]
    pub restart: String,
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// The hardware address of the container's first interface (default 02:42:<address>).
    #[arg(long = "mac-address", value_name = "MAC")]
    pub mac_address: Option<String>,
    /// The container's NIS domain name (its UTS namespace's).
    #[arg(long)]
    pub domainname: Option<String>,
    /// Tune the container's OOM killer preference (-1000 to 1000).
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i32>,
    /// The cgroup the container's group is made in (e.g. /mygroup), instead of gcr's own.
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// How readily the container's anonymous pages are swapped (0 to 100; -1: the host's).
    #[arg(
        long = "memory-swappiness",
        value_name = "0-100",
        allow_hyphen_values = true
    )]
    pub memory_swappiness: Option<i64>,
    /// Disable the OOM killer for the container (give --memory too).
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Block I/O weight of one device (DEVICE_PATH:WEIGHT).
    #[arg(long = "blkio-weight-device", value_name = "DEV:WEIGHT")]
    pub blkio_weight_device: Vec<String>,
    /// Limit the read rate from a device (DEVICE_PATH:RATE, e.g. /dev/sda:1mb).
    #[arg(long = "device-read-bps", value_name = "DEV:RATE")]
    pub device_read_bps: Vec<String>,
    /// Limit the write rate to a device (DEVICE_PATH:RATE).
    #[arg(long = "device-write-bps", value_name = "DEV:RATE")]
    pub device_write_bps: Vec<String>,
    /// Limit read operations per second from a device (DEVICE_PATH:IOPS).
    #[arg(long = "device-read-iops", value_name = "DEV:IOPS")]
    pub device_read_iops: Vec<String>,
    /// Limit write operations per second to a device (DEVICE_PATH:IOPS).
    #[arg(long = "device-write-iops", value_name = "DEV:IOPS")]
    pub device_write_iops: Vec<String>,
    /// Read labels from a file of KEY=VALUE lines (# comments and blank lines skipped).
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_file: Vec<String>,
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<u32>,
    /// Publish a container port: [ip:]hostPort:containerPort[/tcp|udp], or containerPort.
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes to a free host port.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Mount a volume: name:/path[:ro], /host/path:/path[:ro], or /path (anonymous).
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Mount another container's volumes and binds at their paths (its mode unless :ro or
    /// :rw is given).
    #[arg(long = "volumes-from", value_name = "CONTAINER[:ro|rw]")]
    pub volumes_from: Vec<String>,
    /// Mount a tmpfs: /path[:size=64m,mode=1777].
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    /// Give a secret as a file on a tmpfs: NAME or
    /// source=NAME[,target=PATH][,uid=N][,gid=N][,mode=0444] (target under /run/secrets).
    #[arg(long = "secret")]
    pub secret: Vec<String>,
    /// Command to check health (run with /bin/sh -c inside the container).
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between health checks (e.g. 30s).
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time a check may take (e.g. 30s).
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries")]
    pub health_retries: Option<u32>,
    /// Start period during which failures do not count (e.g. 5s).
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Time between checks during the start period (default: --health-interval).
    #[arg(long = "health-start-interval", value_name = "DURATION")]
    pub health_start_interval: Option<String>,
    /// Disable any healthcheck the image defines.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Another name the container answers to on its user network (repeatable).
    #[arg(long = "network-alias", alias = "net-alias", value_name = "NAME")]
    pub network_alias: Vec<String>,
    /// The IPv4 address on its user network (inside the network's subnet).
    #[arg(long, value_name = "IPV4")]
    pub ip: Option<String>,
    /// The IPv6 address on its dual-stack user network (inside the network's IPv6 subnet).
    #[arg(long, value_name = "IPV6")]
    pub ip6: Option<String>,
    /// Add a line to /etc/hosts (`NAME:IP`).
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// Link to another container (Docker's legacy links): its address under NAME and
    /// ALIAS in this container's /etc/hosts (and DNS on a user network). It must run when
    /// this one starts.
    #[arg(long, value_name = "NAME[:ALIAS]")]
    pub link: Vec<String>,
    /// Name servers, search domains and resolver options for /etc/resolv.conf.
    #[arg(long)]
    pub dns: Vec<String>,
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    /// Size of /dev/shm (default 64m).
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Additional groups for the container's process (names from the image, or numbers).
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// A resource limit, `NAME=SOFT[:HARD]` (nofile, nproc, core, stack, …).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Pull the image first: always, missing (when not in the store) or never (gcr's
    /// default: nothing is fetched unless asked).
    #[arg(long, value_name = "always|missing|never")]
    pub pull: Option<String>,
    /// Say nothing about the pull (--pull).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Expose a port or a range (PORT[-PORT][/tcp|udp]) besides the image's: published by
    /// -P, shown in inspect's Config.ExposedPorts.
    #[arg(long, value_name = "PORT[/PROTO]")]
    pub expose: Vec<String>,
    /// Attach a mount: type=bind|volume|tmpfs,source=…,target=…[,readonly][,bind-propagation=…]
    /// [,tmpfs-size=…][,tmpfs-mode=…].
    #[arg(long = "mount")]
    pub mount: Vec<String>,
    /// A namespaced kernel parameter for the container, `KEY=VALUE` (net.*, kernel.shm*, …).
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// The pid namespace: host, or container:NAME to share another container's.
    #[arg(long)]
    pub pid: Option<String>,
    /// The IPC namespace (and /dev/shm): host, or container:NAME.
    #[arg(long)]
    pub ipc: Option<String>,
    /// The UTS namespace: host.
    #[arg(long)]
    pub uts: Option<String>,
    /// The user namespace: host (containers are in the host's: gcr remaps none).
    #[arg(long)]
    pub userns: Option<String>,
    /// A host device in the container: HOST[:CONTAINER][:rwm].
    #[arg(long)]
    pub device: Vec<String>,
    /// Write the container id to this file (which must not exist yet).
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Attach to these streams of a foreground run (stdin, stdout, stderr); the others are
    /// not connected.
    #[arg(short = 'a', long = "attach", value_name = "STDIN|STDOUT|STDERR")]
    pub attach: Vec<String>,
    /// With -it: the key sequence that detaches (default ctrl-p,ctrl-q).
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Where the container's output goes: json-file (the default) or local keep it for
    /// `logs`, none keeps nothing.
    #[arg(long = "log-driver", value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Log rotation: max-size=SIZE (start a new file past it), max-file=N (files kept).
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// The image's platform (`os/arch[/variant]`): pulled for it, checked against it.
    #[arg(long)]
    pub platform: Option<String>,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[arg(short, long)]
    pub detach: bool,
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}
