//! RFC 3339 timestamps without a date library: parse `2025-10-10T00:00:00Z` or
//! `2025-10-10T02:00:00.5+02:00` into Unix seconds + nanoseconds, and format Unix time
//! back as UTC (`2025-10-10T00:00:00Z`), the form OCI image configs use for `created`.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A point in time, UTC, with nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z (may be negative).
    pub unix: i64,
    /// Nanoseconds within the second (0..1e9).
    pub nanos: u32,
}

/// A string that is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an RFC 3339 timestamp; use e.g. 2025-10-10T00:00:00Z")]
pub struct TimeError(pub String);

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Timestamp {
    /// The Unix epoch, 1970-01-01T00:00:00Z (the default image `created` time).
    pub const EPOCH: Timestamp = Timestamp { unix: 0, nanos: 0 };

    pub fn from_unix(unix: i64) -> Timestamp {
        Timestamp { unix, nanos: 0 }
    }

    /// Parses RFC 3339 (`T` or `t` or space separator, `Z` or `±hh:mm` offset).
    pub fn parse(input: &str) -> Result<Timestamp, TimeError> {
        parse(input).ok_or_else(|| TimeError(input.to_string()))
    }

    /// Formats as UTC RFC 3339; fractional seconds only when non-zero, without trailing
    /// zeros (Go's `time.RFC3339Nano`).
    pub fn to_rfc3339(&self) -> String {
        let days = self.unix.div_euclid(86_400);
        let secs = self.unix.rem_euclid(86_400);
        let (y, mo, d) = civil_from_days(days);
        let mut s = format!(
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        );
        if self.nanos > 0 {
            let f = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(f.trim_end_matches('0'));
        }
        s.push('Z');
        s
    }
}

fn num(s: &str, range: std::ops::Range<usize>) -> Option<i64> {
    let part = s.get(range)?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn parse(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(s, 0..4)?, num(s, 5..7)?, num(s, 8..10)?);
    let (h, mi, sec) = (num(s, 11..13)?, num(s, 14..16)?, num(s, 17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    // A leap second (60) is accepted and folded into the next second, as Go does not;
    // we clamp to 59 to keep the value inside the minute.
    if sec > 60 {
        return None;
    }
    let sec = sec.min(59);
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if n == 0 || n > 9 {
            return None;
        }
        let digits = &frac[..n];
        nanos = format!("{digits:0<9}").parse().ok()?;
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = (num(rest, 1..3)?, num(rest, 4..6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let unix = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(Timestamp { unix, nanos })
}

impl FromStr for Timestamp {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Timestamp, TimeError> {
        Timestamp::parse(s)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(unix: i64) -> String {
    Timestamp::from_unix(unix).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            Timestamp::parse("1970-01-01T00:00:00Z"),
            Ok(Timestamp::EPOCH)
        );
        let t = Timestamp::parse("2025-10-10T00:00:00Z").unwrap();
        assert_eq!(t.unix, 1_760_054_400);
        let t2 = Timestamp::parse("2025-10-10T02:00:00+02:00").unwrap();
        assert_eq!(t2, t);
        let t3 = Timestamp::parse("2025-10-09T19:30:00.25-04:30").unwrap();
        assert_eq!((t3.unix, t3.nanos), (1_760_054_400, 250_000_000));
        assert_eq!(
            Timestamp::parse("2024-02-29t12:00:00z").unwrap().unix,
            1_709_208_000
        );
        assert_eq!(Timestamp::parse("1969-12-31T23:59:59Z").unwrap().unix, -1);
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "2025-10-10",
            "2025-10-10T00:00:00",
            "2025-13-10T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-10-10T24:00:00Z",
            "2025-10-10T00:00:00+2:00",
            "2025-10-10T00:00:00.Z",
            "2025-10-10T00:00:00.1234567891Z",
            "２025-10-10T00:00:00Z",
            "+025-10-10T00:00:00Z",
        ] {
            assert!(Timestamp::parse(s).is_err(), "{s}");
        }
        assert_eq!(
            Timestamp::parse("yesterday").unwrap_err().to_string(),
            "'yesterday' is not an RFC 3339 timestamp; use e.g. 2025-10-10T00:00:00Z"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_760_054_400), "2025-10-10T00:00:00Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59Z");
        let t = Timestamp {
            unix: 1,
            nanos: 500_000_000,
        };
        assert_eq!(t.to_string(), "1970-01-01T00:00:01.5Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"1970-01-01T00:00:01.5Z\""
        );
        for s in ["2000-02-29T23:59:59Z", "2400-12-31T00:00:00.000000001Z"] {
            assert_eq!(Timestamp::parse(s).unwrap().to_string(), s);
        }
    }
}
