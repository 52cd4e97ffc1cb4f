//! gcr-core: the pure data and rules of gcr, with no syscalls and no I/O beyond
//! in-memory buffers. It owns the `.gcr` spec model and its parser/validator, image
//! references with Docker's normalization, content digests (sha256, blake3), RFC 8785
//! canonical JSON, sizes/durations/signals/timestamps, the container lifecycle state
//! machine and the CLI exit codes. Every other gcr crate builds on these types.

pub mod canonical_json;
pub mod digest;
pub mod dockerfile;
pub mod error;
pub mod jsonl;
pub mod lifecycle;
pub mod reference;
pub mod spec;
pub mod time;
pub mod units;

pub use digest::{Algorithm, Digest};
pub use reference::Reference;
pub use spec::{parse_spec, Spec, SpecError};
