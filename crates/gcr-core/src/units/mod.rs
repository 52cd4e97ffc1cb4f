//! Human units as Docker spells them: sizes (`512MB`, `1g`, binary multiples),
//! durations (`1h30m`, `500ms`) and signals (`SIGTERM`, `TERM`, `15`, `SIGRTMIN+3`).
//! Pure parsing and formatting tables; no libc.

mod duration;
mod signal;
mod size;

pub use duration::{format_duration, parse_duration, DurationError};
pub use signal::{parse_signal, signal_name, SignalError, SIGKILL, SIGTERM};
pub use size::{format_size_binary, human_size, parse_size, SizeError};
