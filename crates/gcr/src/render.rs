//! Table and size rendering for terminal output.

use std::io::{self, Write};

use crate::Failure;

/// Writes a left-aligned table with three spaces between columns, like Docker.
pub fn table(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            s.push_str(c);
            // Cells past the last header (a template's extra tabs) are not padded.
            if i + 1 < widths.len() {
                let pad = widths[i].saturating_sub(c.chars().count()) + 3;
                s.extend(std::iter::repeat_n(' ', pad));
            } else if i + 1 > widths.len() {
                s.push_str("   ");
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, &mut headers.iter().copied())?;
    for r in rows {
        line(out, &mut r.iter().map(String::as_str))?;
    }
    Ok(())
}

/// Writes a table to stdout (see [`table`]).
pub fn table_out(headers: &[&str], rows: &[Vec<String>]) -> Result<(), Failure> {
    table(&mut std::io::stdout().lock(), headers, rows).map_err(crate::out::failure)
}

/// Human size in Docker's style (decimal units): `4.26MB`, `512B`.
pub fn bytes(n: u64) -> String {
    gcr_engine::units::human_size(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_render_like_docker() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(4_260_000), "4.26MB");
        assert_eq!(bytes(1_000_000_000), "1GB");
    }

    /// Accepts `room` bytes, then fails like a pipe whose reader has gone.
    struct Closing {
        room: usize,
    }

    impl Write for Closing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_ends_the_table_with_its_error() {
        let rows = vec![vec!["a".to_string(), "b".to_string()]; 100];
        let err = table(&mut Closing { room: 20 }, &["A", "B"], &rows).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn tables_align() {
        let mut out = Vec::new();
        table(&mut out, &["A", "BB"], &[vec!["xxx".into(), "y".into()]]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A     BB\nxxx   y\n");
    }
}
