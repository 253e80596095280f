//! decode -> enrich -> render -> sinks, for one ring-buffer record at a time.

use vigil_enrich::UserDb;
use vigil_enrich::{ProcInfo, ProcessTable};
use vigil_events::enforce::{Enforce, Outcome};
use vigil_events::filter::PathFilter;
use vigil_events::{decode, Event};
use vigil_export::alert::render_alert;
use vigil_export::json::{render, Clock, Context};
use vigil_export::sink::{Lost, Sink};
use vigil_rules::{Alert, EvalContext, RuleSet};

use crate::cli::KindSet;
use crate::network::{boot_ns, Network};
use crate::record::Recorder;
use crate::rules::{EvalNames, Names};
use crate::stats::{index, UserStats, ALERT_INDEX};
use vigil_export::stream::{AlertInfo, Hub, Published};
use vigil_identity::IdentityTable;

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
    /// Raw records are appended here when the session is being recorded.
    pub recorder: Option<Recorder>,
    /// The file filter, for the paths the kernel sent unjudged.
    pub path_filter: PathFilter,
    /// Rules evaluated on every event (alerts go to every output); `None`: no rules.
    pub rules: Option<RuleSet>,
    pub names: Names,
    /// Network state: DNS/HTTP correlation, names, the service map.
    pub net: Network,
    /// cgroup id -> container, from the cgroup tree at start and cgroup mkdir/rmdir records.
    pub identity: IdentityTable,
    /// Pods of this node from the Kubernetes API, when watched.
    pub pods: Option<vigil_kube::PodCache>,
    /// Container names, images and labels from the runtimes' APIs (looked up in the background).
    pub runtime: Option<vigil_runtime::MetaCache>,
    /// The enforcement generation whose rule ids the current rules number, if any.
    pub enforce_generation: Option<u32>,
    /// Rule names of earlier generations, for their reports drained at install.
    pub old_rule_names: std::collections::HashMap<(u32, u32), String>,
    /// Live subscribers (API streams, OTLP); lines are rendered for it only while it has any.
    pub hub: Option<std::sync::Arc<Hub>>,
    /// Per-workload counts and latency windows.
    pub workloads: crate::workloads::Workloads,
    /// cgroups removed since the run loop last looked (their kernel histograms go too).
    pub removed_cgroups: Vec<u64>,
    /// cgroups created since start (the run loop resolves workload scopes when it changes).
    pub cgroups_created: u64,
    /// Records handled in this turn of the run loop.
    pub drained: u64,
    pending_enforce: Vec<Event>,
    alerts: Vec<Alert>,
    line: Vec<u8>,
    derived: Vec<Event>,
}

impl Pipeline {
    pub fn new(
        table: ProcessTable,
        sinks: Vec<Sink>,
        kinds: KindSet,
        host: String,
        ancestry_depth: usize,
        http: bool,
    ) -> Self {
        Self {
            table,
            sinks,
            kinds,
            host,
            clock: Clock::now(),
            ancestry_depth,
            stats: UserStats::default(),
            recorder: None,
            path_filter: PathFilter::default(),
            rules: None,
            names: Names(UserDb::default()),
            net: Network::new(http),
            pods: None,
            runtime: None,
            identity: IdentityTable::new(
                vigil_identity::DEFAULT_CAPACITY,
                vigil_identity::DEFAULT_GRACE,
            ),
            enforce_generation: None,
            old_rule_names: Default::default(),
            hub: None,
            workloads: crate::workloads::Workloads::new(None, 10),
            removed_cgroups: Vec::new(),
            cgroups_created: 0,
            drained: 0,
            pending_enforce: Vec::new(),
            alerts: Vec::new(),
            line: Vec::with_capacity(4096),
            derived: Vec::new(),
        }
    }

