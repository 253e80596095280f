//! decode -> enrich -> render -> sinks, for one ring-buffer record at a time.

use vigil_enrich::ProcessTable;
use vigil_events::{decode, Event};
use vigil_export::json::{render, Clock, Context};
use vigil_export::sink::{Lost, Sink};

use crate::cli::KindSet;
use crate::stats::{index, UserStats};

/// The user-space half of the event path. Owned by the reader thread; no locks.
#[derive(Debug)]
pub struct Pipeline {
    pub table: ProcessTable,
    pub sinks: Vec<Sink>,
    pub kinds: KindSet,
    pub host: String,
    pub clock: Clock,
    pub ancestry_depth: usize,
    pub stats: UserStats,
    line: Vec<u8>,
}

impl Pipeline {
    pub fn new(
        table: ProcessTable,
        sinks: Vec<Sink>,
        kinds: KindSet,
        host: String,
        ancestry_depth: usize,
    ) -> Self {
        Self {
            table,
            sinks,
            kinds,
            host,
            clock: Clock::now(),
            ancestry_depth,
            stats: UserStats::default(),
            line: Vec::with_capacity(4096),
        }
    }

    pub fn handle(&mut self, rec: &[u8]) {
        let event = match decode(rec) {
            Ok(e) => e,
            Err(e) => {
                self.stats.decode_errors += 1;
                if self.stats.decode_errors.is_power_of_two() {
                    tracing::warn!(count = self.stats.decode_errors, "undecodable record: {e}");
                }
                return;
            }
        };
        let kind = event.header().kind;
        let i = index(kind);
        self.stats.received[i] += 1;
        // Exit renders with the entry it is about to retire; exec/fork with the entry they make.
        let is_exit = matches!(event, Event::Exit(_));
        if !is_exit {
            self.table.apply(&event);
        }
        if self.kinds.contains(kind) {
            self.emit(&event, i);
        } else {
            self.stats.filtered_output[i] += 1;
        }
        if is_exit {
            self.table.apply(&event);
        }
    }

    fn emit(&mut self, event: &Event, i: usize) {
        let h = event.header();
        let proc = self.table.get(h.tgid);
        let kernel_ppid = match event {
            Event::Exec(e) => e.ppid,
            Event::Fork(f) => f.parent_tgid,
            Event::Exit(x) => x.ppid,
            Event::File(_) | Event::Syscall(_) => 0,
        };
        // Ancestry follows the lineage the table kept, not the reaper an orphan now has.
        let lineage = proc.map_or(kernel_ppid, |p| p.ppid);
        let ancestry = self.table.ancestry(lineage, self.ancestry_depth);
        self.line.clear();
        let ctx = Context {
            host: &self.host,
            clock: &self.clock,
            id: self.stats.received.iter().sum(),
        };
        render(event, proc, &ancestry, &ctx, &mut self.line);
        for s in &mut self.sinks {
            if let Err(lost) = s.write_line(&self.line, i) {
                count_lost(&mut self.stats, s.name(), &lost);
            }
        }
    }

    /// Pushes buffered lines out; called after each drain of the ring buffer. Lines that a
    /// failed flush loses are counted.
    pub fn flush(&mut self) {
        for s in &mut self.sinks {
            if let Err(lost) = s.flush() {
                count_lost(&mut self.stats, s.name(), &lost);
            }
        }
    }
}

/// Adds lines an output lost to the per-kind counters (and says so, without flooding the log).
fn count_lost(stats: &mut UserStats, output: &str, lost: &Lost) {
    let n: u64 = lost.lost.iter().sum();
    for (total, l) in stats.sink_errors.iter_mut().zip(lost.lost) {
        *total += l;
    }
    stats.sink_failures += 1;
    if stats.sink_failures.is_power_of_two() {
        tracing::warn!(
            output,
            lost = n,
            failures = stats.sink_failures,
            "write failed, events lost: {}",
            lost.error
        );
    }
}
