//! Linux signal names and numbers (x86_64/aarch64 numbering) as Docker accepts them for
//! `--stop-signal`, `kill --signal` and `STOPSIGNAL`: `SIGTERM`, `TERM`, `term`, `15`,
//! and the real-time range `SIGRTMIN` (34) .. `SIGRTMAX` (64) with `+n`/`-n` offsets.

/// SIGKILL's number.
pub const SIGKILL: i32 = 9;
/// SIGTERM's number.
pub const SIGTERM: i32 = 15;

const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

const TABLE: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

const ALIASES: &[(&str, i32)] = &[("IOT", 6), ("CLD", 17), ("POLL", 29), ("UNUSED", 31)];

/// A string that is not a signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a signal; use e.g. SIGTERM, TERM or 15")]
pub struct SignalError(pub String);

/// Parses a signal name or number into its number (1..=64).
pub fn parse_signal(input: &str) -> Result<i32, SignalError> {
    let err = || SignalError(input.to_string());
    if !input.is_empty() && input.bytes().all(|b| b.is_ascii_digit()) {
        return match input.parse::<i32>() {
            Ok(n) if (1..=RTMAX).contains(&n) => Ok(n),
            _ => Err(err()),
        };
    }
    let upper = input.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = TABLE.iter().chain(ALIASES).find(|(s, _)| *s == name) {
        return Ok(n);
    }
    let offset = |rest: &str| -> Option<i32> {
        if rest.is_empty() {
            return Some(0);
        }
        let (sign, digits) = rest.split_at(1);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 2 {
            return None;
        }
        let v: i32 = digits.parse().ok()?;
        match sign {
            "+" => Some(v),
            "-" => Some(-v),
            _ => None,
        }
    };
    let n = if let Some(rest) = name.strip_prefix("RTMIN") {
        offset(rest).map(|o| RTMIN + o)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        offset(rest).map(|o| RTMAX + o)
    } else {
        None
    };
    match n {
        Some(n) if (RTMIN..=RTMAX).contains(&n) => Ok(n),
        _ => Err(err()),
    }
}

/// The canonical name of a signal number: `15 -> SIGTERM`, `37 -> SIGRTMIN+3`,
/// `60 -> SIGRTMAX-4`. `None` outside 1..=64 and for 32/33 (used by glibc).
pub fn signal_name(n: i32) -> Option<String> {
    if let Some((name, _)) = TABLE.iter().find(|(_, v)| *v == n) {
        return Some(format!("SIG{name}"));
    }
    match n {
        RTMIN => Some("SIGRTMIN".to_string()),
        RTMAX => Some("SIGRTMAX".to_string()),
        35..=49 => Some(format!("SIGRTMIN+{}", n - RTMIN)),
        50..=63 => Some(format!("SIGRTMAX-{}", RTMAX - n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        for s in ["SIGTERM", "TERM", "term", "SigTerm", "15"] {
            assert_eq!(parse_signal(s), Ok(15), "{s}");
        }
        assert_eq!(parse_signal("SIGKILL"), Ok(SIGKILL));
        assert_eq!(parse_signal("SIGRTMIN"), Ok(34));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse_signal("RTMAX-1"), Ok(63));
        assert_eq!(parse_signal("SIGRTMAX"), Ok(64));
        assert_eq!(parse_signal("SIGIOT"), Ok(6));
        assert_eq!(parse_signal("64"), Ok(64));
        assert_eq!(parse_signal("SIGWINCH"), Ok(28));
    }

    #[test]
    fn rejects_unknown() {
        for s in [
            "",
            "0",
            "65",
            "SIGFOO",
            "SIG",
            "SIGRTMIN+31",
            "SIGRTMAX+1",
            "RTMIN-1",
            "RTMIN+",
            "-1",
            "SIGRTMIN 3",
            "99999999999",
        ] {
            assert!(parse_signal(s).is_err(), "{s}");
        }
        assert_eq!(
            parse_signal("SIGFOO").unwrap_err().to_string(),
            "'SIGFOO' is not a signal; use e.g. SIGTERM, TERM or 15"
        );
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(signal_name(15).as_deref(), Some("SIGTERM"));
        assert_eq!(signal_name(37).as_deref(), Some("SIGRTMIN+3"));
        assert_eq!(signal_name(60).as_deref(), Some("SIGRTMAX-4"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(32), None);
        assert_eq!(signal_name(65), None);
        for n in (1..=31).chain(34..=64) {
            let name = signal_name(n).unwrap();
            assert_eq!(parse_signal(&name), Ok(n), "{name}");
        }
    }
}