    pub fn handle(&mut self, rec: &[u8]) {
        if let Some(r) = &mut self.recorder {
            if let Err(e) = r.record(rec) {
                tracing::error!("recording failed, recording stopped: {e}");
                self.recorder = None;
            }
        }
        let mut event = match decode(rec) {
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
        match &mut event {
            Event::Capture(cap) => {
                let mut derived = std::mem::take(&mut self.derived);
                self.net.capture(cap, &mut derived);
                self.inject(&mut derived);
                self.derived = derived;
                return;
            }
            Event::Conn(c) => self.net.conn(c, &self.table),
            Event::Cgroup(c) => {
                let path = String::from_utf8_lossy(&c.path);
                if c.removed {
                    // Kept a while: late events of a container that just ended stay attributed.
                    self.identity.retire(c.id, c.header.time_ns);
                    self.removed_cgroups.push(c.id);
                } else {
                    let entry = self.identity.insert(c.id, &path);
                    if let (Some(rt), Some(container)) = (&self.runtime, &entry.container) {
                        rt.request_for_path(container, &path);
                    }
                    self.cgroups_created += 1;
                }
                self.stats.filtered_output[i] += 1;
                return;
            }
            Event::Enforce(_) => {
                // Written at the next flush, once the sensors' records read with it (the exec
                // of the process it killed) are in the table.
                self.pending_enforce.push(event);
                return;
            }
            _ => {}
        }
        if let Event::File(f) = &event {
            if f.unfiltered && !self.path_filter.reports(f) {
                self.stats.filtered_user[i] += 1;
                return;
            }
        }
        self.count(&event, i);
        self.runtime_meta(event.header().cgroup_id);
        // Exit renders with the entry it is about to retire; exec/fork with the entry they make.
        let is_exit = matches!(event, Event::Exit(_));
        if !is_exit {
            self.table.apply(&event);
        }
        let selected = self.kinds.contains(kind);
        if !selected {
            self.stats.filtered_output[i] += 1;
        }
        if selected || self.rules.is_some() {
            self.emit(&event, i, selected);
        }
        if is_exit {
            self.table.apply(&event);
        }
    }

    /// An enforcement report becomes an alert whose `action` says what the kernel did.
    fn enforce_report(&mut self, r: &Enforce) {
        let event = crate::enforcement::event_for(r);
        // The kernel's effective uid at the decision is the truth (the process may have changed
        // ids since its exec); the rest of the process comes from the table.
        let proc = self.table.get(r.header.tgid).map(|p| ProcInfo {
            euid: r.uid,
            ..p.clone()
        });
        let proc = proc.as_ref();
        let ancestry = self
            .table
            .ancestry(proc.map_or(0, |p| p.ppid), self.ancestry_depth);
        let names = EvalNames {
            users: &self.names,
            ips: &self.net.names,
        };
        let container = self.identity.container(r.header.cgroup_id);
        let pod = pod_of(self.pods.as_ref(), container);
        let ctx = EvalContext {
            event: &event,
            proc,
            ancestry: &ancestry,
            names: &names,
            container,
            pod: pod.as_deref(),
        };
        let current = self.enforce_generation == Some(r.generation);
        let alert = match &self.rules {
            Some(rules) if current => rules.enforcement_alert(r.rule as usize, &ctx),
            _ => None,
        };
        let mut alert = alert.unwrap_or_else(|| self.orphan_alert(r));
        if r.outcome == Outcome::Audit {
            alert
                .output
                .push_str(" (audit mode: would have been blocked)");
        }
        self.stats.count_alert(&alert);
        self.workloads.alert(r.header.cgroup_id);
        let now = boot_ns();
        let net = &self.net;
        let ip_names = |ip: &std::net::IpAddr| net.ip_name(ip, now);
        let ctx = Context {
            host: &self.host,
            clock: &self.clock,
            id: self.stats.received.iter().sum(),
            ip_names: &ip_names,
            container,
            pod: pod.as_deref(),
        };
        self.line.clear();
        render_alert(&alert, &event, r.outcome.name(), &ctx, &mut self.line);
        for s in &mut self.sinks {
            if let Err(lost) = s.write_line(&self.line, ALERT_INDEX) {
                count_lost(&mut self.stats, s.name(), &lost);
            }
        }
        if let Some(hub) = &self.hub {
            hub.publish(published(
                &self.line,
                r.header.time_ns,
                &self.clock,
                Some(&alert),
                &event,
                container,
                pod.as_deref(),
            ));
        }
    }

    /// The alert of a report whose rules are no longer loaded (made by an earlier generation,
    /// e.g. while no agent was running): named from that generation's rule table.
    fn orphan_alert(&self, r: &Enforce) -> Alert {
        let name = self
            .old_rule_names
            .get(&(r.generation, r.rule))
            .cloned()
            .unwrap_or_else(|| {
                format!("enforcement rule {} of generation {}", r.rule, r.generation)
            });
        let what = match (&r.addr, r.path.is_empty()) {
            (Some(a), _) => a.to_string(),
            (None, false) => String::from_utf8_lossy(&r.path).into_owned(),
            _ => String::new(),
        };
        Alert {
            output: format!(
                "{name}: {} {what} (pid {} comm {}; reported by enforcement generation {})",
                r.outcome.name(),
                r.header.tgid,
                String::from_utf8_lossy(&r.comm),
                r.generation
            ),
            rule: name,
            priority: vigil_rules::Priority::Critical,
            output_fields: Default::default(),
            tags: Vec::new(),
            source: "syscall",
        }
    }

    /// Writes events made in user space (DNS, HTTP, UDP flows, drops), emptying `events`.
    pub fn inject(&mut self, events: &mut Vec<Event>) {
        for event in events.drain(..) {
            let i = index(event.header().kind);
            self.stats.received[i] += 1;
            self.count(&event, i);
            let selected = self.kinds.contains(event.header().kind);
            if !selected {
                self.stats.filtered_output[i] += 1;
            }
            if selected || self.rules.is_some() {
                self.emit(&event, i, selected);
            }
        }
    }

    /// Writes the alerts of latency windows (anomalies and recoveries) to every output and the
    /// live stream, scoped to the workload's namespace.
    pub fn window_alerts(&mut self, verdicts: Vec<(vigil_anomaly::Verdict, Option<String>)>) {
        for (v, namespace) in verdicts {
            let alert = v.to_alert();
            self.stats.count_alert(&alert);
            let net = &self.net;
            let now = boot_ns();
            let ip_names = |ip: &std::net::IpAddr| net.ip_name(ip, now);
            let ctx = Context {
                host: &self.host,
                clock: &self.clock,
                id: 0,
                ip_names: &ip_names,
                container: None,
                pod: None,
            };
            self.line.clear();
            vigil_export::alert::render_window_alert(
                &alert,
                v.time_ns,
                "latency_window",
                &ctx,
                &mut self.line,
            );
            for s in &mut self.sinks {
                if let Err(lost) = s.write_line(&self.line, ALERT_INDEX) {
                    count_lost(&mut self.stats, s.name(), &lost);
                }
            }
            if let Some(hub) = &self.hub {
                let line = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
                hub.publish(Published {
                    line: std::sync::Arc::from(String::from_utf8_lossy(line)),
                    kind: "alert",
                    time_ns: u64::try_from(self.clock.unix_ns(v.time_ns)).unwrap_or_default(),
                    alert: Some(AlertInfo {
                        rule: alert.rule.clone(),
                        priority: alert.priority,
                        event_kind: "latency_window",
                    }),
                    container_id: None,
                    namespace,
                    pod: None,
                });
            }
        }
    }

    /// Attaches the runtime's metadata to the event's container once the lookup has it.
    fn runtime_meta(&mut self, cgroup_id: u64) {
        let Some(rt) = &self.runtime else { return };
        let Some(c) = self.identity.container(cgroup_id) else {
            return;
        };
        if c.meta.is_some() {
            return;
        }
        if let Some(info) = rt.get(&c.id) {
            let meta = vigil_identity::RuntimeMeta {
                name: info.name.clone(),
                image: info.image.clone(),
                labels: info.labels.clone(),
            };
            self.identity.set_meta(cgroup_id, std::sync::Arc::new(meta));
        }
    }

    /// Asks the runtimes about every container known now (those that existed at start).
    pub fn request_runtime_meta(&self) {
        let Some(rt) = &self.runtime else { return };
        for (_, e) in self.identity.iter() {
            if let Some(c) = &e.container {
                rt.request_for_path(c, &e.path);
            }
        }
    }

    /// Counts the event for its workload (the name is resolved only for latency samples).
    fn count(&mut self, event: &Event, i: usize) {
        let (identity, pods) = (&self.identity, self.pods.as_ref());
        let cg = event.header().cgroup_id;
        self.workloads.event(event, i, || {
            let c = identity.container(cg);
            crate::workloads::workload_of(c, pod_of(pods, c).as_deref())
        });
    }

    /// Periodic network work: time-outs of unanswered queries and requests, map expiry.
    pub fn tick(&mut self) {
        let mut derived = std::mem::take(&mut self.derived);
        self.identity.expire(boot_ns());
        self.net.tick(boot_ns(), &mut derived);
        self.inject(&mut derived);
        self.derived = derived;
    }

    /// Reports what the kernel counted in its maps since the last call.
    pub fn kernel_maps(
        &mut self,
        flows: Vec<(vigil_abi::FlowKey, vigil_abi::FlowValue)>,
        drops: Vec<(vigil_abi::DropKey, u64)>,
    ) {
        let mut derived = std::mem::take(&mut self.derived);
        self.net.flows(flows, &mut derived);
        self.net.drops(drops, boot_ns(), &mut derived);
        self.inject(&mut derived);
        self.derived = derived;
    }

    /// Writes the event's line (if its kind is selected) and the alerts it raises.
    fn emit(&mut self, event: &Event, i: usize, write_event: bool) {
        let h = event.header();
        let proc = self.table.get(h.tgid);
        let kernel_ppid = match event {
            Event::Exec(e) => e.ppid,
            Event::Fork(f) => f.parent_tgid,
            Event::Exit(x) => x.ppid,
            _ => 0,
        };
        // Ancestry follows the lineage the table kept, not the reaper an orphan now has.
        let lineage = proc.map_or(kernel_ppid, |p| p.ppid);
        let ancestry = self.table.ancestry(lineage, self.ancestry_depth);
        let now = boot_ns();
        let net = &self.net;
        let ip_names = |ip: &std::net::IpAddr| net.ip_name(ip, now);
        let container = self.identity.container(h.cgroup_id);
        let pod = pod_of(self.pods.as_ref(), container);
        let ctx = Context {
            host: &self.host,
            clock: &self.clock,
            id: self.stats.received.iter().sum(),
            ip_names: &ip_names,
            container,
            pod: pod.as_deref(),
        };
        let hub = self.hub.as_ref().filter(|h| h.wants_events());
        if write_event || hub.is_some() {
            self.line.clear();
            render(event, proc, &ancestry, &ctx, &mut self.line);
        }
        if write_event {
            for s in &mut self.sinks {
                if let Err(lost) = s.write_line(&self.line, i) {
                    count_lost(&mut self.stats, s.name(), &lost);
                }
            }
        }
        if let Some(hub) = hub {
            hub.publish(published(
                &self.line,
                h.time_ns,
                &self.clock,
                None,
                event,
                container,
                pod.as_deref(),
            ));
        }
        let Some(rules) = &self.rules else { return };
        self.alerts.clear();
        let names = EvalNames {
            users: &self.names,
            ips: &self.net.names,
        };
        let eval = EvalContext {
            event,
            proc,
            ancestry: &ancestry,
            names: &names,
            container,
            pod: pod.as_deref(),
        };
        let started = std::time::Instant::now();
        rules.evaluate(&eval, &mut self.alerts);
        self.stats.rule_eval_ns += started.elapsed().as_nanos() as u64;
        self.stats.rule_evals += 1;
        for alert in &self.alerts {
            self.stats.count_alert(alert);
            self.workloads.alert(h.cgroup_id);
            self.line.clear();
            render_alert(alert, event, "none", &ctx, &mut self.line);
            for s in &mut self.sinks {
                if let Err(lost) = s.write_line(&self.line, ALERT_INDEX) {
                    count_lost(&mut self.stats, s.name(), &lost);
                }
            }
            if let Some(hub) = &self.hub {
                hub.publish(published(
                    &self.line,
                    h.time_ns,
                    &self.clock,
                    Some(alert),
                    event,
                    container,
                    pod.as_deref(),
                ));
            }
        }
    }

    /// Pushes buffered lines out; called after each drain of the ring buffer. Lines that a
    /// failed flush loses are counted.
    pub fn flush(&mut self) {
        for e in std::mem::take(&mut self.pending_enforce) {
            if let Event::Enforce(r) = &e {
                self.enforce_report(r);
            }
        }
        if let Some(r) = &mut self.recorder {
            if let Err(e) = r.flush() {
                tracing::error!("recording failed, recording stopped: {e}");
                self.recorder = None;
            }
        }
        for s in &mut self.sinks {
            if let Err(lost) = s.flush() {
                count_lost(&mut self.stats, s.name(), &lost);
            }
        }
    }
}

/// A rendered line with what stream subscribers filter on.
fn published(
    line: &[u8],
    boot_ns: u64,
    clock: &Clock,
    alert: Option<&Alert>,
    event: &Event,
    container: Option<&vigil_identity::ContainerRef>,
    pod: Option<&vigil_identity::PodMeta>,
) -> Published {
    let kind = event.header().kind.name();
    Published {
        line: std::sync::Arc::from(String::from_utf8_lossy(
            line.strip_suffix(b"\n").unwrap_or(line),
        )),
        kind: if alert.is_some() { "alert" } else { kind },
        time_ns: u64::try_from(clock.unix_ns(boot_ns)).unwrap_or_default(),
        alert: alert.map(|a| AlertInfo {
            rule: a.rule.clone(),
            priority: a.priority,
            event_kind: kind,
        }),
        container_id: container.map(|c| c.id.clone()),
        namespace: pod.map(|p| p.namespace.clone()),
        pod: pod.map(|p| p.name.clone()),
    }
}

impl Pipeline {
    /// The pod of a container, when pods are watched.
    pub fn pod_of(
        &self,
        c: &vigil_identity::ContainerRef,
    ) -> Option<std::sync::Arc<vigil_identity::PodMeta>> {
        pod_of(self.pods.as_ref(), Some(c))
    }
}

/// The pod of a container: by the pod UID of its cgroup path, else by container id (the
/// cgroupfs driver's paths may not name the pod).
pub(crate) fn pod_of(
    pods: Option<&vigil_kube::PodCache>,
    container: Option<&vigil_identity::ContainerRef>,
) -> Option<std::sync::Arc<vigil_identity::PodMeta>> {
    let (pods, c) = (pods?, container?);
    c.pod_uid
        .as_deref()
        .and_then(|uid| pods.get(uid))
        .or_else(|| pods.by_container(&c.id))
}

/// Adds lines an output lost to the per-kind counters (and says so, without flooding the log).
fn count_lost(stats: &mut UserStats, output: &str, lost: &Lost) {
    let n: u64 = lost.lost.iter().sum();
    for (total, l) in stats.sink_errors.iter_mut().zip(lost.lost) {
        *total += l;
    }
    stats.alerts_lost += lost.lost[ALERT_INDEX];
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
