//! `vigil run`: load and attach the sensors, seed the process table, stream until signalled.

use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use vigil_bpf::enforce::Enforcement;
use vigil_bpf::{RingBuffer, RingBufferBuilder, SensorConfig, Sensors};
use vigil_enrich::ProcessTable;
use vigil_export::api::{self, ApiState};
use vigil_export::sink::Sink;
use vigil_export::stream::Hub;

use crate::cli::RunArgs;
use crate::config::{Config, EnforcementConfig};
use crate::enforcement;
use crate::pipeline::Pipeline;
use crate::record::Recorder;
use crate::rules::{self, Names, RuleSource};
use crate::stats::Snapshot;
use vigil_enrich::UserDb;

pub fn run(args: RunArgs) -> Result<()> {
    let cfg = Config::load(args.config.as_deref())?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .context("installing the SIGHUP handler")?;
    let sinks = args
        .outputs
        .iter()
        .map(|t| Sink::open(t).with_context(|| format!("opening output {t}")))
        .collect::<Result<Vec<_>>>()?;

    vigil_bpf::route_libbpf_logs();
    for m in vigil_bpf::mounts::ensure() {
        if m.state != "present" {
            tracing::info!("{} at {}: {}", m.fs, m.path, m.state);
        }
    }
    let sensor_cfg = SensorConfig {
        self_tgid: std::process::id(),
        args_max: cfg.args_max,
        wakeup_bytes: cfg.wakeup_bytes,
        emit_threads: cfg.threads,
        ringbuf_bytes: cfg.ringbuf_bytes,
        file: cfg.file.enabled,
        syscalls: cfg.syscalls,
        network: cfg.network.enabled,
        capture_bytes: cfg.network.capture_bytes,
        http: cfg.network.http,
        budget_rate: cfg.budget.events_per_sec,
        budget_burst: cfg.budget.burst,
    };
    let mut sensor = Sensors::load(&sensor_cfg)?;
    sensor
        .set_path_filter(&vigil_bpf::PathFilter {
            watch: &cfg.file.watch,
            ignore: &cfg.file.ignore,
            watch_writes: &cfg.file.watch_writes,
        })
        .context("writing the path filter")?;
    sensor.attach()?;
    let latency = load_latency(&cfg.latency);
    let _run_time_stats = cfg.metrics.bpf_stats.then(|| {
        vigil_bpf::runstats::RunTimeStats::enable()
            .map_err(|e| tracing::warn!("BPF run-time statistics unavailable: {e}"))
            .ok()
    });
    // Listening after attach lets the network sensor recognise the API's sockets as the
    // agent's own (and not report them).
    let hub = Arc::new(Hub::new(cfg.api.stream_buffer, cfg.api.recent_alerts));
    let auth =
        vigil_export::auth::Auth::from_config(&cfg.api.tokens).map_err(anyhow::Error::msg)?;
    let health = Arc::new(ApiState::new(
        hub.clone(),
        auth,
        Box::new(|| serde_json::to_value(vigil_bpf::probe::run()).unwrap_or_default()),
    ));
    // The exporter subscribes now, so it sees every alert from the first event on.
    let otlp = match &cfg.otlp {
        Some(o) => {
            let state = health.clone();
            let source: vigil_otlp::MetricsSource =
                Arc::new(move || state.metrics.lock().ok()?.clone());
            let host = hostname::get()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default();
            Some(
                vigil_otlp::spawn(o, hub.clone(), source, &host)
                    .context("starting the OTLP exporter")?,
            )
        }
        None => None,
    };
    let otlp_stats = otlp.as_ref().map(|e| e.stats());
    if let Some(addr) = args.api {
        let bound = api::spawn(addr, health.clone())
            .with_context(|| format!("serving the API on {addr}"))?;
        tracing::info!("api listening on http://{bound}");
    }
    for r in sensor.reports() {
        for u in &r.unavailable {
            tracing::warn!(sensor = r.name, "unavailable on this kernel: {u}");
        }
    }

    // Seed after attaching: a process born in between is both in /proc and in the ring buffer,
    // and the event (applied later) wins.
    let mut table = ProcessTable::new(cfg.process_table_capacity);
    let seeded = seed(&mut table);
    // Exits so far carried their exe, for processes gone before the scan that exec'd unseen.
    sensor.seeded();
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let recorder = match &args.record {
        Some(path) => {
            let mut r = Recorder::create(path)?;
            for p in table.iter() {
                r.seed(p)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Some(r)
        }
        None => None,
    };
    let mut pipeline = Pipeline::new(
        table,
        sinks,
        args.events.clone(),
        host,
        cfg.ancestry_depth,
        cfg.network.http,
    );
    // Also after attaching: cgroups made in between are both in the tree and in the ring buffer.
    // Kept alive for the agent's life: dropping the handle stops the watch.
    let _pod_watch = if cfg.kubernetes.enabled {
        let (cache, handle) = vigil_kube::spawn_watcher(vigil_kube::WatchConfig {
            kubeconfig: cfg.kubernetes.kubeconfig.clone(),
            node_name: cfg.kubernetes.node_name.clone(),
            grace: Duration::from_secs(cfg.kubernetes.grace_secs),
        })
        .context("watching pods on the Kubernetes API")?;
        pipeline.pods = Some(cache);
        Some(handle)
    } else {
        None
    };
    let root = vigil_bpf::mounts::cgroup2_root();
    if let Err(e) = pipeline.identity.seed_from_dir(&root) {
        tracing::warn!("reading the cgroup tree at {}: {e}", root.display());
    }
    // Kept alive for the agent's life: dropping the handle stops the lookups.
    let _runtime_lookups = if cfg.runtime.containerd.enabled || cfg.runtime.podman.enabled {
        let (cache, handle) =
            vigil_runtime::spawn(cfg.runtime.clone()).context("starting runtime lookups")?;
        pipeline.runtime = Some(cache);
        pipeline.request_runtime_meta();
        Some(handle)
    } else {
        None
    };
    pipeline.recorder = recorder;
    pipeline.hub = Some(hub.clone());
    pipeline.workloads = crate::workloads::Workloads::new(
        cfg.anomaly
            .enabled
            .then(|| vigil_anomaly::Detector::new(cfg.anomaly.clone()))
            .transpose()?,
        cfg.latency.window_secs,
    );
    // Rules: a bad file at start is fatal (nothing to fall back to); later, on reload, the
    // previous rules stay.
    let mut rule_source = RuleSource::new(
        args.rules.clone(),
        rules::observable(
            sensor.reports(),
            cfg.network.capture_bytes > 0,
            cfg.network.capture_bytes > 0 && cfg.network.http,
        ),
    );
    let ruleset = rule_source.load()?;
    report_rules(&ruleset);
    let (mut enforcement, leftovers) = enforcement::apply(&ruleset, &cfg.enforcement)?;
    let mut scopes = crate::scopes::Scopes::new(Some(&ruleset));
    pipeline.enforce_generation = enforcement.as_ref().map(|e| e.generation());
    pipeline.old_rule_names = leftovers.names;
    pipeline.rules = Some(ruleset);
    pipeline.names = Names(UserDb::load(Path::new("/")));
    pipeline.path_filter = vigil_events::filter::PathFilter {
        watch: cfg.file.watch.clone(),
        ignore: cfg.file.ignore.clone(),
        watch_writes: cfg.file.watch_writes.clone(),
    };
    let pipeline = RefCell::new(pipeline);
    // Reports enforcement made while no agent was reading (this one was starting).
    for rec in &leftovers.records {
        pipeline.borrow_mut().handle(rec);
    }
    let mut rb = ring_buffer(&sensor, enforcement.as_ref(), &pipeline)?;

    let net_on = sensor
        .reports()
        .iter()
        .any(|r| r.name == "net" && r.state == "attached");
    if net_on {
        // Published at once (empty), so the API never answers 503 while the sensor runs.
        publish_map(&pipeline.borrow(), &health);
    }
    health.ready.store(true, Ordering::Relaxed);
    // Printed whatever VIGIL_LOG says: scripts and tests wait for this line.
    let live: Vec<&str> = sensor
        .reports()
        .iter()
        .filter(|r| r.state == "attached")
        .map(|r| r.name)
        .collect();
    eprintln!(
        "vigil: ready: sensors={} programs={} seeded_processes={seeded}",
        live.join(","),
        sensor.program_names().len()
    );

    let poll = Duration::from_millis(cfg.flush_interval_ms);
    let stats_every =
        (cfg.stats_interval_secs > 0).then(|| Duration::from_secs(cfg.stats_interval_secs));
    let mut last_stats = Instant::now();
    let mut last_rules_check = Instant::now();
    let flow_every = Duration::from_secs(cfg.network.flow_interval_secs);
    let mut last_flows = Instant::now();
    let mut last_tick = Instant::now();
    let mut last_metrics = Instant::now() - METRICS_TICK;
    let mut last_map_fill = Instant::now() - MAP_FILL_TICK;
    let mut map_fill = Vec::new();
    let mut last_fold = Instant::now();
    let mut last_scopes: Option<(Instant, u64)> = None;
    let window = Duration::from_secs(cfg.latency.window_secs);
    let mut last_window = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Records are submitted without wakeups; poll returns early only past the wakeup
        // threshold, so drain explicitly every interval.
        pipeline.borrow_mut().drained = 0;
        if let Err(e) = rb.poll(poll) {
            // A full batch ends a drain with EAGAIN: not an error.
            if e.kind() != vigil_bpf::ErrorKind::Interrupted
                && pipeline.borrow().drained < DRAIN_BATCH
            {
                tracing::warn!("ring buffer poll: {e}");
            }
        }
        if pipeline.borrow().drained < DRAIN_BATCH {
            let _ = rb.consume();
        }
        pipeline.borrow_mut().flush();
        if net_on && last_tick.elapsed() >= NET_TICK {
            last_tick = Instant::now();
            let mut p = pipeline.borrow_mut();
            p.tick();
            drop(p);
            publish_map(&pipeline.borrow(), &health);
        }
        // Workload scopes: at once for new cgroups (a pod's cgroup precedes its containers'),
        // and every second for pod churn (labels, pods that arrived late from the API).
        if let Some(e) = enforcement.as_ref() {
            let p = pipeline.borrow();
            let due = last_scopes.is_none_or(|(t, n): (Instant, u64)| {
                t.elapsed() >= METRICS_TICK || n != p.cgroups_created
            });
            if due {
                scopes.sync(e, &p.identity, p.pods.as_ref());
                last_scopes = Some((Instant::now(), p.cgroups_created));
            }
        }
        if last_fold.elapsed() >= METRICS_TICK {
            last_fold = Instant::now();
            fold_workloads(&sensor, &mut pipeline.borrow_mut(), &health);
        }
        if last_window.elapsed() >= window {
            last_window = Instant::now();
            close_window(latency.as_ref(), &mut pipeline.borrow_mut());
        }
        if (args.api.is_some() || otlp.is_some()) && last_metrics.elapsed() >= METRICS_TICK {
            last_metrics = Instant::now();
            if last_map_fill.elapsed() >= MAP_FILL_TICK {
                last_map_fill = Instant::now();
                map_fill = sensor.map_fill();
            }
            let mut families = metrics_now(
                &sensor,
                enforcement.as_ref(),
                &pipeline.borrow(),
                &map_fill,
                cfg.metrics.max_series,
            )?;
            if let Some(s) = &otlp_stats {
                families.extend(s.families());
            }
            families.extend(health.families());
            if let Ok(mut m) = health.metrics.lock() {
                *m = Some(Arc::new(families));
            }
        }
        if net_on && last_flows.elapsed() >= flow_every {
            last_flows = Instant::now();
            take_kernel_maps(&sensor, &mut pipeline.borrow_mut());
        }
        let hup = reload.swap(false, Ordering::Relaxed);
        if hup || (last_rules_check.elapsed() >= RULES_CHECK && rule_source.changed()) {
            last_rules_check = Instant::now();
            // The reload replaces the enforcement ring buffer: drain the old one first.
            drain_all(&rb, &pipeline);
            drop(rb);
            reload_rules(
                &mut rule_source,
                &mut pipeline.borrow_mut(),
                &mut enforcement,
                &mut scopes,
                &cfg.enforcement,
                hup,
            );
            last_scopes = None;
            rb = ring_buffer(&sensor, enforcement.as_ref(), &pipeline)?;
        } else if last_rules_check.elapsed() >= RULES_CHECK {
            last_rules_check = Instant::now();
        }
        if let Some(every) = stats_every {
            if last_stats.elapsed() >= every {
                last_stats = Instant::now();
                let mut p = pipeline.borrow_mut();
                p.clock.follow(vigil_export::json::Clock::now());
                tracing::info!(
                    "{}",
                    Snapshot::new(
                        &kernel_stats(&sensor, enforcement.as_ref(), &p)?,
                        &p.stats,
                        p.table.stats()
                    )
                    .line()
                );
            }
        }
    }

    // Pause the programs so that nothing new arrives, drain what is left and report; then
    // detach (slow: the kernel waits an RCU grace period per tracepoint).
    sensor.pause();
    drain_all(&rb, &pipeline);
    let mut p = pipeline.borrow_mut();
    if net_on {
        take_kernel_maps(&sensor, &mut p);
    }
    p.flush();
    let mut snap = Snapshot::new(
        &kernel_stats(&sensor, enforcement.as_ref(), &p)?,
        &p.stats,
        p.table.stats(),
    );
    if net_on {
        snap.network = Some(p.net.stats(sensor.net_stats()?));
    }
    snap.budget_drops = budget_drops(&sensor, &p)?;
    tracing::info!("{}", snap.line());
    eprintln!("vigil: final stats {}", serde_json::to_string(&snap)?);
    drop(p);
    drop(rb);
    // Sends what is queued (the last alerts and metrics) before the slow detach.
    if let Some(e) = otlp {
        e.shutdown();
    }
    sensor.detach();
    Ok(())
}

