//! Text decoding for CSV and NDJSON: UTF-8 (a BOM is skipped) or GB18030, the superset
//! of GBK that Chinese office software writes. Detection looks at the first 64 KiB;
//! a UTF-8 file that turns out invalid later is rejected with the line, never guessed
//! again, so a file is read in one encoding from start to end.

use encoding_rs::{DecoderResult, GB18030};

use crate::error::FileRejection;
use crate::pipeline::Encoding;
use crate::read::line_of;

const SNIFF: usize = 64 * 1024;

/// A file's text as UTF-8 bytes.
pub struct Decoded {
    /// UTF-8 bytes (validated only when the file was GB18030; UTF-8 is validated by the
    /// format reader, which knows the line). A BOM is still at the front: see `start`.
    pub text: Vec<u8>,
    /// Where the text starts (3 after a UTF-8 BOM, else 0).
    pub start: usize,
    /// The encoding used.
    pub encoding: &'static str,
}

/// The encoding of a file from its first block (at least the first 64 KiB, or the
/// whole file): `Some(start)` for UTF-8, where the text starts (3 after a BOM, else
/// 0); `None` for GB18030. UTF-16 is refused.
pub fn sniff(head: &[u8], name: &str, encoding: Encoding) -> Result<Option<usize>, FileRejection> {
    let head = &head[..head.len().min(SNIFF)];
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Err(FileRejection(format!(
            "{name}: the file is UTF-16, which is not accepted; export it as UTF-8 or GBK"
        )));
    }
    let bom = head.starts_with(&[0xEF, 0xBB, 0xBF]);
    let utf8 = match encoding {
        Encoding::Utf8 => true,
        Encoding::Gbk | Encoding::Gb18030 => false,
        Encoding::Auto => {
            bom || match std::str::from_utf8(head) {
                Ok(_) => true,
                // An incomplete character at the end of the sniffed block is fine.
                Err(e) => e.error_len().is_none(),
            }
        }
    };
    Ok(utf8.then_some(if bom { 3 } else { 0 }))
}

/// Decodes a file's bytes in the stated or detected encoding.
pub fn decode(bytes: Vec<u8>, name: &str, encoding: Encoding) -> Result<Decoded, FileRejection> {
    if let Some(start) = sniff(&bytes, name, encoding)? {
        return Ok(Decoded {
            start,
            text: bytes,
            encoding: "utf-8",
        });
    }
    let mut decoder = GB18030.new_decoder_without_bom_handling();
    let capacity = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .ok_or_else(|| FileRejection(format!("{name}: the file is too large to decode")))?;
    let mut text = vec![0u8; capacity];
    let (result, read, written) =
        decoder.decode_to_utf8_without_replacement(&bytes, &mut text, true);
    match result {
        DecoderResult::InputEmpty => {
            text.truncate(written);
            Ok(Decoded {
                text,
                start: 0,
                encoding: "gb18030",
            })
        }
        DecoderResult::Malformed(bad, extra) => {
            // `read` includes the malformed bytes and the ones consumed after them.
            let at = read.saturating_sub(bad as usize + extra as usize);
            Err(FileRejection(format!(
                "{name}: line {}: bytes (at offset {at}) are neither UTF-8 nor GBK/GB18030; \
                 the file was read as GBK from its start",
                line_of(&bytes, at)
            )))
        }
        DecoderResult::OutputFull => Err(FileRejection(format!(
            "{name}: internal error: the decoding buffer was too small"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_decodes_as_utf8() {
        let (bytes, _, _) = GB18030.encode("统一社会信用代码,企业名称\n1,大同\n");
        let d = decode(bytes.into_owned(), "a.csv", Encoding::Gbk).unwrap();
        assert_eq!(
            std::str::from_utf8(&d.text[d.start..]).unwrap(),
            "统一社会信用代码,企业名称\n1,大同\n"
        );
        assert_eq!(d.encoding, "gb18030");
    }

    #[test]
    fn malformed_gbk_names_the_line() {
        let e = decode(b"a\r\nb\r\n\x81\x20b".to_vec(), "a.csv", Encoding::Gbk)
            .err()
            .unwrap();
        assert!(e.0.starts_with("a.csv: line 3: bytes (at offset 6)"), "{e}");
    }
}
