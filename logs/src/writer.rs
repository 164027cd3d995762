//! The writer every log line goes through: stderr, after [`crate::redact::redact`].
//!
//! `tracing-subscriber`'s formatter builds a whole line, then writes it with one `write_all`, so
//! redacting each write redacts each line whole (a number is never split across two writes).

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Makes [`Redacting`] writers over stderr.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = Redacting<io::StderrLock<'static>>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting(io::stderr().lock())
    }
}

/// Redacts what is written through it, then writes it to the inner writer.
#[derive(Debug)]
pub struct Redacting<W>(pub W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(crate::redact::redact(text).as_bytes())?,
            // Log lines are UTF-8; anything else is written as it is.
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_written_through_it_is_redacted() {
        let mut w = Redacting(Vec::new());
        w.write_all(b"call to +33612345678 placed\n").unwrap();
        assert_eq!(String::from_utf8(w.0).unwrap(), "call to +33******78 placed\n");
    }
}
