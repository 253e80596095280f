//! Recordings: the process table's seed and the raw ring-buffer records of a run, so that a
//! session can be replayed through rules offline (`vigil rules test`) exactly as the agent saw it.
//!
//! Format: the line `VIGILREC 1\n`, then frames `[tag: u8][len: u32 LE][payload]`; tag 1 is a
//! seeded process (JSON), tag 2 a ring-buffer record as the kernel wrote it (ABI in its header).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use vigil_enrich::ProcInfo;

const MAGIC: &[u8] = b"VIGILREC 1\n";
const TAG_SEED: u8 = 1;
const TAG_RECORD: u8 = 2;

/// Writes a recording.
#[derive(Debug)]
pub struct Recorder {
    w: BufWriter<File>,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Recorder> {
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 16, f);
        w.write_all(MAGIC)?;
        Ok(Recorder { w })
    }

    pub fn seed(&mut self, p: &ProcInfo) -> io::Result<()> {
        let json = serde_json::to_vec(p).map_err(io::Error::other)?;
        self.frame(TAG_SEED, &json)
    }

    pub fn record(&mut self, rec: &[u8]) -> io::Result<()> {
        self.frame(TAG_RECORD, rec)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    fn frame(&mut self, tag: u8, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
        self.w.write_all(&[tag])?;
        self.w.write_all(&len.to_le_bytes())?;
        self.w.write_all(payload)
    }
}

/// One frame of a recording.
#[derive(Debug)]
pub enum Frame {
    Seed(Box<ProcInfo>),
    Record(Vec<u8>),
}

/// Reads a recording frame by frame; a truncated last frame (the agent was killed) ends it.
pub fn read(path: &Path) -> Result<impl Iterator<Item = Result<Frame>>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut r = BufReader::new(f);
    let mut magic = [0u8; MAGIC.len()];
    r.read_exact(&mut magic)
        .with_context(|| format!("{}: not a Vigil recording", path.display()))?;
    if magic != MAGIC {
        bail!("{}: not a Vigil recording (bad header)", path.display());
    }
    let name = path.display().to_string();
    let mut offset = MAGIC.len() as u64;
    Ok(std::iter::from_fn(move || {
        let mut head = [0u8; 5];
        if r.read_exact(&mut head).is_err() {
            return None;
        }
        let len = u32::from_le_bytes(head[1..].try_into().expect("4 bytes")) as usize;
        let mut payload = vec![0u8; len];
        if r.read_exact(&mut payload).is_err() {
            return None;
        }
        let at = offset;
        offset += 5 + len as u64;
        Some(match head[0] {
            TAG_SEED => serde_json::from_slice(&payload)
                .map(|p| Frame::Seed(Box::new(p)))
                .with_context(|| format!("{name}: byte {at}: bad seed frame")),
            TAG_RECORD => Ok(Frame::Record(payload)),
            t => Err(anyhow::anyhow!("{name}: byte {at}: unknown frame tag {t}")),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.vigil");
        let table = vigil_enrich::read_process(
            Path::new("/proc"),
            std::process::id(),
            Path::new("/sys/fs/cgroup"),
        );
        let me = table.unwrap();
        let mut w = Recorder::create(&p).unwrap();
        w.seed(&me).unwrap();
        w.record(b"abc").unwrap();
        w.flush().unwrap();
        drop(w);
        let frames: Vec<Frame> = read(&p).unwrap().map(Result::unwrap).collect();
        assert!(matches!(&frames[0], Frame::Seed(s) if **s == me));
        assert!(matches!(&frames[1], Frame::Record(r) if r == b"abc"));
        // A frame cut short by a crash ends the recording instead of failing it.
        let len = std::fs::metadata(&p).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        assert_eq!(read(&p).unwrap().count(), 1);
        std::fs::write(&p, b"garbage").unwrap();
        assert!(read(&p).is_err());
    }
}
