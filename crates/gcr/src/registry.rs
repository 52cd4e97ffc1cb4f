//! Registry commands: `pull`, `push`, `login`, `logout`, `registry serve`. Transfers show a
//! progress bar per blob on a terminal and plain lines otherwise.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Mutex;

use clap::{Args, Subcommand};
use gcr_engine::registry::{
    ConnectOptions, Credentials, Platform, Progress, PullOptions, ServeOptions,
};
use gcr_engine::Engine;

use crate::cli::Cmd;
use crate::out::{errln, outln};
use crate::Failure;

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Image reference (NAME[:TAG|@DIGEST]).
    pub reference: String,
    /// Platform to pull from a multi-platform image (os/arch[/variant]); default the host's.
    #[arg(long)]
    pub platform: Option<String>,
    /// Allow plain http to a registry that is not on localhost.
    #[arg(long)]
    pub insecure: bool,
    /// Print only the image reference.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not pull the image's OCI 1.1 referrers (signatures, attestations).
    #[arg(long)]
    pub no_referrers: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Local image (name, id or digest).
    pub image: String,
    /// Destination reference (default: the image's own name).
    pub destination: Option<String>,
    /// Allow plain http to a registry that is not on localhost.
    #[arg(long)]
    pub insecure: bool,
    /// Print only the pushed digest.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Registry host[:port].
    #[arg(default_value = "docker.io")]
    pub server: String,
    /// User name.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin: command lines are visible to other users).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Allow plain http to a registry that is not on localhost.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// TEXT searches Docker Hub; REGISTRY/TEXT that registry's catalog (REGISTRY/ lists it).
    pub term: String,
    /// At most this many results (1 to 100; default 25).
    #[arg(long)]
    pub limit: Option<usize>,
    /// stars=N, is-official=true|false, is-automated=true|false (repeatable).
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// table, json, or a Go template (`{{.Name}}`, `{{.Description}}`, `{{.StarCount}}`,
    /// `{{.IsOfficial}}`; with --list-tags `{{.Name}}` and `{{.Tag}}`).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Do not truncate descriptions.
    #[arg(long)]
    pub no_trunc: bool,
    /// List the tags of the repository TERM names (REGISTRY/NAME) instead.
    #[arg(long)]
    pub list_tags: bool,
    /// Allow plain http to a registry that is not on localhost.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Subcommand, Debug)]
pub enum RegistryCmd {
    /// Serve an OCI distribution registry from the store (--root selects it).
    Serve {
        /// Listen address (port 0 picks a free port, printed on stdout).
        #[arg(long, default_value = "127.0.0.1:5000")]
        addr: String,
        /// htpasswd file of bcrypt users (optional third field: repo/*=rw,other=r).
        #[arg(long)]
        htpasswd: Option<std::path::PathBuf>,
        /// Database connections; the server takes up to 16 connections per thread (a full
        /// server closes the connection that has waited longest on its client).
        #[arg(long, default_value_t = 8)]
        threads: usize,
    },
}

/// Per-blob bars on a terminal, one line per finished blob otherwise.
struct Display {
    multi: Option<indicatif::MultiProgress>,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
    quiet: bool,
}

impl Display {
    fn new(quiet: bool) -> Display {
        let multi = (!quiet && std::io::stderr().is_terminal()).then(indicatif::MultiProgress::new);
        Display {
            multi,
            bars: Mutex::new(HashMap::new()),
            quiet,
        }
    }
}

impl Progress for Display {
    fn begin(&self, id: &str, total: u64) {
        let Some(m) = &self.multi else { return };
        let b = m.add(indicatif::ProgressBar::new(total));
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix}: [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_prefix(id.to_string());
        if let Ok(mut g) = self.bars.lock() {
            if let Some(old) = g.insert(id.to_string(), b) {
                old.finish_and_clear();
            }
        }
    }
    fn advance(&self, id: &str, n: u64) {
        if let Some(b) = self.bars.lock().ok().and_then(|g| g.get(id).cloned()) {
            b.inc(n);
        }
    }
    fn end(&self, id: &str, status: &str) {
        let bar = self.bars.lock().ok().and_then(|mut g| g.remove(id));
        match (&self.multi, bar) {
            (Some(_), Some(b)) => {
                b.set_style(
                    indicatif::ProgressStyle::with_template("{prefix}: {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b.finish_with_message(status.to_string());
            }
            (Some(m), None) => {
                let _ = m.println(format!("{id}: {status}"));
            }
            (None, _) if !self.quiet => errln!("{id}: {status}"),
            _ => {}
        }
    }
    fn message(&self, msg: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(msg);
            }
            None if !self.quiet => errln!("{msg}"),
            None => {}
        }
    }
}

