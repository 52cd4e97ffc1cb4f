//! `gcr build` (being written).

use clap::Args;
use gcr_engine::Engine;

use crate::Failure;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Build context directory (containing exactly one .gcr spec), default `.`.
    pub context: Option<String>,
}

pub fn run(_e: &Engine, _a: &BuildArgs) -> Result<i32, Failure> {
    Err(Failure::new(
        1,
        "gcr build is not available in this version".into(),
    ))
}
