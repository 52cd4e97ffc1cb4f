//! `gcr policy check IMAGE [run flags] [--format json]`: explains what the policy gate
//! would decide for a container of IMAGE with those flags, without creating anything.

use clap::{Args, Subcommand};
use gcr_engine::Engine;

use crate::cli::{Format, RunArgs};
use crate::out::outln;
use crate::Failure;

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Explain the policy decision for IMAGE run with the given flags.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `gcr policy ...`: exit 0 when allowed, 125 when refused.
pub fn dispatch(e: &Engine, cmd: PolicyCmd) -> Result<i32, Failure> {
    let PolicyCmd::Check(a) = cmd;
    let opts = crate::containers::run_options(&a.run)?;
    let report = e
        .policy_check(opts)
        .map_err(|err| Failure::new(err.run_exit_code(), err.to_string()))?;
    let code = if report.allowed { 0 } else { 125 };
    if a.format == Format::Json {
        let s = serde_json::to_string_pretty(&report)
            .map_err(|err| Failure::new(1, format!("cannot render the report: {err}")))?;
        outln!("{s}")?;
        return Ok(code);
    }
    outln!("Image:    {}", report.image)?;
    outln!(
        "Decision: {}",
        if report.allowed { "allow" } else { "deny" }
    )?;
    match &report.image_decision {
        Some(d) => {
            outln!(
                "Image policy ({}):",
                report.image_policy_file.as_deref().unwrap_or("-")
            )?;
            outln!("  transport:    {}", d.transport)?;
            outln!(
                "  identity:     {}",
                if d.reference.is_empty() {
                    "(unnamed)"
                } else {
                    &d.reference
                }
            )?;
            outln!("  scope:        {}", d.rule)?;
            outln!("  requirements: {}", d.requirements.join(", "))?;
            outln!(
                "  result:       {} ({})",
                if d.allowed { "allow" } else { "deny" },
                d.reason
            )?;
        }
        None => outln!("Image policy: none")?,
    }
    match &report.run.file {
        Some(f) => {
            outln!("Run policy ({f}):")?;
            outln!("  registry:     {}", report.registry)?;
            if let (Some(rule), Some(reason)) = (&report.run.rule, &report.run.reason) {
                outln!("  result:       deny {rule} ({reason})")?;
            } else {
                outln!("  result:       allow")?;
                if let Some(d) = &report.run.defaults {
                    outln!(
                        "  defaults:     memory {} cpus {} pids {}",
                        d.memory.map_or("-".into(), |m| m.to_string()),
                        d.cpus.map_or("-".into(), |c| c.to_string()),
                        d.pids.map_or("-".into(), |p| p.to_string())
                    )?;
                }
            }
        }
        None => outln!("Run policy: none")?,
    }
    Ok(code)
}
