//! The file compressions UNLOAD writes and COPY reads: GZIP and ZSTD.

use crate::statement::Compression;
use std::io::{Read, Write};

/// Compress `data` for a file written with `c` (`None`: as is).
pub fn compress(c: Option<Compression>, data: &[u8]) -> std::io::Result<Vec<u8>> {
    match c {
        Some(Compression::Gzip) => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(data)?;
            gz.finish()
        }
        Some(Compression::Zstd) => zstd::bulk::compress(data, 1),
        Some(other) => Err(std::io::Error::other(format!(
            "the emulator does not write {other:?} files"
        ))),
        None => Ok(data.to_vec()),
    }
}

/// Decompress a file read with `c`.
pub fn decompress(c: Option<Compression>, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match c {
        Some(Compression::Gzip) => {
            flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
        }
        Some(Compression::Zstd) => {
            zstd::stream::read::Decoder::new(data)?.read_to_end(&mut out)?;
        }
        Some(other) => {
            return Err(std::io::Error::other(format!(
                "the emulator does not read {other:?} files"
            )));
        }
        None => out.extend_from_slice(data),
    }
    Ok(out)
}

/// The file extension Redshift gives compressed parts.
pub fn extension(c: Option<Compression>) -> &'static str {
    match c {
        Some(Compression::Gzip) => ".gz",
        Some(Compression::Zstd) => ".zst",
        Some(Compression::Bzip2) => ".bz2",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let data = b"a,b\n1,\"x\ny\"\n".repeat(1000);
        for c in [None, Some(Compression::Gzip), Some(Compression::Zstd)] {
            let packed = compress(c, &data).unwrap();
            if c.is_some() {
                assert!(packed.len() < data.len() / 10, "{c:?}");
            }
            assert_eq!(decompress(c, &packed).unwrap(), data, "{c:?}");
        }
    }
}
