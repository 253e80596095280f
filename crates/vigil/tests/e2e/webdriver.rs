//! A minimal W3C WebDriver client: JSON over HTTP/1.1 on a std `TcpStream`, one connection per
//! command, driving Debian's headless chromium through Debian's chromedriver. Nothing but Debian
//! packages and this file in the test path (no Node.js, no browser-automation crate).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The key under which W3C WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Flags that work as root in a container or VM without a display, GPU or user namespaces;
/// the rest keep chromium from calling home during a test.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
];

/// A chromedriver process with one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Browser {
    /// Starts chromedriver and a headless chromium session. Without chromium or chromedriver
    /// installed, a run outside CI skips (`None`) and a CI run fails.
    pub fn start() -> Option<Browser> {
        let found = (which("chromedriver"), which("chromium"));
        let (Some(driver_bin), Some(chromium)) = found else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI=true and no chromium/chromedriver on PATH: install the Debian packages \
                 chromium and chromium-driver"
            );
            eprintln!("skipping: chromium and chromedriver are not installed");
            return None;
        };
        // A free port for chromedriver: taken from the kernel, then released for it.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver_bin.display()));
        let profile = tempfile::tempdir().unwrap();
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        b.wait(Duration::from_secs(20), "chromedriver to be ready", |b| {
            let v = b.request("GET", "/status", None).ok()?;
            v["ready"].as_bool().filter(|r| *r)
        });
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", b._profile.path().display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let v = b
            .request("POST", "/session", Some(&caps))
            .unwrap_or_else(|e| panic!("new session: {e}"));
        b.session = v["sessionId"].as_str().expect("sessionId").to_string();
        Some(b)
    }

    /// One command: `Ok(value)` on success, `Err("error: message")` for a WebDriver error.
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .map_err(|e| e.to_string())?;
        // chromedriver keeps the connection open even when asked to close it: read exactly
        // Content-Length bytes after the headers.
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        let (head, split) = loop {
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break (
                    String::from_utf8_lossy(&raw[..i]).to_ascii_lowercase(),
                    i + 4,
                );
            }
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("{method} {path}: connection closed in the headers"));
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("{method} {path}: no Content-Length in {head}"))?;
        while raw.len() < split + len {
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("{method} {path}: connection closed in the body"));
            }
            raw.extend_from_slice(&buf[..n]);
        }
        let payload = &raw[split..split + len];
        let v: Value = serde_json::from_slice(payload)
            .map_err(|e| format!("{method} {path}: {e}: {}", String::from_utf8_lossy(payload)))?;
        let value = v["value"].clone();
        if head.starts_with("http/1.1 200") {
            Ok(value)
        } else {
            Err(format!("{}: {}", value["error"], value["message"]))
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.request(method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page and returns its
    /// result. Reading the DOM this way returns data, not element references that a redraw
    /// could make stale.
    pub fn script(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Clicks the first element matching `css`, as a user would (the browser's own pointer
    /// events). Retried while the page replaces that element between finding and clicking.
    pub fn click(&self, css: &str) {
        let path = format!("/session/{}", self.session);
        self.wait(Duration::from_secs(10), &format!("a click on {css}"), |b| {
            let found = b
                .request(
                    "POST",
                    &format!("{path}/elements"),
                    Some(&json!({"using": "css selector", "value": css})),
                )
                .ok()?;
            let id = found.as_array()?.first()?[ELEMENT].as_str()?.to_string();
            b.request(
                "POST",
                &format!("{path}/element/{id}/click"),
                Some(&json!({})),
            )
            .ok()
        });
    }

    /// The page as PNG.
    pub fn screenshot(&self, to: &Path) {
        use base64::Engine;
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 PNG"))
            .unwrap();
        std::fs::write(to, png).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    }

    /// Polls `f` every 200 ms until it returns `Some`; panics after `timeout`.
    pub fn wait<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Closes chromium; chromedriver alone would leave it running.
            let _ = self.request("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
