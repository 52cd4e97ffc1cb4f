//! One stage under construction: its layers, its image config (Docker's field names), the
//! ARGs it declared, and the instructions that change only the config (ENV, LABEL, USER,
//! EXPOSE, VOLUME, CMD, ENTRYPOINT, HEALTHCHECK, STOPSIGNAL, SHELL, ONBUILD, MAINTAINER),
//! with Docker's rules: ENV beats ARG, a new ENTRYPOINT drops an inherited CMD, shell forms
//! run under the stage's SHELL, healthcheck durations in nanoseconds.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gcr_core::dockerfile::words;
use gcr_core::dockerfile::{CmdLine, HealthInstr, Kind};
use gcr_store::{chain_ids, NewLayer, Store};
use serde_json::{json, Map, Value};

use crate::error::{BuildError, Result};

/// PATH of a stage whose base sets none (BuildKit adds it too).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A stage's state.
#[derive(Clone)]
pub struct StageState {
    pub layers: Vec<NewLayer>,
    pub diff_ids: Vec<String>,
    /// The image config's `config` object.
    pub config: Map<String, Value>,
    pub architecture: String,
    pub os: String,
    /// The history, the base's first.
    pub history: Vec<Value>,
    /// Declared ARGs and their values (None: declared without a value).
    pub args: Vec<(String, Option<String>)>,
    /// CMD was set in this stage (then ENTRYPOINT keeps it).
    pub cmd_set: bool,
    pub escape: char,
    /// MAINTAINER.
    pub author: Option<String>,
    /// The image's `created` and that of the history entries the stage adds
    /// (`Stages::stage_created`: SOURCE_DATE_EPOCH, else the base image's).
    pub created: String,
    /// Snapshot dirs of `layers`, top first, while they are current.
    lowers: Option<Vec<PathBuf>>,
}

impl StageState {
    /// A stage starting from a base's config (`{}` for scratch) and layers, its image and
    /// added history `created` at `created`.
    pub fn new(
        base_cfg: &Value,
        layers: Vec<NewLayer>,
        escape: char,
        created: String,
    ) -> StageState {
        let mut config = base_cfg
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut st = StageState {
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
            layers,
            config: Map::new(),
            architecture: base_cfg
                .get("architecture")
                .and_then(Value::as_str)
                .unwrap_or(crate::config::host_arch())
                .to_string(),
            os: base_cfg
                .get("os")
                .and_then(Value::as_str)
                .unwrap_or("linux")
                .to_string(),
            history: base_cfg
                .get("history")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            args: Vec::new(),
            cmd_set: false,
            escape,
            author: base_cfg
                .get("author")
                .and_then(Value::as_str)
                .map(str::to_string),
            created,
            lowers: None,
        };
        config.remove("ArgsEscaped");
        st.config = config;
        if st.env().iter().all(|(k, _)| k != "PATH") {
            st.set_env("PATH", DEFAULT_PATH);
        }
        st
    }

    /// The chain ID of the layers so far.
    pub fn parent(&self) -> String {
        chain_ids(&self.diff_ids).pop().unwrap_or_default()
    }

    /// The stage's root filesystem as snapshot directories, top first (empty for scratch).
    pub fn lowers(&mut self, store: &Store) -> Result<Vec<PathBuf>> {
        if let Some(l) = &self.lowers {
            return Ok(l.clone());
        }
        let l = crate::step::lowers(store, &self.layers, &self.diff_ids)?;
        self.lowers = Some(l.clone());
        Ok(l)
    }

