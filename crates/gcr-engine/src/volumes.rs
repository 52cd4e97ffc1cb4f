//! Volumes as the engine sees them: the mounts a container gets for `-v`, `--tmpfs` and the
//! image's declared volumes, and their release when the container goes.

use oci_spec::runtime::Mount;

use crate::container::record::Record;
use crate::{Engine, EngineError};

impl Engine {
    /// Mounts for the container's volumes, creating named/anonymous volumes as needed.
    pub(crate) fn volume_mounts(&self, _r: &Record) -> Result<Vec<Mount>, EngineError> {
        Ok(Vec::new())
    }

    /// Releases a removed container's volumes (anonymous ones are deleted when asked).
    pub(crate) fn volumes_release(&self, _r: &Record, _remove_anonymous: bool) {}
}
