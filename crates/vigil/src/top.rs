//! `vigil top`: a live per-workload table of a running agent (`/api/v1/workloads`), with its
//! recent alerts below. Full screen by default; `--once` prints one plain table for scripts.

mod alerts;
mod table;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::style::{Attribute, Color, Print, ResetColor, SetAttribute, SetForegroundColor};
use crossterm::terminal::{self, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute, queue};

use crate::cli::TopArgs;
use crate::client::Client;
use table::{Row, Sample};
use vigil_anomaly::Metric;

const PATH: &str = "/api/v1/workloads";

/// Alerts shown under the table.
const ALERTS_SHOWN: usize = 5;

/// What the rows are sorted by (always descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    Events,
    Rate,
    Syscalls,
    P99,
    Conns,
    Drops,
    Alerts,
}

impl SortKey {
    const ALL: [SortKey; 7] = [
        Self::Events,
        Self::Rate,
        Self::Syscalls,
        Self::P99,
        Self::Conns,
        Self::Drops,
        Self::Alerts,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Rate => "rate",
            Self::Syscalls => "syscalls",
            Self::P99 => "p99",
            Self::Conns => "conns",
            Self::Drops => "drops",
            Self::Alerts => "alerts",
        }
    }

    /// The key that sorts by this column in the full-screen view.
    fn letter(self) -> char {
        match self {
            Self::Events => 'e',
            Self::Rate => 'r',
            Self::Syscalls => 'y',
            Self::P99 => 'p',
            Self::Conns => 'c',
            Self::Drops => 'd',
            Self::Alerts => 'a',
        }
    }
}

/// `--metric`: a latency metric by its name in `/api/v1/workloads` (and in alerts and metrics).
pub fn parse_metric(s: &str) -> Result<Metric, String> {
    Metric::ALL
        .into_iter()
        .find(|m| m.as_str() == s)
        .ok_or_else(|| {
            let known: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
            format!("unknown latency metric `{s}` (known: {})", known.join(", "))
        })
}

/// The element `step` places after `cur` in `all`, wrapping around.
fn cycle<T: Copy + PartialEq>(all: &[T], cur: T, step: isize) -> T {
    let i = all.iter().position(|x| *x == cur).unwrap_or(0) as isize;
    all[(i + step).rem_euclid(all.len() as isize) as usize]
}

pub fn top(args: TopArgs) -> Result<()> {
    let client = Client::new(args.api, args.token.clone());
    if args.once {
        return once(&client, &args);
    }
    if !std::io::stdout().is_terminal() {
        bail!("vigil top needs a terminal; use --once for a plain-text table");
    }
    live(client, &args)
}

fn fetch(client: &Client) -> Result<Sample> {
    let body = client.get(PATH)?;
    let data = serde_json::from_str(&body)
        .with_context(|| format!("the agent's {PATH} answer is not what this vigil expects"))?;
    Ok(Sample {
        at: Instant::now(),
        data,
    })
}

/// Two samples `--interval` apart (rates need both), one table, the recent alerts.
fn once(client: &Client, args: &TopArgs) -> Result<()> {
    let first = fetch(client)?;
    std::thread::sleep(Duration::from_secs(args.interval));
    let second = fetch(client)?;
    let mut rows = table::rows(Some(&first), &second);
    table::sort(&mut rows, args.sort, args.metric);
    let (header, lines) = table::render(&rows, args.sort, args.metric);
    let recent = alerts::recent(client, ALERTS_SHOWN)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} workloads, rates over {} s, latency {} (last {} s window)",
        rows.len(),
        args.interval,
        args.metric.as_str(),
        second.data.window_secs
    )?;
    writeln!(out, "{header}")?;
    for l in lines {
        writeln!(out, "{l}")?;
    }
    writeln!(out, "\nRECENT ALERTS")?;
    for l in recent {
        writeln!(out, "{l}")?;
    }
    Ok(())
}

/// The full-screen view's state: what is shown and how.
struct View {
    sort: SortKey,
    metric: Metric,
    prev: Option<Sample>,
    rows: Vec<Row>,
    window_secs: Option<u64>,
    /// When the last sample arrived, or why the last fetch failed; `None` before the first.
    status: Option<Result<SystemTime, String>>,
}

