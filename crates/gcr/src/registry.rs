//! Registry commands (being written).

use clap::{Args, Subcommand};
use gcr_engine::Engine;

use crate::cli::Cmd;
use crate::Failure;

#[derive(Args, Debug)]
pub struct PullArgs {
    pub reference: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    pub image: String,
    pub destination: Option<String>,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    pub server: String,
}

#[derive(Subcommand, Debug)]
pub enum RegistryCmd {
    /// Serve an OCI distribution registry.
    Serve,
}

pub fn dispatch(_e: &Engine, _c: Cmd) -> Result<i32, Failure> {
    Err(Failure::new(
        1,
        "registry commands are not available in this version".into(),
    ))
}
