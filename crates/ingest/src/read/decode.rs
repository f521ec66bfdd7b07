//! Text decoding for CSV and NDJSON: UTF-8 (a BOM is skipped) or GB18030, the superset
//! of GBK that Chinese office software writes. Detection looks at the first 64 KiB;
//! a UTF-8 file that turns out invalid later is rejected with the line, never guessed
//! again, so a file is read in one encoding from start to end.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use encoding_rs::{DecoderResult, GB18030};

use crate::error::FileRejection;
use crate::pipeline::Encoding;

const SNIFF: usize = 64 * 1024;

/// A reader of UTF-8 bytes, and the first bytes of the file for sniffing.
pub struct Decoded {
    /// UTF-8 bytes (validated only when the file was GB18030; UTF-8 is validated by the
    /// format reader, which knows the line).
    pub reader: Box<dyn Read>,
    /// The first up to 64 KiB of the raw file, for delimiter sniffing.
    pub head: Vec<u8>,
    /// The encoding used.
    pub encoding: &'static str,
}

/// Opens a text file in the stated or detected encoding.
pub fn open(path: &Path, encoding: Encoding) -> Result<Decoded, FileRejection> {
    let name = path.display();
    let mut file =
        File::open(path).map_err(|e| FileRejection(format!("{name}: cannot open: {e}")))?;
    let mut head = vec![0; SNIFF];
    let mut n = 0;
    while n < SNIFF {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(FileRejection(format!("{name}: cannot read: {e}"))),
        }
    }
    head.truncate(n);
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
            bom || match std::str::from_utf8(&head) {
                Ok(_) => true,
                // An incomplete character at the end of the sniffed block is fine.
                Err(e) => e.error_len().is_none(),
            }
        }
    };
    let rest = io::Cursor::new(head.clone()).chain(file);
    if utf8 {
        let mut reader: Box<dyn Read> = Box::new(BufReader::new(rest));
        if bom {
            let mut skip = [0u8; 3];
            reader
                .read_exact(&mut skip)
                .map_err(|e| FileRejection(format!("{name}: cannot read: {e}")))?;
        }
        Ok(Decoded {
            reader,
            head,
            encoding: "utf-8",
        })
    } else {
        Ok(Decoded {
            reader: Box::new(Gb18030Reader::new(rest)),
            head,
            encoding: "gb18030",
        })
    }
}

/// Streams GB18030 bytes as UTF-8, failing on the first malformed sequence.
struct Gb18030Reader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    output: Vec<u8>,
    out_start: usize,
    out_end: usize,
    eof: bool,
    finished: bool,
    consumed: u64,
}

impl<R: Read> Gb18030Reader<R> {
    fn new(inner: R) -> Self {
        Gb18030Reader {
            inner,
            decoder: GB18030.new_decoder_without_bom_handling(),
            input: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            output: vec![0; 256 * 1024],
            out_start: 0,
            out_end: 0,
            eof: false,
            finished: false,
            consumed: 0,
        }
    }

    /// Decodes more input into the output buffer.
    fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end && !self.eof {
            self.start = 0;
            self.end = self.inner.read(&mut self.input)?;
            self.eof = self.end == 0;
        }
        // `last` may be passed repeatedly while the output fills up; once it returns
        // InputEmpty the decoder is finished and must not be called again.
        let last = self.eof;
        let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
            &self.input[self.start..self.end],
            &mut self.output,
            last,
        );
        self.start += read;
        self.consumed += read as u64;
        self.out_start = 0;
        self.out_end = written;
        match result {
            DecoderResult::Malformed(_, _) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "bytes near offset {} are neither UTF-8 nor GBK/GB18030",
                    self.consumed
                ),
            )),
            DecoderResult::InputEmpty if last => {
                self.finished = true;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl<R: Read> Read for Gb18030Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_start == self.out_end {
            if self.finished {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = buf.len().min(self.out_end - self.out_start);
        buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_streams_as_utf8() {
        let (bytes, _, _) = GB18030.encode("统一社会信用代码,企业名称\n1,大同\n");
        let mut r = Gb18030Reader::new(io::Cursor::new(bytes.into_owned()));
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "统一社会信用代码,企业名称\n1,大同\n");
    }

    #[test]
    fn malformed_gbk_fails() {
        let mut r = Gb18030Reader::new(io::Cursor::new(vec![b'a', 0x81, 0x20, b'b']));
        let mut s = String::new();
        assert!(r.read_to_string(&mut s).is_err());
    }
}
