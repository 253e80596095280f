//! HTTP/1.x start lines from the captured prefix of a message's first segment: enough to name
//! an exchange (method, target, status) without reassembling the stream. The capture can end
//! anywhere, so a request line cut short is still a request, marked as such.

/// The request methods an `http` event reports (RFC 9110 §9).
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

/// The first four bytes the kernel matches to capture a segment as HTTP. User space must use the
/// same list: a payload the kernel lets through is parsed, one it would not is ignored.
const PREFIXES: [&[u8; 4]; 10] = [
    b"GET ", b"HEAD", b"POST", b"PUT ", b"DELE", b"PATC", b"OPTI", b"CONN", b"TRAC", b"HTTP",
];

/// Longest request target kept: a longer one is cut and marked truncated, so that pending
/// requests stay small whatever a peer sends.
pub const MAX_PATH_BYTES: usize = 2048;

/// "HTTP/" digit "." digit.
const VERSION_LEN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (lossy UTF-8), at most [`MAX_PATH_BYTES`] bytes of it.
    pub path: String,
    /// The target was cut, by the capture or by [`MAX_PATH_BYTES`].
    pub path_truncated: bool,
    /// `HTTP/1.1` and the like; empty when the capture ends before it or the request has none
    /// (HTTP/0.9).
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub version: String,
    pub status: u16,
}

/// Whether a payload starts like an HTTP/1.x message by the kernel's 4-byte test: the cheap
/// filter in front of the parsers.
pub fn looks_like_http(buf: &[u8]) -> bool {
    buf.get(..4)
        .is_some_and(|head| PREFIXES.iter().any(|p| p[..] == *head))
}

/// Parses a request line (`METHOD SP target SP version CRLF`) from the start of `buf`.
///
/// `None` when the method is not one of the known ones or the line is malformed (an empty
/// target, a version that is not `HTTP/d.d`), so that binary data that happens to start with
/// `GET ` is not reported. A line that ends with the buffer is a cut capture: the target seen so
/// far with `path_truncated`, or the whole target with an empty version if the cut falls inside
/// the version.
pub fn parse_request(buf: &[u8]) -> Option<Request> {
    let space = buf.iter().take(8).position(|&b| b == b' ')?;
    let method = std::str::from_utf8(&buf[..space]).ok()?;
    if !METHODS.contains(&method) {
        return None;
    }
    let rest = &buf[space + 1..];
    let target_end = rest.iter().position(|&b| matches!(b, b' ' | b'\r' | b'\n'));
    let (target, mut path_truncated, version) = match target_end {
        None => (rest, true, &[][..]),
        Some(0) => return None,
        Some(end) if rest[end] == b' ' => {
            let after = &rest[end + 1..];
            let version = match after.iter().position(|&b| b == b'\r' || b == b'\n') {
                Some(eol) if is_version(&after[..eol]) => &after[..eol],
                None if is_version(after) => after,
                None if is_version_prefix(after) => &[][..],
                _ => return None,
            };
            (&rest[..end], false, version)
        }
        // HTTP/0.9: the target ends the line.
        Some(end) => (&rest[..end], false, &[][..]),
    };
    let kept = if target.len() > MAX_PATH_BYTES {
        path_truncated = true;
        &target[..MAX_PATH_BYTES]
    } else {
        target
    };
    Some(Request {
        method: method.to_owned(),
        path: String::from_utf8_lossy(kept).into_owned(),
        path_truncated,
        version: String::from_utf8_lossy(version).into_owned(),
    })
}

