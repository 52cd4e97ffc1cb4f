//! Containers: their stored configuration and rows, the lifecycle operations, the
//! supervisor of detached containers, and read-only views (`ps`, `inspect`, `top`, `stats`).

pub mod config;
pub mod exec;
pub mod health;
pub mod ops;
pub mod procfs;
pub mod record;
pub mod run;
pub mod supervise;
pub mod view;
