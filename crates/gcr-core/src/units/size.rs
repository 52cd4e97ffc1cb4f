//! Sizes. Parsing follows Docker's `units.RAMInBytes`: a decimal number, an optional
//! space, an optional unit letter `k m g t p` (any case), an optional `i` and an
//! optional `b`; every unit is a binary multiple (k = 1024). Formatting offers Docker's
//! `HumanSize` (decimal, 4 significant digits, `1.5GB`) and a binary form (`1.5GiB`).

/// A string that is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a size; use e.g. 512MB")]
pub struct SizeError(pub String);

/// Parses `512MB`, `1GB`, `64m`, `1g`, `100k`, `1024`, `1.5GB` into bytes.
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let err = || SizeError(input.to_string());
    let s = input.trim();
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return Err(err());
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let lower = rest.to_ascii_lowercase();
    let mut chars = lower.chars().peekable();
    let shift = match chars.peek() {
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('p') => 50,
        _ => 0,
    };
    if shift > 0 {
        chars.next();
    }
    if chars.peek() == Some(&'i') {
        chars.next();
    }
    if chars.peek() == Some(&'b') {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(err());
    }
    let multiplier = 1u64 << shift;
    if !num.contains('.') {
        let n: u64 = num.parse().map_err(|_| err())?;
        return n.checked_mul(multiplier).ok_or_else(err);
    }
    let n: f64 = num.parse().map_err(|_| err())?;
    let bytes = n * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as u64)
}

/// `%.4g` of a value below 10000: at most 4 significant digits, no trailing zeros.
fn four_significant(v: f64) -> String {
    let int_digits = if v < 1.0 {
        1
    } else {
        (v.log10().floor() as i32 + 1).max(1)
    };
    let decimals = (4 - int_digits).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    // Rounding may add a digit (999.96 -> "1000.0"); %.4g would print 1000 then.
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// Docker's `units.HumanSize`: decimal units (kB, MB, GB, ...), 4 significant digits.
/// `human_size(1_500_000) == "1.5MB"`, `human_size(999) == "999B"`.
pub fn human_size(bytes: u64) -> String {
    scaled(
        bytes as f64,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"],
    )
}

/// Binary units as Docker's `units.BytesSize`: `format_size_binary(1536) == "1.5KiB"`.
pub fn format_size_binary(bytes: u64) -> String {
    scaled(
        bytes as f64,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"],
    )
}

fn scaled(mut v: f64, base: f64, units: &[&str]) -> String {
    let mut i = 0;
    while v >= base && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    format!("{}{}", four_significant(v), units[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_forms() {
        let cases = [
            ("512MB", 512 << 20),
            ("1GB", 1 << 30),
            ("64m", 64 << 20),
            ("1g", 1 << 30),
            ("100k", 100 << 10),
            ("1024", 1024),
            ("1.5GB", 3 << 29),
            ("1.5 GiB", 3 << 29),
            ("10b", 10),
            ("2T", 2 << 40),
            ("1p", 1 << 50),
            ("0", 0),
            ("32kib", 32 << 10),
        ];
        for (s, want) in cases {
            assert_eq!(parse_size(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        for s in [
            "512XB", "", "MB", "-1", "1..5g", ".5g", "5.g", "1gbb", "1 g b", "1e3", "1  g",
        ] {
            assert!(parse_size(s).is_err(), "{s}");
        }
        assert_eq!(
            parse_size("512XB").unwrap_err().to_string(),
            "'512XB' is not a size; use e.g. 512MB"
        );
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("20000000p").is_err());
    }

    #[test]
    fn formats_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(123_456_789), "123.5MB");
        assert_eq!(human_size(4_400_000_000), "4.4GB");
        assert_eq!(format_size_binary(1536), "1.5KiB");
        assert_eq!(format_size_binary(512 << 20), "512MiB");
    }
}