fn pull(e: &Engine, a: &PullArgs) -> Result<i32, Failure> {
    let platform = match &a.platform {
        Some(p) => Some(Platform::parse(p).ok_or_else(|| {
            Failure::new(
                2,
                format!("invalid --platform '{p}'; use os/arch[/variant], e.g. linux/amd64"),
            )
        })?),
        None => None,
    };
    let opts = PullOptions {
        platform,
        connect: ConnectOptions {
            insecure: a.insecure,
            credentials: None,
        },
        no_referrers: a.no_referrers,
    };
    let d = Display::new(a.quiet);
    let r = e.pull(&a.reference, &opts, &d)?;
    if a.quiet {
        outln!("{}", r.reference)?;
        return Ok(0);
    }
    if r.up_to_date {
        outln!("Status: Image is up to date for {}", r.reference)?;
    } else {
        outln!("Digest: {}", r.digest)?;
        outln!("Status: Downloaded newer image for {}", r.reference)?;
    }
    if r.referrers > 0 {
        outln!("Referrers: {} pulled", r.referrers)?;
    }
    outln!("{}", r.reference)?;
    Ok(0)
}

fn push(e: &Engine, a: &PushArgs) -> Result<i32, Failure> {
    let opts = ConnectOptions {
        insecure: a.insecure,
        credentials: None,
    };
    let d = Display::new(a.quiet);
    let r = e.push(&a.image, a.destination.as_deref(), &opts, &d)?;
    if a.quiet {
        outln!("{}", r.digest)?;
    } else {
        outln!(
            "Pushed {} digest: {} size: {}",
            r.reference,
            r.digest,
            r.size
        )?;
        if r.referrers > 0 {
            outln!("Referrers: {} pushed", r.referrers)?;
        }
    }
    Ok(0)
}

