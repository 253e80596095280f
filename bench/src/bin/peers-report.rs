//! `peers-report CSV DATA_DIR`: the summary of `bench/peers.sh`. It prints a Markdown report
//! (per workload and configuration: cost per operation, added cost against no agent paired by
//! round, ratios against no agent and against the floor, agent CPU; the HTTP latencies; the
//! targets) and writes the tab-separated files that gnuplot draws (`added.tsv`, `http.tsv`).
//!
//! Pairing by round (config minus none of the same round) cancels the slow drift of a shared
//! machine; the spread is p25..p75 over the rounds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

/// The configurations compared with `none`, in report order.
const TRACED: [&str; 5] = ["floor", "vigil", "bpftrace", "auditd", "strace"];
/// The workloads with a cost per operation, in report order, with their labels.
const WORKLOADS: [(&str, &str); 5] = [
    ("open-close", "open+close"),
    ("exec", "fork+exec"),
    ("connect", "TCP connect"),
    ("wrk", "nginx+wrk request"),
    ("fio", "fio 4k read"),
];

/// One CSV row, by column name.
type Row = BTreeMap<String, String>;

fn parse_csv(text: &str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty CSV")?.split(',').collect();
    for col in ["round", "config", "workload", "ops", "ns_per_op"] {
        if !header.contains(&col) {
            return Err(format!("CSV has no `{col}` column"));
        }
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| {
            let fields: Vec<&str> = l.split(',').collect();
            if fields.len() != header.len() {
                return Err(format!(
                    "CSV line {}: {} fields, expected {}",
                    i + 2,
                    fields.len(),
                    header.len()
                ));
            }
            Ok(header
                .iter()
                .zip(fields)
                .map(|(h, f)| (h.to_string(), f.to_string()))
                .collect())
        })
        .collect()
}

fn num(row: &Row, col: &str) -> Option<f64> {
    row.get(col).and_then(|v| v.parse().ok())
}

/// The figure a workload is compared on, in ns per operation: the batch median for the tight
/// loops (it leaves out the batches in which the loop was preempted), the mean otherwise.
fn cost_ns(row: &Row) -> Option<f64> {
    match row.get("workload").map(String::as_str) {
        Some("open-close" | "connect") => {
            num(row, "batch_median_ns").or_else(|| num(row, "ns_per_op"))
        }
        Some("http-rate") => num(row, "p50_us").map(|us| us * 1000.0),
        _ => num(row, "ns_per_op"),
    }
}

/// Linear-interpolated quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    match sorted.get(lo + 1) {
        Some(next) => sorted[lo] + (h - lo as f64) * (next - sorted[lo]),
        None => sorted[lo],
    }
}

/// Median, p25 and p75; None when there is nothing.
#[derive(Debug, Clone, Copy)]
struct Spread {
    med: f64,
    p25: f64,
    p75: f64,
}

fn spread(mut v: Vec<f64>) -> Option<Spread> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Spread {
        med: quantile(&v, 0.5),
        p25: quantile(&v, 0.25),
        p75: quantile(&v, 0.75),
    })
}

/// The runs: (workload, config) -> round -> row.
#[derive(Debug, Default)]
struct Runs(BTreeMap<(String, String), BTreeMap<u32, Row>>);

impl Runs {
    fn new(rows: Vec<Row>) -> Runs {
        let mut runs = Runs::default();
        for row in rows {
            let key = (row["workload"].clone(), row["config"].clone());
            let round = row["round"].parse().unwrap_or(0);
            runs.0.entry(key).or_default().insert(round, row);
        }
        runs
    }

    fn get(&self, wl: &str, cfg: &str) -> Option<&BTreeMap<u32, Row>> {
        self.0.get(&(wl.to_string(), cfg.to_string()))
    }

    /// f(config's row, none's row) over the rounds in which both ran.
    fn paired(&self, wl: &str, cfg: &str, f: impl Fn(&Row, &Row) -> Option<f64>) -> Vec<f64> {
        let (Some(c), Some(n)) = (self.get(wl, cfg), self.get(wl, "none")) else {
            return vec![];
        };
        c.iter()
            .filter_map(|(r, row)| n.get(r).and_then(|base| f(row, base)))
            .collect()
    }

