//! JSON-lines outputs. A write failure is returned so the caller can count the lost lines.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Stdout, Write};
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

/// An open output.
#[derive(Debug)]
pub enum Sink {
    Stdout(BufWriter<Stdout>),
    File { path: PathBuf, w: BufWriter<File> },
}

impl Sink {
    pub fn open(t: &Target) -> io::Result<Sink> {
        Ok(match t {
            Target::Stdout => Sink::Stdout(BufWriter::with_capacity(1 << 16, io::stdout())),
            Target::File(path) => {
                let f = OpenOptions::new().create(true).append(true).open(path)?;
                Sink::File {
                    path: path.clone(),
                    w: BufWriter::with_capacity(1 << 16, f),
                }
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            Sink::Stdout(_) => "stdout".into(),
            Sink::File { path, .. } => format!("file:{}", path.display()),
        }
    }

    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.write_all(line),
            Sink::File { w, .. } => w.write_all(line),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::File { w, .. } => w.flush(),
        }
    }
}