    /// Applies an instruction that only changes the config (ENV, LABEL, USER, EXPOSE,
    /// VOLUME, ENTRYPOINT, CMD, HEALTHCHECK, STOPSIGNAL, SHELL, ONBUILD, MAINTAINER);
    /// false for any other (RUN, COPY, WORKDIR and ARG are the caller's).
    pub fn config_instr(&mut self, kind: &Kind) -> std::result::Result<bool, String> {
        match kind {
            Kind::Env(p) => self.env_instr(p)?,
            Kind::Label(p) => self.label(p)?,
            Kind::User(u) => {
                let u = self.expand(u)?;
                self.set_str("User", u);
            }
            Kind::Expose(x) => self.expose(x)?,
            Kind::Volume(v, _) => self.volume(v)?,
            Kind::Entrypoint(c) => self.entrypoint(c),
            Kind::Cmd(c) => self.cmd(c),
            Kind::Healthcheck(h) => self.healthcheck(h)?,
            Kind::StopSignal(s) => {
                let s = self.expand(s)?;
                gcr_core::units::parse_signal(&s).map_err(|_| {
                    format!("invalid STOPSIGNAL '{s}'; use a name such as SIGTERM or a number")
                })?;
                self.set_str("StopSignal", s);
            }
            Kind::Shell(v) => self.shell_instr(v),
            Kind::OnBuild(t, _) => self.onbuild(t),
            Kind::Maintainer(m) => self.author = Some(m.clone()),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Adds a layer.
    pub fn push_layer(&mut self, layer: NewLayer, created_by: &str) {
        self.diff_ids.push(layer.diff_id.clone());
        self.layers.push(layer);
        self.lowers = None;
        self.history.push(
            json!({"created": self.created, "created_by": created_by, "comment": "gcr build"}),
        );
    }

    /// Records a config-only instruction.
    pub fn push_empty(&mut self, created_by: &str) {
        self.history.push(json!({"created": self.created, "created_by": created_by, "comment": "gcr build", "empty_layer": true}));
    }

    /// `Env` as pairs.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|kv| match kv.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (kv.to_string(), String::new()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn set_env(&mut self, k: &str, v: &str) {
        let mut env: Vec<String> = self
            .env()
            .into_iter()
            .map(|(a, b)| format!("{a}={b}"))
            .collect();
        let kv = format!("{k}={v}");
        match env.iter().position(|e| e.split('=').next() == Some(k)) {
            Some(i) => env[i] = kv,
            None => env.push(kv),
        }
        self.config.insert("Env".into(), json!(env));
    }

    /// What expansions see: the declared ARGs, then ENV (which wins).
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        v.extend(self.env());
        v
    }

    /// Expands one word.
    pub fn expand(&self, s: &str) -> std::result::Result<String, String> {
        words::expand(s, self.escape, &self.vars()).map_err(|e| e.to_string())
    }

    /// Expands and splits into words.
    pub fn expand_words(&self, s: &str) -> std::result::Result<Vec<String>, String> {
        words::expand_words(s, self.escape, &self.vars()).map_err(|e| e.to_string())
    }

    /// The environment of a RUN: ENV, then declared ARGs with values that ENV does not set,
    /// then the proxy build args (usable without a declaration, as in Docker).
    pub fn run_env(&self, build_args: &BTreeMap<String, String>) -> Vec<String> {
        let env = self.env();
        let mut out: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut seen: Vec<String> = env.into_iter().map(|(k, _)| k).collect();
        for (k, v) in &self.args {
            if let Some(v) = v {
                if !seen.contains(k) {
                    out.push(format!("{k}={v}"));
                    seen.push(k.clone());
                }
            }
        }
        for (k, v) in build_args {
            if super::args::is_proxy(k) && !seen.contains(k) {
                out.push(format!("{k}={v}"));
            }
        }
        out
    }

