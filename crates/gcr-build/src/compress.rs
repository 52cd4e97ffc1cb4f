//! The compressions Docker's ADD unpacks: gzip, bzip2 and xz (and none), told apart by
//! their magic bytes, as one reader. bzip2 is decoded as it is read; xz (whose decoder
//! writes rather than reads) into an anonymous temp file first.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// `rd` decompressed as its first bytes say.
pub fn reader<'a>(rd: &'a mut dyn Read) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::new(rd);
    let head = br.fill_buf()?.to_vec();
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(br)))
    } else if head.starts_with(b"BZh") {
        Ok(Box::new(bzip2::read::MultiBzDecoder::new(br)))
    } else if head.starts_with(XZ_MAGIC) {
        let mut spool = tempfile::tempfile()?;
        lzma_rs::xz_decompress(&mut br, &mut spool)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{e:?}")))?;
        spool.seek(SeekFrom::Start(0))?;
        Ok(Box::new(spool))
    } else {
        Ok(Box::new(br))
    }
}

/// Whether the file at `p` is a tar archive, plain or compressed.
pub fn is_tar(p: &std::path::Path) -> bool {
    let Ok(mut f) = std::fs::File::open(p) else {
        return false;
    };
    let Ok(mut r) = reader(&mut f) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    got >= 262 && &head[257..262] == b"ustar"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_bytes() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "f", &b"abc"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn gzip_bzip2_xz_and_plain_tars_are_recognized_and_read() {
        let plain = tar_bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&plain).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &plain[..], &mut xz).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [("t", &plain), ("t.gz", &gz), ("t.bz2", &bz), ("t.xz", &xz)] {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            assert!(is_tar(&p), "{name}");
            let mut f = std::fs::File::open(&p).unwrap();
            let mut out = Vec::new();
            reader(&mut f).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, plain, "{name}");
        }
        let p = dir.path().join("text.xz");
        std::fs::write(&p, b"not a tar").unwrap();
        assert!(!is_tar(&p));
    }
}
