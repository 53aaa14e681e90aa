//! Request bodies: content encodings, decompressed under a hard bound.
//!
//! The bound is enforced while inflating, so a gzip bomb (a few KiB that expand
//! to gigabytes) costs at most `limit + 1` bytes of memory before it is refused.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::MultiGzDecoder;

use crate::error::IngestError;

/// Decodes `body` according to the `Content-Encoding` header and enforces
/// `limit` on the decoded size.
pub fn decode_body<'a>(
    content_encoding: Option<&str>,
    body: &'a [u8],
    limit: usize,
) -> Result<Cow<'a, [u8]>, IngestError> {
    let encoding = content_encoding.map(str::trim).unwrap_or("").to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => {
            if body.len() > limit {
                return Err(IngestError::PayloadTooLarge { limit });
            }
            Ok(Cow::Borrowed(body))
        }
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit + 1));
            // `take(limit + 1)`: reading one byte past the limit is how we learn it
            // was exceeded, without ever inflating more than that.
            let mut reader = MultiGzDecoder::new(body).take(limit as u64 + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| IngestError::MalformedJson(format!("body is not valid gzip: {e}")))?;
            if out.len() > limit {
                return Err(IngestError::PayloadTooLarge { limit });
            }
            Ok(Cow::Owned(out))
        }
        other => Err(IngestError::UnsupportedEncoding(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn identity_bodies_pass_through_up_to_the_limit() {
        assert_eq!(&*decode_body(None, b"{}", 2).unwrap(), b"{}");
        assert_eq!(decode_body(Some("identity"), b"{}x", 2), Err(IngestError::PayloadTooLarge { limit: 2 }));
    }

    #[test]
    fn gzip_is_inflated_at_and_refused_past_the_limit() {
        let data = vec![b'a'; 1000];
        assert_eq!(&*decode_body(Some("gzip"), &gzip(&data), 1000).unwrap(), &data[..]);
        assert_eq!(decode_body(Some("GZIP"), &gzip(&data), 999), Err(IngestError::PayloadTooLarge { limit: 999 }));
    }

    #[test]
    fn a_gzip_bomb_is_refused_without_inflating_it() {
        // 64 MiB of zeros compress to about 64 KiB; the decoder stops after limit + 1.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100 << 10);
        assert_eq!(decode_body(Some("gzip"), &bomb, 512 << 10), Err(IngestError::PayloadTooLarge { limit: 512 << 10 }));
    }

    #[test]
    fn unknown_encodings_and_corrupt_gzip_are_refused() {
        assert_eq!(decode_body(Some("br"), b"x", 10).unwrap_err().status(), 415);
        assert_eq!(decode_body(Some("gzip"), b"not gzip", 10).unwrap_err().status(), 400);
    }
}
