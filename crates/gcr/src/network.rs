//! Network, volume and port commands (being written).

use clap::Subcommand;
use gcr_engine::Engine;

use crate::cli::Cmd;
use crate::Failure;

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// List networks.
    Ls,
}

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// List volumes.
    Ls,
}

pub fn dispatch(_e: &Engine, _c: Cmd) -> Result<i32, Failure> {
    Err(Failure::new(
        1,
        "network and volume commands are not available in this version".into(),
    ))
}
