//! Durations in Go's `time.ParseDuration` syntax, which Docker uses for flags such as
//! `--health-interval`: a sequence of decimal numbers with units `ns us µs ms s m h`
//! (`30s`, `5m`, `1h30m`, `500ms`, `1.5h`; a bare `0` is allowed). No negative values.

use std::time::Duration;

/// A string that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a duration; use e.g. 30s, 5m, 1h30m or 500ms")]
pub struct DurationError(pub String);

/// Parses a Go-style duration.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(input.to_string());
    if input == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = input;
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(n);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(err());
        }
        let u = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u);
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| err())?
        };
        let mut value = int.checked_mul(nanos_per).ok_or_else(err)?;
        // Fraction: at most 18 significant digits is plenty for nanosecond precision.
        let mut scale = nanos_per;
        for d in frac.chars().take(18) {
            scale /= 10;
            if scale == 0 {
                break;
            }
            value += u128::from(d.to_digit(10).unwrap_or(0)) * scale;
        }
        total = total.checked_add(value).ok_or_else(err)?;
        rest = tail;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| err())?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Formats like Go's `Duration.String`: `1h30m0s`, `30s`, `500ms`, `1.5s`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let total = d.as_nanos();
    if total == 0 {
        return "0s".to_string();
    }
    if total < 1_000_000_000 {
        let (unit, div) = if total < 1_000 {
            ("ns", 1u128)
        } else if total < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", frac_string(total, div));
    }
    let h = total / 3_600_000_000_000;
    let m = (total / 60_000_000_000) % 60;
    let s = total % 60_000_000_000;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", frac_string(s, 1_000_000_000)));
    out
}

fn frac_string(v: u128, div: u128) -> String {
    let int = v / div;
    let frac = v % div;
    if frac == 0 {
        return int.to_string();
    }
    let width = div.ilog10() as usize;
    let f = format!("{frac:0width$}");
    format!("{int}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2us"), Ok(Duration::from_nanos(2000)));
        assert_eq!(parse_duration("1µs"), Ok(Duration::from_nanos(1000)));
        assert_eq!(parse_duration("3ns"), Ok(Duration::from_nanos(3)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "5",
            "30",
            "-1s",
            "5x",
            "s",
            "1h30",
            "1..5s",
            ".s",
            "1 s",
            "99999999999999999999999h",
        ] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
        assert_eq!(
            parse_duration("5x").unwrap_err().to_string(),
            "'5x' is not a duration; use e.g. 30s, 5m, 1h30m or 500ms"
        );
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m0s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_nanos(1500)), "1.5µs");
        for s in ["1h30m0s", "30s", "1.5s", "500ms", "2m3.25s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
