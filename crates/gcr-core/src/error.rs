//! Process exit codes shared by the CLI and the engine. `gcr run`/`gcr exec` follow
//! Docker: 125 when gcr itself failed, 126 when the command cannot be executed, 127 when
//! it cannot be found, otherwise the container's own exit status. Every other command
//! exits 0 on success, 1 on failure and 2 on a usage error.

/// The command succeeded.
pub const EXIT_OK: i32 = 0;
/// A command other than run/exec failed.
pub const EXIT_FAILURE: i32 = 1;
/// The command line was wrong (unknown flag, missing argument).
pub const EXIT_USAGE: i32 = 2;
/// `run`/`exec`: gcr itself failed before the container's process ran.
pub const EXIT_GCR_FAILED: i32 = 125;
/// `run`/`exec`: the container command exists but cannot be executed (permission, format).
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// `run`/`exec`: the container command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// The exit status a shell reports for a process killed by `signal` (128 + signal).
pub fn exit_code_for_signal(signal: i32) -> i32 {
    128 + signal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_codes() {
        assert_eq!(EXIT_GCR_FAILED, 125);
        assert_eq!(EXIT_NOT_EXECUTABLE, 126);
        assert_eq!(EXIT_NOT_FOUND, 127);
        assert_eq!((EXIT_OK, EXIT_FAILURE, EXIT_USAGE), (0, 1, 2));
        assert_eq!(exit_code_for_signal(9), 137);
        assert_eq!(exit_code_for_signal(15), 143);
    }
}