    fn added(&self, wl: &str, cfg: &str) -> Vec<f64> {
        self.paired(wl, cfg, |c, n| Some(cost_ns(c)? - cost_ns(n)?))
    }

    /// Per round, the config's added cost divided by the floor's, in the rounds where the
    /// floor's is above zero (a ratio to a negative or null difference means nothing).
    fn vs_floor_per_round(&self, wl: &str, cfg: &str) -> Vec<f64> {
        let (Some(c), Some(f), Some(n)) = (
            self.get(wl, cfg),
            self.get(wl, "floor"),
            self.get(wl, "none"),
        ) else {
            return vec![];
        };
        c.iter()
            .filter_map(|(r, row)| {
                let base = cost_ns(n.get(r)?)?;
                let floor = cost_ns(f.get(r)?)? - base;
                (floor > 0.0).then_some((cost_ns(row)? - base) / floor)
            })
            .collect()
    }

    fn values(&self, wl: &str, cfg: &str, f: impl Fn(&Row) -> Option<f64>) -> Vec<f64> {
        self.get(wl, cfg)
            .map(|m| m.values().filter_map(f).collect())
            .unwrap_or_default()
    }

    /// The agent's CPU per operation in µs over all rounds (None where it is not measured).
    fn cpu_per_op_us(&self, wl: &str, cfg: &str) -> Option<f64> {
        let m = self.get(wl, cfg)?;
        let (mut cpu, mut ops) = (0.0, 0.0);
        for row in m.values() {
            cpu += num(row, "agent_cpu_s")?;
            ops += num(row, "ops")?;
        }
        (ops > 0.0).then(|| cpu * 1e6 / ops)
    }
}

