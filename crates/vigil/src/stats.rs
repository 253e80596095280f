//! Counters of everything the pipeline saw, dropped or filtered, per event kind and cause, so
//! that no loss is silent: delivered + dropped = generated for every kind.

use serde::Serialize;
use vigil_abi::{
    VIGIL_STAT_BUDGET, VIGIL_STAT_FILTERED, VIGIL_STAT_MAX, VIGIL_STAT_READ_ERROR,
    VIGIL_STAT_RINGBUF_FULL, VIGIL_STAT_SUBMITTED,
};
use vigil_bpf::KernelStats;
use vigil_enrich::TableStats;
use vigil_events::Kind;

/// User-space counters, indexed by position in `Kind::ALL`.
#[derive(Debug, Default)]
pub struct UserStats {
    pub received: [u64; Kind::ALL.len()],
    pub sink_errors: [u64; Kind::ALL.len()],
    pub filtered_output: [u64; Kind::ALL.len()],
    /// Sent unjudged by the kernel (paths needing normalisation), then filtered here.
    pub filtered_user: [u64; Kind::ALL.len()],
    pub decode_errors: u64,
    /// Failed writes to an output (each may lose several lines).
    pub sink_failures: u64,
    /// Alerts raised, and alert lines an output failed to write.
    pub alerts: u64,
    pub alerts_lost: u64,
    /// Enforcement reports lost to a full ring buffer in generations since replaced.
    pub enforce_lost_prior: u64,
    /// Alerts by (rule, priority); bounded by the rules ever loaded.
    pub alerts_by_rule: std::collections::HashMap<(String, vigil_rules::Priority), u64>,
    /// Time spent evaluating rules, and evaluations (one per event while rules are loaded).
    pub rule_eval_ns: u64,
    pub rule_evals: u64,
}

impl UserStats {
    pub fn count_alert(&mut self, alert: &vigil_rules::Alert) {
        self.alerts += 1;
        match self
            .alerts_by_rule
            .get_mut(&(alert.rule.clone(), alert.priority))
        {
            Some(n) => *n += 1,
            None => {
                self.alerts_by_rule
                    .insert((alert.rule.clone(), alert.priority), 1);
            }
        }
    }
}

/// The outputs' loss-count slot for alert lines (after the event kinds).
pub const ALERT_INDEX: usize = Kind::ALL.len();

pub fn index(k: Kind) -> usize {
    Kind::ALL
        .iter()
        .position(|x| *x == k)
        .expect("every kind is in ALL")
}

/// One kind's accounting.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct KindStats {
    pub kind: &'static str,
    /// Records the kernel produced (submitted + lost to a full ring buffer).
    pub generated: u64,
    /// Records that reached user space.
    pub received: u64,
    pub dropped_ringbuf_full: u64,
    /// Lines an output failed to write.
    pub dropped_sink_error: u64,
    /// Dropped on purpose in the kernel (the agent itself; threads when off).
    pub filtered_kernel: u64,
    /// Received but not printed because of `--events`.
    pub filtered_output: u64,
    /// Received, then dropped by the path filter applied in user space.
    pub filtered_user: u64,
    /// Records sent with a field missing because a kernel read failed.
    pub read_errors: u64,
    /// Not sent: its cgroup was over its event budget (see `budget_drops`).
    pub dropped_budget: u64,
}

/// One cgroup's losses to its event budget.
#[derive(Debug, Serialize)]
pub struct BudgetDrop {
    pub cgroup_id: u64,
    /// The container of that cgroup, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    pub dropped: u64,
}

/// Everything the stats line and the exit summary report.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub kinds: Vec<KindStats>,
    pub alerts: u64,
    pub alerts_dropped_sink_error: u64,
    pub decode_errors: u64,
    pub process_table_size: usize,
    pub process_table_evictions: u64,
    pub process_table_reaped: u64,
    /// Records lost to the per-cgroup event budget, by cgroup (only cgroups that lost any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub budget_drops: Vec<BudgetDrop>,
    /// The network sensor's user-space state and map losses, when it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::network::NetStats>,
}

impl Snapshot {
    pub fn new(kernel: &KernelStats, user: &UserStats, table: TableStats) -> Snapshot {
        let kinds = Kind::ALL
            .iter()
            .map(|&k| {
                let i = index(k);
                // Kinds made in user space have no kernel counters: what was made was received.
                let kc = k
                    .abi()
                    .map_or([0; VIGIL_STAT_MAX as usize], |a| kernel.counts[a as usize]);
                let generated = match k.abi() {
                    Some(_) => {
                        kc[VIGIL_STAT_SUBMITTED as usize] + kc[VIGIL_STAT_RINGBUF_FULL as usize]
                    }
                    None => user.received[i],
                };
                KindStats {
                    kind: k.name(),
                    generated,
                    received: user.received[i],
                    dropped_ringbuf_full: kc[VIGIL_STAT_RINGBUF_FULL as usize],
                    dropped_sink_error: user.sink_errors[i],
                    filtered_kernel: kc[VIGIL_STAT_FILTERED as usize],
                    filtered_output: user.filtered_output[i],
                    filtered_user: user.filtered_user[i],
                    read_errors: kc[VIGIL_STAT_READ_ERROR as usize],
                    dropped_budget: kc[VIGIL_STAT_BUDGET as usize],
                }
            })
            .collect();
        Snapshot {
            kinds,
            alerts: user.alerts,
            alerts_dropped_sink_error: user.alerts_lost,
            decode_errors: user.decode_errors,
            process_table_size: table.size,
            process_table_evictions: table.evictions,
            process_table_reaped: table.reaped,
            budget_drops: Vec::new(),
            network: None,
        }
    }

    /// One human line: `stats: exec[generated=.. received=.. ...] fork[...] ...`.
    pub fn line(&self) -> String {
        let mut s = String::from("stats:");
        for k in &self.kinds {
            s.push_str(&format!(
                " {}[generated={} received={} dropped_ringbuf_full={} dropped_sink_error={}]",
                k.kind, k.generated, k.received, k.dropped_ringbuf_full, k.dropped_sink_error
            ));
        }
        s.push_str(&format!(
            " decode_errors={} process_table={} evictions={}",
            self.decode_errors, self.process_table_size, self.process_table_evictions
        ));
        s
    }
}
