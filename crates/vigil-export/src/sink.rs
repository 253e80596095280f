//! JSON-lines outputs. Lines are buffered and written in batches; when a write fails, the lines
//! it carried are reported back per event kind so the caller can count them as dropped.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

/// Where `--output` sends lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    File(PathBuf),
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stdout" => Ok(Target::Stdout),
            _ => match s.strip_prefix("file:") {
                Some(p) if !p.is_empty() => Ok(Target::File(p.into())),
                _ => Err(format!("`{s}`: expected `stdout` or `file:PATH`")),
            },
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Stdout => f.write_str("stdout"),
            Target::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

/// Event kinds a sink keeps loss counts for (indices into the caller's kind list).
pub const MAX_KINDS: usize = 16;

/// Flush once this many bytes are buffered, whatever the timer says.
const BATCH_BYTES: usize = 1 << 16;

/// A write failed; `lost[k]` lines of kind index `k` went with it.
#[derive(Debug)]
pub struct Lost {
    pub lost: [u64; MAX_KINDS],
    pub error: io::Error,
}

/// An open output.
#[derive(Debug)]
pub struct Sink {
    name: String,
    out: Box<dyn WriteDebug>,
    buf: Vec<u8>,
    pending: [u64; MAX_KINDS],
    /// A failed write may have left half a line behind: end it before writing more.
    broken_line: bool,
}

trait WriteDebug: Write + std::fmt::Debug + Send {}
impl<T: Write + std::fmt::Debug + Send> WriteDebug for T {}

impl Sink {
    pub fn open(t: &Target) -> io::Result<Sink> {
        let (name, out): (String, Box<dyn WriteDebug>) = match t {
            Target::Stdout => ("stdout".into(), Box::new(io::stdout())),
            Target::File(path) => {
                let f: File = OpenOptions::new().create(true).append(true).open(path)?;
                (format!("file:{}", path.display()), Box::new(f))
            }
        };
        Ok(Sink {
            name,
            out,
            buf: Vec::with_capacity(BATCH_BYTES * 2),
            pending: [0; MAX_KINDS],
            broken_line: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Buffers one line of kind index `kind`; writes the batch out once it is large.
    pub fn write_line(&mut self, line: &[u8], kind: usize) -> Result<(), Box<Lost>> {
        self.buf.extend_from_slice(line);
        self.pending[kind.min(MAX_KINDS - 1)] += 1;
        if self.buf.len() >= BATCH_BYTES {
            return self.flush();
        }
        Ok(())
    }

    /// Writes everything buffered. On failure the batch is discarded (retrying a broken output
    /// forever would stall the pipeline) and its lines are returned as lost.
    pub fn flush(&mut self) -> Result<(), Box<Lost>> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.broken_line {
            self.buf.insert(0, b'\n');
        }
        let result = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        self.broken_line = result.is_err();
        self.buf.clear();
        let pending = std::mem::take(&mut self.pending);
        result.map_err(|error| {
            Box::new(Lost {
                lost: pending,
                error,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!("stdout".parse::<Target>(), Ok(Target::Stdout));
        assert_eq!("file:/x".parse::<Target>(), Ok(Target::File("/x".into())));
        assert!("file:".parse::<Target>().is_err() && "tcp:1".parse::<Target>().is_err());
    }

    #[test]
    fn failed_writes_report_lost_lines_per_kind() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let mut s = Sink::open(&Target::File("/dev/full".into())).unwrap();
        s.write_line(b"{}\n", 0).unwrap();
        s.write_line(b"{}\n", 2).unwrap();
        let lost = s.flush().unwrap_err();
        assert_eq!(&lost.lost[..3], &[1, 0, 1]);
        assert!(s.flush().is_ok(), "the failed batch is not retried");
    }
}