/// ns shown in the most readable unit.
fn t(ns: f64) -> String {
    if ns.abs() >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns.abs() >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns.abs() >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn signed(ns: f64) -> String {
    if ns >= 0.0 {
        format!("+{}", t(ns))
    } else {
        format!("−{}", t(-ns))
    }
}

fn fmt_spread(s: Option<Spread>, f: impl Fn(f64) -> String) -> String {
    s.map(|s| format!("{} [{}..{}]", f(s.med), f(s.p25), f(s.p75)))
        .unwrap_or_else(|| "–".into())
}

fn report(runs: &Runs, out: &mut String, added_tsv: &mut String, http_tsv: &mut String) {
    let _ = writeln!(out, "| Workload | Config | Per op, median [p25..p75] | Added vs none, paired [p25..p75] | × none [p25..p75] | Added ÷ floor's added: medians (per round p25..p75) | Agent CPU per op |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let _ = write!(added_tsv, "workload");
    for c in TRACED {
        let _ = write!(added_tsv, "\t{c}\t{c}_p25\t{c}_p75");
    }
    added_tsv.push('\n');
    let mut verdicts = String::new();
    for (wl, label) in WORKLOADS {
        let _ = write!(added_tsv, "{label}");
        let floor = spread(runs.added(wl, "floor"));
        let mut added_med = BTreeMap::new();
        for cfg in std::iter::once("none").chain(TRACED) {
            let Some(own) = spread(runs.values(wl, cfg, cost_ns)) else {
                continue;
            };
            let first = if cfg == "none" { label } else { "" };
            let _ = write!(out, "| {first} | {cfg} | {} |", fmt_spread(Some(own), t));
            if cfg == "none" {
                let _ = writeln!(out, " | | | |");
                continue;
            }
            let added = spread(runs.added(wl, cfg));
            let ratio = spread(runs.paired(wl, cfg, |c, n| Some(cost_ns(c)? / cost_ns(n)?)));
            let _ = write!(
                out,
                " {} | {} |",
                fmt_spread(added, signed),
                fmt_spread(ratio, |x| format!("{x:.2}"))
            );
            let vs_floor = match (cfg, added, floor) {
                ("floor", _, _) => String::new(),
                (_, Some(a), Some(f)) if f.med > 0.0 => {
                    let s = spread(runs.vs_floor_per_round(wl, cfg));
                    format!(
                        "{:.2} ({})",
                        a.med / f.med,
                        s.map(|s| format!("{:.2}..{:.2}", s.p25, s.p75))
                            .unwrap_or("–".into())
                    )
                }
                _ => "floor not resolved (≤ 0)".into(),
            };
            let cpu = runs
                .cpu_per_op_us(wl, cfg)
                .map(|us| t(us * 1e3))
                .unwrap_or_else(|| "–".into());
            let _ = writeln!(out, " {vs_floor} | {cpu} |");
            if let Some(a) = added {
                added_med.insert(cfg, a.med);
                // Log scale: what is at or below 1 ns is drawn at 1 ns.
                let _ = write!(
                    added_tsv,
                    "\t{:.1}\t{:.1}\t{:.1}",
                    a.med.max(1.0),
                    a.p25.max(1.0),
                    a.p75.max(1.0)
                );
            } else {
                let _ = write!(added_tsv, "\t1\t1\t1");
            }
        }
        added_tsv.push('\n');
        verdicts.push_str(&verdict(label, &added_med));
    }
    http(runs, out, http_tsv);
    let _ = writeln!(
        out,
        "\nTargets (on the paired medians of the added cost):\n"
    );
    out.push_str(&verdicts);
    load(runs, out);
}

/// The three targets of one workload, as a Markdown list item.
fn verdict(label: &str, added: &BTreeMap<&str, f64>) -> String {
    let get = |c| added.get(c).copied();
    let Some(v) = get("vigil") else {
        return String::new();
    };
    let mut parts = Vec::new();
    match get("floor") {
        Some(f) if f > 0.0 => parts.push(format!(
            "≤ 1.5× floor: **{}** ({} vs {}, {:.2}×)",
            if v <= 1.5 * f { "met" } else { "not met" },
            signed(v),
            signed(f),
            v / f
        )),
        Some(f) => parts.push(format!(
            "≤ 1.5× floor: **unresolved** (floor {}, vigil {})",
            signed(f),
            signed(v)
        )),
        None => {}
    }
    if let Some(a) = get("auditd") {
        parts.push(format!(
            "below auditd: **{}** ({})",
            if v < a { "met" } else { "not met" },
            signed(a)
        ));
    }
    if let Some(s) = get("strace") {
        let ok = v <= 0.0 || s / v >= 20.0;
        let x = if v > 0.0 {
            format!("{:.0}×", s / v)
        } else {
            "vigil ≤ 0".into()
        };
        parts.push(format!(
            "≥ 20× below strace: **{}** ({}, {x})",
            if ok { "met" } else { "not met" },
            signed(s)
        ));
    }
    format!("- {label}: {}\n", parts.join("; "))
}

/// The fixed-rate HTTP workload: latency, and what the agent and nginx spent.
fn http(runs: &Runs, out: &mut String, tsv: &mut String) {
    let wl = "http-rate";
    let _ = writeln!(out, "\nnginx at a fixed rate (`http-rate`): latency from each request's scheduled send time; agent CPU over the run.\n");
    let _ = writeln!(out, "| Config | Rate, req/s | p50 [p25..p75] | p99 [p25..p75] | p50 added, paired | p99 added, paired | Agent CPU, % of a core | Agent CPU per request | nginx CPU per request | Errors |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    tsv.push_str("config\tp50\tp50_p25\tp50_p75\tp99\tp99_p25\tp99_p75\n");
    for cfg in std::iter::once("none").chain(TRACED) {
        let Some(m) = runs.get(wl, cfg) else { continue };
        let us = |col: &'static str| spread(runs.values(wl, cfg, |r| num(r, col)));
        let (p50, p99) = (us("p50_us"), us("p99_us"));
        let rate = us("ops_per_sec");
        let d = |col: &'static str| {
            if cfg == "none" {
                return String::new();
            }
            fmt_spread(
                spread(runs.paired(wl, cfg, |c, n| Some(num(c, col)? - num(n, col)?))),
                |x| format!("{x:+.0} µs"),
            )
        };
        let sum = |col| m.values().map(|r| num(r, col)).sum::<Option<f64>>();
        let (ops, secs) = (sum("ops").unwrap_or(0.0), sum("seconds").unwrap_or(0.0));
        let cpu = sum("agent_cpu_s").filter(|_| secs > 0.0);
        let nginx = sum("nginx_cpu_s").filter(|_| ops > 0.0);
        let _ = writeln!(
            out,
            "| {cfg} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fmt_spread(rate, |x| format!("{x:.0}")),
            fmt_spread(p50, |x| format!("{x:.0} µs")),
            fmt_spread(p99, |x| format!("{x:.0} µs")),
            d("p50_us"),
            d("p99_us"),
            cpu.map(|c| format!("{:.2} %", 100.0 * c / secs))
                .unwrap_or("–".into()),
            cpu.map(|c| t(c * 1e9 / ops)).unwrap_or("–".into()),
            nginx.map(|c| t(c * 1e9 / ops)).unwrap_or("–".into()),
            sum("errors")
                .map(|e| format!("{e:.0}"))
                .unwrap_or("–".into()),
        );
        if let (Some(a), Some(b)) = (p50, p99) {
            let _ = writeln!(
                tsv,
                "{cfg}\t{:.1}\t{:.1}\t{:.1}\t{:.1}\t{:.1}\t{:.1}",
                a.med, a.p25, a.p75, b.med, b.p25, b.p75
            );
        }
    }
    let lost: f64 = runs
        .0
        .iter()
        .filter(|((_, c), _)| c == "auditd")
        .flat_map(|(_, m)| m.values())
        .filter_map(|r| num(r, "audit_lost"))
        .sum();
    let _ = writeln!(
        out,
        "\nAudit records lost (kernel backlog full) during the auditd runs: {lost:.0}."
    );
}

/// The load average during the run, per round.
fn load(runs: &Runs, out: &mut String) {
    let mut per_round: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for m in runs.0.values() {
        for (r, row) in m {
            if let Some(l) = num(row, "loadavg1") {
                per_round.entry(*r).or_default().push(l);
            }
        }
    }
    let _ = write!(
        out,
        "\nLoad average (1 min) over each round's runs, min..max:"
    );
    for (r, v) in per_round {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        let _ = write!(out, " round {r} {lo:.2}..{hi:.2};");
    }
    out.push('\n');
}

/// Fewer clean runs than this and a (workload, config) keeps all its runs.
const MIN_CLEAN_RUNS: usize = 3;

/// Sets aside the runs during which another process held tracepoints (`foreign_bpf` > 0: another
/// agent or tracer on the shared machine, paid by whichever runs it overlapped), for every
/// (workload, config) that keeps at least `MIN_CLEAN_RUNS` runs; pairing then uses the rounds in
/// which both sides were kept. Returns the rows kept and a note saying what was done.
fn clean_runs(rows: Vec<Row>) -> (Vec<Row>, String) {
    let key = |r: &Row| (r["workload"].clone(), r["config"].clone());
    let dirty = |r: &Row| num(r, "foreign_bpf").unwrap_or(0.0) > 0.0;
    let mut clean: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in &rows {
        *clean.entry(key(r)).or_default() += usize::from(!dirty(r));
    }
    let total = rows.len();
    let (mut dropped, mut kept_dirty) = (0, 0);
    let kept: Vec<Row> = rows
        .into_iter()
        .filter(|r| {
            if !dirty(r) {
                return true;
            }
            if clean[&key(r)] >= MIN_CLEAN_RUNS {
                dropped += 1;
                false
            } else {
                kept_dirty += 1;
                true
            }
        })
        .collect();
    if dropped + kept_dirty == 0 {
        return (kept, String::new());
    }
    let mut note = format!(
        "Other processes held tracepoints during {} of {total} runs: {dropped} set aside",
        dropped + kept_dirty
    );
    if kept_dirty > 0 {
        let _ = write!(note, ", {kept_dirty} kept (fewer than {MIN_CLEAN_RUNS} clean runs left for their workload and configuration)");
    }
    note.push_str(".\n\n");
    (kept, note)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [csv, dir] = args.as_slice() else {
        eprintln!("usage: peers-report CSV DATA_DIR");
        return ExitCode::from(2);
    };
    let run = || -> Result<String, String> {
        let text = std::fs::read_to_string(csv).map_err(|e| format!("{csv}: {e}"))?;
        let (rows, note) = clean_runs(parse_csv(&text)?);
        let runs = Runs::new(rows);
        let (mut out, mut added, mut http) = (String::new(), String::new(), String::new());
        out.push_str(&note);
        report(&runs, &mut out, &mut added, &mut http);
        for (name, body) in [("added.tsv", added), ("http.tsv", http)] {
            std::fs::write(format!("{dir}/{name}"), body)
                .map_err(|e| format!("{dir}/{name}: {e}"))?;
        }
        Ok(out)
    };
    match run() {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peers-report: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "round,config,workload,ops,seconds,ns_per_op,batch_median_ns,ops_per_sec,p50_us,p99_us,errors,agent_cpu_s,nginx_cpu_s,audit_lost,loadavg1,loadavg5
1,none,open-close,100,1,1100,1000,100,-,-,-,-,-,0,1.0,1.0
1,floor,open-close,100,1,1300,1200,100,-,-,-,0.000,-,0,1.0,1.0
1,vigil,open-close,100,1,1500,1400,100,-,-,-,0.001,-,0,1.5,1.0
2,vigil,open-close,100,1,1500,1700,100,-,-,-,0.001,-,0,2.0,1.0
2,none,open-close,100,1,1100,1100,100,-,-,-,-,-,0,2.0,1.0
2,floor,open-close,100,1,1300,1200,100,-,-,-,0.000,-,0,2.0,1.0
";

    #[test]
    fn pairs_by_round_on_the_batch_median() {
        let runs = Runs::new(parse_csv(CSV).unwrap());
        let mut a = runs.added("open-close", "vigil");
        a.sort_by(f64::total_cmp);
        assert_eq!(a, vec![400.0, 600.0]);
        assert_eq!(runs.added("open-close", "floor"), vec![200.0, 100.0]);
        assert_eq!(runs.cpu_per_op_us("open-close", "vigil"), Some(10.0));
        assert_eq!(runs.cpu_per_op_us("open-close", "none"), None);
    }

    #[test]
    fn quantiles_interpolate() {
        let s = spread(vec![4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.med, s.p25, s.p75), (2.5, 1.75, 3.25));
        assert!(spread(vec![]).is_none());
    }

    #[test]
    fn verdicts() {
        let m = BTreeMap::from([
            ("floor", 100.0),
            ("vigil", 140.0),
            ("auditd", 5000.0),
            ("strace", 2000.0),
        ]);
        let v = verdict("x", &m);
        assert!(v.contains("≤ 1.5× floor: **met**"), "{v}");
        assert!(v.contains("below auditd: **met**"), "{v}");
        assert!(v.contains("≥ 20× below strace: **not met**"), "{v}");
    }

    #[test]
    fn runs_with_foreign_tracepoints_are_set_aside() {
        let header = "round,config,workload,ops,ns_per_op,foreign_bpf";
        let rows = |dirty: &[(u32, &str)]| {
            let body: String = (1..=4)
                .flat_map(|r| ["none", "vigil"].map(move |c| (r, c)))
                .map(|(r, c)| {
                    format!(
                        "{r},{c},exec,1,1,{}\n",
                        if dirty.contains(&(r, c)) { 74 } else { 0 }
                    )
                })
                .collect();
            parse_csv(&format!("{header}\n{body}")).unwrap()
        };
        let (kept, note) = clean_runs(rows(&[(2, "vigil")]));
        assert_eq!(kept.len(), 7);
        assert!(note.contains("1 of 8 runs: 1 set aside."), "{note}");
        // vigil would be left with 2 clean runs: all 4 are kept.
        let (kept, note) = clean_runs(rows(&[(1, "vigil"), (2, "vigil"), (3, "none")]));
        assert_eq!(kept.len(), 7);
        assert!(note.contains("1 set aside, 2 kept"), "{note}");
        assert_eq!(clean_runs(rows(&[])).1, "");
    }

    #[test]
    fn bad_csv_is_refused() {
        assert!(parse_csv("").is_err());
        assert!(parse_csv("a,b\n1,2\n").is_err());
        assert!(parse_csv("round,config,workload,ops,ns_per_op\n1,none\n").is_err());
    }
}