/// The kernel's counters. Enforcement reports have their own: what was received, plus what a
/// full ring buffer lost (in this and earlier generations this agent installed).
fn kernel_stats(
    sensor: &Sensors,
    enforcement: Option<&Enforcement>,
    pipeline: &Pipeline,
) -> Result<vigil_bpf::KernelStats> {
    let mut k = sensor.stats()?;
    let lost = pipeline.stats.enforce_lost_prior
        + enforcement.map_or(Ok(0), |e| e.stats().map(|s| s[0]))?;
    let e = &mut k.counts[vigil_abi::VIGIL_EV_ENFORCE as usize];
    e[vigil_abi::VIGIL_STAT_SUBMITTED as usize] =
        pipeline.stats.received[crate::stats::index(vigil_events::Kind::Enforce)];
    e[vigil_abi::VIGIL_STAT_RINGBUF_FULL as usize] = lost;
    Ok(k)
}

/// Hands the API a fresh copy of the service map, its local nodes named by container and pod.
fn publish_map(p: &Pipeline, health: &ApiState) {
    let now = crate::network::boot_ns();
    let mut snapshot = p.net.map.snapshot(now, &|ip| {
        p.net
            .names
            .lookup(ip, now)
            .map(str::to_string)
            .into_iter()
            .collect()
    });
    for n in &mut snapshot.nodes {
        let Some(c) = n.cgroup_id.and_then(|id| p.identity.container(id)) else {
            continue;
        };
        n.container_id = Some(c.id.clone());
        if let Some(pod) = p.pod_of(c) {
            n.namespace = Some(pod.namespace.clone());
            n.pod = Some(pod.name.clone());
        }
    }
    if let Ok(mut m) = health.map.lock() {
        *m = Some(Arc::new(snapshot));
    }
}

