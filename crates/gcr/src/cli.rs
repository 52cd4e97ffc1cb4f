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
    },
    /// List containers.
    Ps {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        quiet: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Fetch the logs of a container.
    Logs {
        container: String,
        #[arg(short, long)]
        follow: bool,
        #[arg(long)]
        tail: Option<String>,
        #[arg(short, long)]
        timestamps: bool,
    },
    /// Block until containers stop, then print their exit codes.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Attach to a running container's output and wait for its exit.
    Attach { container: String },
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
    /// Processes of a container.
    Top { container: String },
    /// Lifecycle and image events.
    Events {
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// The tamper-evident audit ledger: log, verify, proofs, checkpoints.
    Audit {
        #[command(subcommand)]
        cmd: crate::audit::AuditCmd,
    },
    /// Build an image from a .gcr spec.
    Build(crate::build::BuildArgs),
    /// Pull an image from a registry.
    Pull(crate::registry::PullArgs),
    /// Push an image to a registry.
    Push(crate::registry::PushArgs),
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
    Port { container: String },
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

#[derive(Subcommand, Debug)]
pub enum SystemCmd {
    /// Disk usage.
    Df {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Remove unused data (dangling images, unreferenced blobs and snapshots, stopped containers with --all).
    Prune {
        #[arg(short, long)]
        force: bool,
        #[arg(short, long)]
        all: bool,
    },
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    #[arg(long)]
    pub no_trunc: bool,
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
}

#[derive(Args, Debug, Clone)]
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
    #[arg(long, short = 'm')]
    pub memory: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long)]
    pub cpus: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
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
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    #[arg(long, default_value = "no")]
    pub restart: String,
    #[arg(short, long = "label")]
    pub label: Vec<String>,
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
    /// Disable any healthcheck the image defines.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
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

impl Cli {
    /// Parses the command line. `gcr run ...`, the hot path, builds only the `run`
    /// parser: clap's derive builds every subcommand's parser before parsing, which costs
    /// about 0.5 ms per process here. Anything the fast parser does not accept (help,
    /// errors) goes to the full parser, so messages and exit codes are the same.
    pub fn parse_fast() -> Cli {
        use clap::{Args, FromArgMatches, Parser};
        let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
        // The global options may come before `run` (`gcr --policy F run …`): skip them to
        // find it, and hand them to the run parser, which knows them too.
        let mut at = 1;
        while let Some(a) = argv.get(at).and_then(|a| a.to_str()) {
            if matches!(a, "--root" | "--policy" | "--run-policy") {
                at += 2;
            } else if ["--root=", "--policy=", "--run-policy="]
                .iter()
                .any(|p| a.starts_with(p))
            {
                at += 1;
            } else {
                break;
            }
        }
        if argv.get(at).is_some_and(|a| a == "run") {
            let args: Vec<&std::ffi::OsString> =
                argv[1..at].iter().chain(&argv[at + 1..]).collect();
            let path_arg = |id: &'static str, long: &'static str, env: &'static str| {
                clap::Arg::new(id)
                    .long(long)
                    .env(env)
                    .value_parser(clap::value_parser!(PathBuf))
            };
            let cmd = clap::Command::new("run")
                .no_binary_name(true)
                .arg(path_arg("root", "root", "GCR_ROOT"))
                .arg(path_arg("policy", "policy", "GCR_POLICY"))
                .arg(path_arg("run_policy", "run-policy", "GCR_RUN_POLICY"));
            let cmd = RunArgs::augment_args(cmd);
            if let Ok(m) = cmd.try_get_matches_from(args) {
                if let Ok(a) = RunArgs::from_arg_matches(&m) {
                    return Cli {
                        root: m.get_one::<PathBuf>("root").cloned(),
                        policy: m.get_one::<PathBuf>("policy").cloned(),
                        run_policy: m.get_one::<PathBuf>("run_policy").cloned(),
                        cmd: Cmd::Run(a),
                    };
                }
            }
        }
        Cli::parse()
    }
}