/// Reads a line from the terminal, optionally without echo.
fn prompt(label: &str, hide: bool) -> Result<String, Failure> {
    let _ = write!(std::io::stderr(), "{label}");
    let _ = std::io::stderr().flush();
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain old data; tcgetattr fills it for a valid fd or fails.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `old` is a valid termios to write into.
    let have = hide && unsafe { libc::tcgetattr(fd, &mut old) } == 0;
    if have {
        let mut t = old;
        t.c_lflag &= !libc::ECHO;
        // SAFETY: `t` is a valid termios copied from the current settings.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
    }
    let mut line = String::new();
    let r = std::io::stdin().lock().read_line(&mut line);
    if have {
        // SAFETY: restores the settings read above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
        errln!("");
    }
    r.map_err(|e| Failure::new(1, format!("cannot read from the terminal: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn login(e: &Engine, a: &LoginArgs) -> Result<i32, Failure> {
    let tty = std::io::stdin().is_terminal();
    let username = match &a.username {
        Some(u) => u.clone(),
        None if tty && !a.password_stdin => prompt("Username: ", false)?,
        None => return Err(Failure::new(2, "give a user name with -u USER".into())),
    };
    let password = if a.password_stdin {
        if a.password.is_some() {
            return Err(Failure::new(
                2,
                "--password and --password-stdin are mutually exclusive".into(),
            ));
        }
        let mut s = String::new();
        std::io::stdin().lock().read_line(&mut s).map_err(|err| {
            Failure::new(
                1,
                format!("cannot read the password from standard input: {err}"),
            )
        })?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = &a.password {
        errln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else if tty {
        prompt("Password: ", true)?
    } else {
        return Err(Failure::new(
            2,
            "no password given; use --password-stdin".into(),
        ));
    };
    if username.is_empty() || password.is_empty() {
        return Err(Failure::new(
            2,
            "the user name and password must not be empty".into(),
        ));
    }
    let path = e.login(&a.server, Credentials { username, password }, a.insecure)?;
    errln!("Credentials saved in {}", path.display());
    outln!("Login Succeeded")?;
    Ok(0)
}

/// `gcr search`: Docker's columns (NAME, DESCRIPTION, STARS, OFFICIAL), or Podman's
/// `--list-tags` (NAME, TAG).
fn search(e: &Engine, a: &SearchArgs) -> Result<i32, Failure> {
    let connect = ConnectOptions {
        insecure: a.insecure,
        credentials: None,
    };
    let limit = a.limit.unwrap_or(gcr_engine::registry::SEARCH_LIMIT.0);
    // Each column's title and its item's key.
    type Columns = &'static [(&'static str, &'static str)];
    let (columns, items): (Columns, Vec<serde_json::Value>) = if a.list_tags {
        if !a.filter.is_empty() {
            return Err(Failure::new(
                2,
                "--filter applies to a search, not to --list-tags; leave one out".into(),
            ));
        }
        let r = gcr_engine::Reference::parse(&a.term).map_err(|err| {
            Failure::new(
                2,
                format!(
                    "'{}' is not a repository ({err}); give REGISTRY/NAME",
                    a.term
                ),
            )
        })?;
        let name = r.familiar_name();
        let tags = e.list_tags(&a.term, a.limit.unwrap_or(usize::MAX), &connect)?;
        let items = tags
            .into_iter()
            .map(|t| serde_json::json!({"Name": name, "Tag": t}))
            .collect();
        (&[("NAME", "Name"), ("TAG", "Tag")], items)
    } else {
        let pairs = crate::filters::Filters::parse(
            &a.filter,
            &["stars", "is-official", "is-automated"],
            "search",
        )?
        .into_pairs();
        let filter = gcr_engine::registry::SearchFilter::parse(&pairs)?;
        let hits = e.search(&a.term, limit, &filter, &connect)?;
        let items = hits
            .into_iter()
            .map(|h| {
                let description = if a.no_trunc || h.description.chars().count() <= 45 {
                    h.description
                } else {
                    let cut: String = h.description.chars().take(44).collect();
                    format!("{cut}…")
                };
                serde_json::json!({
                    "Name": h.name,
                    "Description": description,
                    "StarCount": h.star_count,
                    "IsOfficial": if h.is_official { "[OK]" } else { "" },
                    "IsAutomated": if h.is_automated { "[OK]" } else { "" },
                })
            })
            .collect();
        (
            &[
                ("NAME", "Name"),
                ("DESCRIPTION", "Description"),
                ("STARS", "StarCount"),
                ("OFFICIAL", "IsOfficial"),
            ],
            items,
        )
    };
    match crate::template::Output::parse(&a.format)? {
        crate::template::Output::Json => {
            for v in &items {
                outln!("{v}")?;
            }
        }
        crate::template::Output::Template(t) => t.print(&items)?,
        crate::template::Output::Table => {
            let cell = |v: &serde_json::Value, k: &str| match v.get(k) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|v| columns.iter().map(|(_, k)| cell(v, k)).collect())
                .collect();
            let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
            crate::render::table_out(&headers, &rows)?;
        }
    }
    Ok(0)
}

pub fn dispatch(e: &Engine, c: Cmd) -> Result<i32, Failure> {
    match c {
        Cmd::Search(a) => search(e, &a),
        Cmd::Pull(a) => pull(e, &a),
        Cmd::Push(a) => push(e, &a),
        Cmd::Login(a) => login(e, &a),
        Cmd::Logout { server } => {
            if e.logout(&server)? {
                outln!("Removing login credentials for {server}")?;
            } else {
                outln!("Not logged in to {server}")?;
            }
            Ok(0)
        }
        Cmd::Registry {
            cmd:
                RegistryCmd::Serve {
                    addr,
                    htpasswd,
                    threads,
                },
        } => {
            let opts = ServeOptions {
                addr,
                root: e.root().to_path_buf(),
                htpasswd,
                threads,
            };
            gcr_engine::registry::serve(&opts)?;
            Ok(0)
        }
        _ => Err(Failure::new(1, "not a registry command".into())),
    }
}