/// How often the metrics snapshot is rebuilt (when the API serves it).
const METRICS_TICK: Duration = Duration::from_secs(1);
/// How often the BPF hash maps are counted (one syscall per entry).
const MAP_FILL_TICK: Duration = Duration::from_secs(10);

/// The agent's metrics as of now.
fn metrics_now(
    sensor: &Sensors,
    enforcement: Option<&Enforcement>,
    p: &Pipeline,
    maps: &[vigil_bpf::runstats::MapFill],
    max_series: usize,
) -> Result<Vec<vigil_export::metrics::Family>> {
    let mut snap = Snapshot::new(
        &kernel_stats(sensor, enforcement, p)?,
        &p.stats,
        p.table.stats(),
    );
    snap.budget_drops = budget_drops(sensor, p)?;
    let net = sensor.net_stats().ok().map(|k| p.net.stats(k));
    let programs = sensor.program_stats();
    let mut families = crate::metrics::families(&crate::metrics::Inputs {
        snapshot: &snap,
        user: &p.stats,
        programs: &programs,
        maps,
        enforcement: enforcement.and_then(|e| e.stats().ok()),
        network: net.as_ref(),
        containers: p.identity.len(),
        pods: p.pods.as_ref().map(|c| c.len()),
        max_series,
    });
    let mut more = p.workloads.families();
    vigil_export::metrics::cap_series(&mut more, max_series);
    families.extend(more);
    Ok(families)
}