/// Parses a status line (`HTTP/1.0` or `HTTP/1.1`, SP, three digits) from the start of `buf`.
/// `None` for anything else, including other versions (HTTP/2 has no such line) and status
/// codes below 100.
pub fn parse_response(buf: &[u8]) -> Option<Response> {
    let version = buf.get(..VERSION_LEN)?;
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return None;
    }
    let rest = buf[VERSION_LEN..].strip_prefix(b" ")?;
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // "HTTP/1.1 2000" is not a status line; the reason phrase or the line end must follow.
    if !matches!(rest.get(3), None | Some(b' ' | b'\r' | b'\n')) {
        return None;
    }
    let status = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if status < 100 {
        return None;
    }
    Some(Response {
        version: String::from_utf8_lossy(version).into_owned(),
        status,
    })
}

/// `HTTP/` digit `.` digit.
fn is_version(v: &[u8]) -> bool {
    v.len() == VERSION_LEN && is_version_prefix(v)
}

/// Whether `v` is a (possibly empty or complete) start of `HTTP/d.d`.
fn is_version_prefix(v: &[u8]) -> bool {
    v.len() <= VERSION_LEN
        && v.iter().zip(b"HTTP/0.0").all(|(&b, &pattern)| {
            if pattern == b'0' {
                b.is_ascii_digit()
            } else {
                b == pattern
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, truncated: bool, version: &str) -> Option<Request> {
        Some(Request {
            method: method.into(),
            path: path.into(),
            path_truncated: truncated,
            version: version.into(),
        })
    }

    #[test]
    fn every_method() {
        for m in METHODS {
            let line = format!("{m} /x HTTP/1.1\r\nHost: a\r\n\r\n");
            assert_eq!(
                parse_request(line.as_bytes()),
                req(m, "/x", false, "HTTP/1.1")
            );
            assert!(looks_like_http(line.as_bytes()), "{m}");
        }
    }

    #[test]
    fn full_request_line() {
        assert_eq!(
            parse_request(b"POST /api/v1/items?id=3&q=a%20b HTTP/1.0\r\n\r\n"),
            req("POST", "/api/v1/items?id=3&q=a%20b", false, "HTTP/1.0")
        );
        assert_eq!(
            parse_request(b"CONNECT api.test:443 HTTP/1.1\r\n"),
            req("CONNECT", "api.test:443", false, "HTTP/1.1")
        );
        assert_eq!(
            parse_request(b"OPTIONS * HTTP/1.1\n"),
            req("OPTIONS", "*", false, "HTTP/1.1")
        );
    }

    #[test]
    fn cut_inside_the_target() {
        assert_eq!(
            parse_request(b"GET /very/long/pa"),
            req("GET", "/very/long/pa", true, "")
        );
        assert_eq!(parse_request(b"GET "), req("GET", "", true, ""));
    }

    #[test]
    fn cut_inside_or_after_the_version() {
        assert_eq!(parse_request(b"GET /a "), req("GET", "/a", false, ""));
        assert_eq!(parse_request(b"GET /a HTTP/1"), req("GET", "/a", false, ""));
        assert_eq!(
            parse_request(b"GET /a HTTP/1.1"),
            req("GET", "/a", false, "HTTP/1.1")
        );
        assert_eq!(
            parse_request(b"GET /a HTTP/1.1\r"),
            req("GET", "/a", false, "HTTP/1.1")
        );
    }

    #[test]
    fn http_0_9_has_no_version() {
        assert_eq!(
            parse_request(b"GET /old\r\n"),
            req("GET", "/old", false, "")
        );
    }

    #[test]
    fn malformed_requests() {
        for bad in [
            &b""[..],
            b"GET",
            b"GETX / HTTP/1.1\r\n",
            b"get / HTTP/1.1\r\n",
            b"BREW /pot HTTP/1.1\r\n",
            b"GET  HTTP/1.1\r\n",
            b"GET \r\n",
            b"GET / FOO/1.1\r\n",
            b"GET /a b HTTP/1.1\r\n",
            b"GET / HTTP/1.1x\r\n",
            b"GET / HTTP/1.10",
            b"GET / HTTP/a",
            b"\xffGET / HTTP/1.1\r\n",
            b"HTTP/1.1 200 OK\r\n",
        ] {
            assert_eq!(parse_request(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn non_utf8_target_is_lossy() {
        let r = parse_request(b"GET /caf\xe9?\x00 HTTP/1.1\r\n").unwrap();
        assert_eq!(r.path, "/caf\u{fffd}?\0");
        assert!(!r.path_truncated);
    }

    #[test]
    fn long_target_is_capped() {
        let path = format!("/{}", "a".repeat(5000));
        let line = format!("GET {path} HTTP/1.1\r\n");
        let r = parse_request(line.as_bytes()).unwrap();
        assert_eq!(r.path.len(), MAX_PATH_BYTES);
        assert!(path.starts_with(&r.path));
        assert!(r.path_truncated);
        assert_eq!(r.version, "HTTP/1.1");
    }

    #[test]
    fn responses() {
        let ok = |v: &str, s| {
            Some(Response {
                version: v.into(),
                status: s,
            })
        };
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n"), ok("HTTP/1.1", 200));
        assert_eq!(
            parse_response(b"HTTP/1.0 404 Not Found"),
            ok("HTTP/1.0", 404)
        );
        assert_eq!(parse_response(b"HTTP/1.1 204\r\n"), ok("HTTP/1.1", 204));
        assert_eq!(parse_response(b"HTTP/1.1 503"), ok("HTTP/1.1", 503));
        assert_eq!(parse_response(b"HTTP/1.1 100\n"), ok("HTTP/1.1", 100));
        assert_eq!(parse_response(b"HTTP/1.1 999 ?"), ok("HTTP/1.1", 999));
    }

    #[test]
    fn malformed_responses() {
        for bad in [
            &b""[..],
            b"HTTP/1.1",
            b"HTTP/1.1 ",
            b"HTTP/1.1 20",
            b"HTTP/1.1 2000",
            b"HTTP/1.1 2x0 OK",
            b"HTTP/1.1 099 Low",
            b"HTTP/2 200",
            b"HTTP/2.0 200 OK",
            b"HTTP/1.1  200 OK",
            b"http/1.1 200 OK",
            b"HTTP/1.1\t200 OK",
            b"GET / HTTP/1.1\r\n",
        ] {
            assert_eq!(
                parse_response(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn kernel_prefixes() {
        for p in [
            "GET ", "HEAD", "POST", "PUT ", "DELE", "PATC", "OPTI", "CONN", "TRAC", "HTTP",
        ] {
            assert!(looks_like_http(format!("{p}...").as_bytes()), "{p}");
            assert!(looks_like_http(p.as_bytes()), "{p}");
        }
        for p in [
            &b""[..],
            b"GET",
            b"GETS",
            b"PUTS",
            b"get ",
            b"\x16\x03\x01\x02",
            b"PRI * HTTP/2.0",
            b"SSH-2.0",
        ] {
            assert!(!looks_like_http(p), "{}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn every_prefix_of_a_request_is_handled() {
        let line = b"PATCH /items/7 HTTP/1.1\r\nHost: a\r\n\r\n";
        for n in 0..line.len() {
            let cut = &line[..n];
            match parse_request(cut) {
                None => assert!(n < 6, "{n}"),
                Some(r) => {
                    assert_eq!(r.method, "PATCH");
                    assert!("/items/7".starts_with(&r.path));
                    assert_eq!(r.path_truncated, n < 15, "{n}");
                    assert!(r.version.is_empty() || r.version == "HTTP/1.1");
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = crate::dns::tests::Rng::new(7);
        let alphabet = b"GETPOSHD /\r\n1.0HTP\xff";
        for _ in 0..50_000 {
            let len = rng.below(24);
            let buf: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            if let Some(r) = parse_request(&buf) {
                assert!(looks_like_http(&buf));
                assert!(r.path.len() <= buf.len() * 3);
            }
            if parse_response(&buf).is_some() {
                assert!(looks_like_http(&buf));
            }
        }
    }
}