impl View {
    fn update(&mut self, got: Result<Sample, String>) {
        match got {
            Ok(s) => {
                self.rows = table::rows(self.prev.as_ref(), &s);
                self.window_secs = Some(s.data.window_secs);
                self.prev = Some(s);
                self.status = Some(Ok(SystemTime::now()));
            }
            // The last table stays up (marked stale by the error line) until the agent answers.
            Err(e) => self.status = Some(Err(e)),
        }
    }

    /// Applies a key; false means quit.
    fn key(&mut self, k: KeyEvent) -> bool {
        match k.code {
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => return false,
            KeyCode::Char('q') | KeyCode::Esc => return false,
            KeyCode::Char('s') => self.sort = cycle(&SortKey::ALL, self.sort, 1),
            KeyCode::Char('S') => self.sort = cycle(&SortKey::ALL, self.sort, -1),
            KeyCode::Char('m') => self.metric = cycle(&Metric::ALL, self.metric, 1),
            KeyCode::Char('M') => self.metric = cycle(&Metric::ALL, self.metric, -1),
            KeyCode::Char(c) => {
                if let Some(k) = SortKey::ALL.into_iter().find(|k| k.letter() == c) {
                    self.sort = k;
                }
            }
            _ => {}
        }
        true
    }
}

/// Raw mode and the alternate screen while alive; restored on drop and, through the panic hook
/// installed by `enter`, before a panic message is printed (so it lands on the real screen).
struct Screen;

impl Screen {
    fn enter() -> Result<Screen> {
        terminal::enable_raw_mode().context("putting the terminal in raw mode")?;
        let screen = Screen;
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            Screen::restore();
            prev(info);
        }));
        execute!(std::io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        Ok(screen)
    }

    fn restore() {
        let _ = execute!(std::io::stdout(), cursor::Show, LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        Screen::restore();
    }
}