/// The latency histograms, when any family is enabled; a kernel that cannot run them is
/// reported, not fatal.
fn load_latency(cfg: &crate::config::LatencyConfig) -> Option<vigil_bpf::latency::Latency> {
    if cfg.syscalls.is_empty() && !cfg.runq && !cfg.block {
        return None;
    }
    let lc = vigil_bpf::latency::LatencyConfig {
        syscall_classes: cfg.syscalls.clone(),
        runq: cfg.runq,
        block: cfg.block,
        ..Default::default()
    };
    let loaded = vigil_bpf::latency::Latency::load(&lc).and_then(|mut l| l.attach().map(|()| l));
    match loaded {
        Ok(l) => {
            for r in l.reports() {
                for u in &r.unavailable {
                    tracing::warn!(sensor = r.name, "unavailable on this kernel: {u}");
                }
            }
            Some(l)
        }
        Err(e) => {
            tracing::warn!("latency histograms unavailable: {e}");
            None
        }
    }
}

/// Folds the per-cgroup counters into workloads and publishes the API's view of them.
fn fold_workloads(sensor: &Sensors, p: &mut Pipeline, health: &ApiState) {
    let budget = sensor.budget_drops().unwrap_or_default();
    let (identity, pods) = (&p.identity, p.pods.as_ref());
    let resolve = |cg: u64| {
        let c = identity.container(cg).cloned();
        let pod = c
            .as_ref()
            .and_then(|c| crate::pipeline::pod_of(pods, Some(c)));
        (c, pod)
    };
    p.workloads.fold(&resolve, &budget);
    if let Ok(v) = serde_json::to_value(p.workloads.response()) {
        if let Ok(mut w) = health.workloads.lock() {
            *w = Some(Arc::new(v));
        }
    }
}