    /// The shell of shell-form commands.
    pub fn shell(&self) -> Vec<String> {
        self.config
            .get("Shell")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .filter(|v: &Vec<String>| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The argv of a command line.
    pub fn argv(&self, c: &CmdLine) -> Vec<String> {
        match c {
            CmdLine::Exec(v) => v.clone(),
            CmdLine::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }

    pub fn workdir(&self) -> String {
        self.config
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    pub fn user(&self) -> String {
        self.config
            .get("User")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }

    /// ENV k=v ...: every value expanded with the environment from before the line
    /// (`ENV A=x B=$A` gives B the old A, as Docker does).
    pub fn env_instr(&mut self, pairs: &[(String, String)]) -> std::result::Result<(), String> {
        let mut set = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let k = self.expand(k)?;
            if k.is_empty() {
                return Err("ENV names cannot be empty".into());
            }
            set.push((k, self.expand(v)?));
        }
        for (k, v) in set {
            self.set_env(&k, &v);
        }
        Ok(())
    }

    pub fn label(&mut self, pairs: &[(String, String)]) -> std::result::Result<(), String> {
        let mut add = Vec::new();
        for (k, v) in pairs {
            add.push((self.expand(k)?, self.expand(v)?));
        }
        self.add_labels(add);
        Ok(())
    }

    pub fn add_labels(&mut self, add: Vec<(String, String)>) {
        let l = self.config.entry("Labels").or_insert_with(|| json!({}));
        if !l.is_object() {
            *l = json!({});
        }
        if let Some(m) = l.as_object_mut() {
            for (k, v) in add {
                m.insert(k, json!(v));
            }
        }
    }

    pub fn expose(&mut self, raw: &str) -> std::result::Result<(), String> {
        let mut ports = Vec::new();
        for w in self.expand_words(raw)? {
            let (p, proto) = match w.split_once('/') {
                Some((p, pr)) => (p.to_string(), pr.to_ascii_lowercase()),
                None => (w.clone(), "tcp".into()),
            };
            if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                return Err(format!(
                    "invalid protocol in EXPOSE {w}; use tcp, udp or sctp"
                ));
            }
            let (lo, hi) = match p.split_once('-') {
                Some((a, b)) => (a, b),
                None => (p.as_str(), p.as_str()),
            };
            let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) else {
                return Err(format!(
                    "invalid port in EXPOSE {w}; use PORT[/PROTO] or FROM-TO"
                ));
            };
            if lo == 0 || hi < lo {
                return Err(format!("invalid port range in EXPOSE {w}"));
            }
            for n in lo..=hi {
                ports.push(format!("{n}/{proto}"));
            }
        }
        let m = self
            .config
            .entry("ExposedPorts")
            .or_insert_with(|| json!({}));
        if let Some(m) = m.as_object_mut() {
            for p in ports {
                m.insert(p, json!({}));
            }
        }
        Ok(())
    }

    pub fn volume(&mut self, paths: &[String]) -> std::result::Result<(), String> {
        let mut vs = Vec::new();
        for p in paths {
            let v = self.expand(p)?;
            if v.trim().is_empty() {
                return Err("VOLUME paths cannot be empty".into());
            }
            vs.push(v);
        }
        let m = self.config.entry("Volumes").or_insert_with(|| json!({}));
        if let Some(m) = m.as_object_mut() {
            for v in vs {
                m.insert(v, json!({}));
            }
        }
        Ok(())
    }

    pub fn cmd(&mut self, c: &CmdLine) {
        let argv = self.argv(c);
        self.config.insert("Cmd".into(), json!(argv));
        self.cmd_set = true;
    }

    pub fn entrypoint(&mut self, c: &CmdLine) {
        let argv = self.argv(c);
        self.config.insert("Entrypoint".into(), json!(argv));
        if !self.cmd_set {
            self.config.remove("Cmd");
        }
    }

    pub fn healthcheck(&mut self, h: &HealthInstr) -> std::result::Result<(), String> {
        let Some(cmd) = &h.cmd else {
            self.config
                .insert("Healthcheck".into(), json!({"Test": ["NONE"]}));
            return Ok(());
        };
        let test = match cmd {
            CmdLine::Shell(s) => json!(["CMD-SHELL", s]),
            CmdLine::Exec(v) => {
                let mut t = vec![json!("CMD")];
                t.extend(v.iter().map(|s| json!(s)));
                Value::Array(t)
            }
        };
        let mut hc = json!({"Test": test});
        for (field, v) in [
            ("Interval", &h.interval),
            ("Timeout", &h.timeout),
            ("StartPeriod", &h.start_period),
            ("StartInterval", &h.start_interval),
        ] {
            if let Some(v) = v {
                let d = gcr_core::units::parse_duration(v).map_err(|_| {
                    format!("invalid HEALTHCHECK duration '{v}'; use e.g. 30s or 1m30s")
                })?;
                if !d.is_zero() {
                    hc[field] = json!(d.as_nanos() as u64);
                }
            }
        }
        if let Some(r) = &h.retries {
            let n: u64 = r
                .parse()
                .map_err(|_| format!("invalid HEALTHCHECK --retries '{r}'; use a number"))?;
            if n > 0 {
                hc["Retries"] = json!(n);
            }
        }
        self.config.insert("Healthcheck".into(), hc);
        Ok(())
    }

    pub fn set_str(&mut self, field: &str, v: String) {
        self.config.insert(field.into(), json!(v));
    }

    pub fn shell_instr(&mut self, v: &[String]) {
        self.config.insert("Shell".into(), json!(v));
    }

    pub fn onbuild(&mut self, trigger: &str) {
        let l = self.config.entry("OnBuild").or_insert_with(|| json!([]));
        if let Some(a) = l.as_array_mut() {
            a.push(json!(trigger));
        }
    }

    /// The whole image config of the stage.
    pub fn image_config(&self) -> Value {
        let mut cfg = self.config.clone();
        for k in ["Labels", "ExposedPorts", "Volumes", "OnBuild"] {
            let empty = match cfg.get(k) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                cfg.remove(k);
            }
        }
        let mut out = json!({
            "architecture": self.architecture,
            "os": self.os,
            "created": self.created,
            "config": Value::Object(cfg),
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids},
            "history": self.history,
        });
        if let Some(a) = &self.author {
            out["author"] = json!(a);
        }
        out
    }
}

/// A location-prefixed build error.
pub fn at(file: &str, loc: gcr_core::dockerfile::Loc, msg: impl std::fmt::Display) -> BuildError {
    BuildError::Spec(format!("{file}:{}:{}: {msg}", loc.line, loc.col))
}