fn live(client: Client, args: &TopArgs) -> Result<()> {
    // SIGTERM and SIGHUP (a closed terminal) end the loop, so the terminal is restored.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let recent = alerts::follow(client.clone(), ALERTS_SHOWN);
    // Fetches run on their own thread so that a slow or unreachable agent never stalls keys.
    let (tx, rx) = mpsc::channel();
    let interval = Duration::from_secs(args.interval);
    std::thread::spawn(move || loop {
        if tx
            .send(fetch(&client).map_err(|e| format!("{e:#}")))
            .is_err()
        {
            return;
        }
        std::thread::sleep(interval);
    });

    let mut view = View {
        sort: args.sort,
        metric: args.metric,
        prev: None,
        rows: Vec::new(),
        window_secs: None,
        status: None,
    };
    let _screen = Screen::enter()?;
    let mut drawn_alerts = None;
    let mut dirty = true;
    while !stop.load(Ordering::Relaxed) {
        while let Ok(got) = rx.try_recv() {
            view.update(got);
            dirty = true;
        }
        if event::poll(Duration::from_millis(200))? {
            match event::read()? {
                Event::Key(k) if k.kind == KeyEventKind::Press => {
                    if !view.key(k) {
                        break;
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        let alerts = recent.lock().unwrap().clone();
        if dirty || drawn_alerts.as_ref() != Some(&alerts) {
            draw(&view, &alerts, args)?;
            drawn_alerts = Some(alerts);
            dirty = false;
        }
    }
    Ok(())
}

/// How a screen line is drawn.
#[derive(Clone, Copy)]
enum Style {
    Plain,
    Header,
    Error,
}

fn draw(view: &View, recent: &alerts::Recent, args: &TopArgs) -> Result<()> {
    let (w, h) = terminal::size()?;
    let (w, h) = (w as usize, h as usize);
    let mut rows = view.rows.clone();
    table::sort(&mut rows, view.sort, view.metric);
    let (header, lines) = table::render(&rows, view.sort, view.metric);

    let mut top = vec![
        (
            Style::Plain,
            format!(
                "vigil top  {}  {} workloads  sort: {}  latency: {} (last {} s window)  every {} s",
                args.api,
                rows.len(),
                view.sort.name(),
                view.metric.as_str(),
                view.window_secs.map_or("-".into(), |s| s.to_string()),
                args.interval
            ),
        ),
        match &view.status {
            None => (Style::Plain, format!("connecting to {}", args.api)),
            Some(Ok(at)) => (Style::Plain, format!("updated {}", hms(*at))),
            Some(Err(e)) => (
                Style::Error,
                format!("{e} (retrying every {} s)", args.interval),
            ),
        },
        (Style::Header, header),
    ];
    let mut bottom = vec![
        (Style::Plain, String::new()),
        (Style::Header, "RECENT ALERTS".into()),
    ];
    if let Some(e) = &recent.error {
        bottom.push((Style::Error, format!("alert stream: {e} (retrying)")));
    }
    bottom.extend(recent.lines.iter().map(|l| (Style::Plain, l.clone())));
    bottom.push((
        Style::Plain,
        "q quit  s/S next/previous sort  e r y p c d a sort by EVENTS EV/S SYSC/S P99 CONNS DROPS ALERTS  m/M latency metric".into(),
    ));
    let room = h.saturating_sub(top.len() + bottom.len());
    top.extend(lines.into_iter().take(room).map(|l| (Style::Plain, l)));
    let gap = h.saturating_sub(top.len() + bottom.len());
    let screen = top
        .into_iter()
        .chain(std::iter::repeat_n((Style::Plain, String::new()), gap))
        .chain(bottom)
        .take(h);

    let mut out = std::io::stdout().lock();
    for (y, (style, text)) in screen.enumerate() {
        let text: String = text.chars().take(w).collect();
        queue!(
            out,
            cursor::MoveTo(0, y as u16),
            Clear(ClearType::CurrentLine)
        )?;
        match style {
            Style::Plain => queue!(out, Print(text))?,
            Style::Header => queue!(
                out,
                SetAttribute(Attribute::Reverse),
                Print(text),
                SetAttribute(Attribute::Reset)
            )?,
            Style::Error => queue!(out, SetForegroundColor(Color::Red), Print(text), ResetColor)?,
        }
    }
    out.flush()?;
    Ok(())
}

/// `HH:MM:SS` (UTC, as the alert times are).
fn hms(t: SystemTime) -> String {
    let s = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn keys_change_sort_and_metric_and_quit() {
        let mut v = View {
            sort: SortKey::Rate,
            metric: Metric::Http,
            prev: None,
            rows: Vec::new(),
            window_secs: None,
            status: None,
        };
        assert!(v.key(press('s')));
        assert_eq!(v.sort, SortKey::Syscalls);
        v.key(press('S'));
        v.key(press('S'));
        assert_eq!(v.sort, SortKey::Events);
        v.key(press('S'));
        assert_eq!(v.sort, SortKey::Alerts, "wraps around");
        v.key(press('p'));
        assert_eq!(v.sort, SortKey::P99);
        v.key(press('m'));
        assert_eq!(v.metric, Metric::SyscallFile, "wraps around");
        v.key(press('M'));
        assert_eq!(v.metric, Metric::Http);
        assert!(!v.key(press('q')));
        assert!(!v.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(v.key(press('c')));
        assert_eq!(v.sort, SortKey::Conns);
    }

    #[test]
    fn every_sort_key_has_its_own_letter() {
        for k in SortKey::ALL {
            let same = SortKey::ALL.iter().filter(|o| o.letter() == k.letter());
            assert_eq!(same.count(), 1, "{}", k.name());
            assert!(!"qsSmM".contains(k.letter()));
        }
    }

    #[test]
    fn names_match_the_command_line() {
        use clap::ValueEnum;
        assert_eq!(parse_metric("tcp_rtt"), Ok(Metric::TcpRtt));
        assert!(parse_metric("rtt")
            .unwrap_err()
            .contains("known: syscall_file, "));
        for k in SortKey::ALL {
            assert_eq!(k.to_possible_value().unwrap().get_name(), k.name());
        }
        assert_eq!(
            hms(SystemTime::UNIX_EPOCH + Duration::from_secs(3723)),
            "01:02:03"
        );
    }
}