/// Ends a latency window: kernel histograms and network latencies per workload, judged by the
/// anomaly detector; its verdicts become alerts.
fn close_window(latency: Option<&vigil_bpf::latency::Latency>, p: &mut Pipeline) {
    let samples = latency
        .map(|l| {
            l.read().unwrap_or_else(|e| {
                tracing::warn!("reading latency histograms: {e}");
                Vec::new()
            })
        })
        .unwrap_or_default();
    let (identity, pods) = (&p.identity, p.pods.as_ref());
    let resolve = |cg: u64| {
        let c = identity.container(cg).cloned();
        let pod = c
            .as_ref()
            .and_then(|c| crate::pipeline::pod_of(pods, Some(c)));
        (c, pod)
    };
    let verdicts = p
        .workloads
        .close_window(&samples, &resolve, crate::network::boot_ns());
    for cg in std::mem::take(&mut p.removed_cgroups) {
        p.workloads.forget_cgroup(cg);
        if let Some(l) = latency {
            let _ = l.forget(cg);
        }
    }
    p.window_alerts(verdicts);
    p.flush();
}

fn budget_drops(sensor: &Sensors, p: &Pipeline) -> Result<Vec<crate::stats::BudgetDrop>> {
    Ok(sensor
        .budget_drops()?
        .into_iter()
        .map(|(cgroup_id, dropped)| crate::stats::BudgetDrop {
            cgroup_id,
            container_id: p.identity.container(cgroup_id).map(|c| c.id.clone()),
            dropped,
        })
        .collect())
}

/// How often the network state is aged (time-outs, map pairing) and the map published.
const NET_TICK: Duration = Duration::from_secs(1);

/// UDP flows and packet drops counted in the kernel since the last call, as events.
fn take_kernel_maps(sensor: &Sensors, pipeline: &mut Pipeline) {
    let flows = sensor.take_udp_flows().unwrap_or_else(|e| {
        tracing::warn!("reading UDP flows: {e}");
        Vec::new()
    });
    let drops = sensor.take_drops().unwrap_or_else(|e| {
        tracing::warn!("reading packet drops: {e}");
        Vec::new()
    });
    pipeline.kernel_maps(flows, drops);
    pipeline.flush();
}

/// Consumes everything the ring buffers hold, batch after batch.
fn drain_all(rb: &RingBuffer<'_>, pipeline: &RefCell<Pipeline>) {
    loop {
        pipeline.borrow_mut().drained = 0;
        let _ = rb.consume();
        if pipeline.borrow().drained < DRAIN_BATCH {
            return;
        }
    }
}

/// Records handled per turn of the main loop before it looks at its timers and signals.
const DRAIN_BATCH: u64 = 16_384;

/// How often rule files are checked for changes.
const RULES_CHECK: Duration = Duration::from_secs(2);

fn report_rules(set: &vigil_rules::RuleSet) {
    for r in set.rules().iter().filter(|r| r.disabled_reason.is_some()) {
        tracing::info!(rule = %r.name, "rule disabled: {}", r.disabled_reason.as_deref().unwrap_or_default());
    }
    for w in set.warnings() {
        tracing::warn!("rules: {w}");
    }
    tracing::info!(
        enabled = set.enabled_count(),
        total = set.rules().len(),
        "rules loaded"
    );
}

/// One consumer for the sensors' ring buffer and the enforcement reports.
fn ring_buffer<'cb>(
    sensor: &Sensors,
    enforcement: Option<&Enforcement>,
    pipeline: &'cb RefCell<Pipeline>,
) -> Result<RingBuffer<'cb>> {
    let mut b = RingBufferBuilder::new();
    // A negative return stops libbpf's drain after this record (already consumed): under a
    // flood the loop then gets back to its other work (metrics, stats, reloads, signals).
    let handle = |rec: &[u8]| {
        let mut p = pipeline.borrow_mut();
        p.handle(rec);
        p.drained += 1;
        if p.drained >= DRAIN_BATCH {
            -libc::EAGAIN
        } else {
            0
        }
    };
    sensor
        .add_ring_buffer(&mut b, handle)
        .context("opening the ring buffer")?;
    if let Some(e) = enforcement {
        e.add_ring_buffer(&mut b, handle)
            .context("opening the enforcement ring buffer")?;
    }
    b.build().context("opening the ring buffers")
}

/// Reloads rules (and user names) and puts their actions in force. On error the running rules
/// and enforcement stay and the error is logged.
fn reload_rules(
    source: &mut RuleSource,
    pipeline: &mut Pipeline,
    enforcement: &mut Option<Enforcement>,
    scopes: &mut crate::scopes::Scopes,
    cfg: &EnforcementConfig,
    hup: bool,
) {
    if hup {
        pipeline.names = Names(UserDb::load(Path::new("/")));
    }
    let set = match source.load() {
        Ok(set) => set,
        Err(e) => {
            tracing::error!("rules not reloaded, the previous rules stay active: {e:#}");
            return;
        }
    };
    match enforcement::apply(&set, cfg) {
        Ok((e, leftovers)) => {
            report_rules(&set);
            pipeline.old_rule_names.extend(leftovers.names);
            pipeline.enforce_generation = e.as_ref().map(|e| e.generation());
            *scopes = crate::scopes::Scopes::new(Some(&set));
            pipeline.rules = Some(set);
            if let Some(old) = enforcement.as_ref() {
                pipeline.stats.enforce_lost_prior += old.stats().map_or(0, |s| s[0]);
            }
            *enforcement = e;
            for rec in &leftovers.records {
                pipeline.handle(rec);
            }
        }
        Err(e) => tracing::error!(
            "rules not reloaded, the previous rules and enforcement stay active: {e:#}"
        ),
    }
}

/// Seeds the table from /proc so that pre-existing processes have parents and ancestry.
fn seed(table: &mut ProcessTable) -> usize {
    let cgroup2 = vigil_bpf::mounts::cgroup2_root();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut n = 0;
    for entry in dir.flatten() {
        let Some(tgid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(info) = vigil_enrich::read_process(Path::new("/proc"), tgid, &cgroup2) {
            table.insert(info);
            n += 1;
        }
    }
    n
}
