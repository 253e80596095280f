//! DNS messages (RFC 1035) as captured on a socket: the header, the first question and the
//! answer records, which is what a `dns` event reports and what the name cache learns from.
//!
//! The bytes come from the network, so nothing in them is trusted: every read is bounds checked,
//! compression pointers are followed a bounded number of times, names are capped at the 255
//! bytes the protocol allows and at most [`MAX_ANSWERS`] records are decoded. A parse therefore
//! costs O(buffer length) plus a constant per answer, whatever the input.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Answer records decoded per message: an event does not need more, and it bounds the work.
pub const MAX_ANSWERS: usize = 32;

const HEADER_LEN: usize = 12;
/// Longest name on the wire, length bytes and the root label included (RFC 1035 §2.3.4).
const MAX_NAME_WIRE: usize = 255;
/// A legitimate name has at most 127 labels and so never needs more pointers than that; a name
/// that does is a pointer loop.
const MAX_JUMPS: usize = 127;
const CLASS_IN: u16 = 1;
const TYPE_A: u16 = 1;
const TYPE_NS: u16 = 2;
const TYPE_CNAME: u16 = 5;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;

/// A decoded message: what the events need, not a full RFC 1035 model (the authority and
/// additional sections are not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    /// The QR bit: a response rather than a query.
    pub response: bool,
    pub opcode: u8,
    /// The 4-bit header RCODE (an EDNS extended RCODE is not folded in).
    pub rcode: u8,
    /// The first question; `None` when the message carries none.
    pub question: Option<Question>,
    /// The first [`MAX_ANSWERS`] answer records.
    pub answers: Vec<Answer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    /// Lower case, no trailing dot, dig-style escapes (see [`parse`]); the root is `"."`.
    pub name: String,
    pub qtype: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Answer {
    /// The record's owner name, in the same form as [`Question::name`].
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    /// The decoded record data for the types an event shows; `None` for the others.
    pub data: Option<AnswerData>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnswerData {
    /// An `A` or `AAAA` record of class IN.
    Ip(IpAddr),
    /// A `CNAME`, `PTR` or `NS` target.
    Name(String),
}

/// Renders the value as the event's `data` string.
impl fmt::Display for AnswerData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerData::Ip(ip) => ip.fmt(f),
            AnswerData::Name(name) => f.write_str(name),
        }
    }
}

/// Why a message could not be decoded, and the byte offset (into the buffer passed in) of the
/// item that failed, so a capture can be inspected by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct Error {
    pub kind: ErrorKind,
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The buffer ends inside the named part of the message.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A label length byte with the top bits 01 or 10, which no current RFC defines.
    #[error("unsupported label type 0x{0:02x}")]
    BadLabel(u8),
    /// A compression pointer to an offset at or past the end of the buffer.
    #[error("compression pointer to offset {0} outside the message")]
    BadPointer(u16),
    /// More compression pointers in one name than a real name can need.
    #[error("compression pointer loop")]
    PointerLoop,
    /// A name longer than 255 bytes on the wire.
    #[error("name longer than 255 bytes")]
    NameTooLong,
    /// Record data whose length does not fit its type (an `A` record that is not 4 bytes, a
    /// `CNAME` whose name runs past its data).
    #[error("malformed {} record data of {len} bytes", type_name(*.rtype))]
    BadRdata { rtype: u16, len: u16 },
}

impl ErrorKind {
    /// What a capture cut short can produce: the message may have been fine on the wire.
    fn could_be_cut(self) -> bool {
        matches!(self, ErrorKind::Truncated(_) | ErrorKind::BadPointer(_))
    }
}

fn err(kind: ErrorKind, offset: usize) -> Error {
    Error { kind, offset }
}

/// Decodes a whole DNS message (as UDP carries it).
///
/// Names are lower-cased (DNS compares names case-insensitively, and 0x20-randomising resolvers
/// would otherwise make one name look like many), lose the trailing dot, and show bytes outside
/// printable ASCII as `\DDD` and the characters `. " ( ) ; \ @ $` inside a label with a
/// backslash, as dig prints them, so that no label can fake a dot or a control character.
pub fn parse(buf: &[u8]) -> Result<Message, Error> {
    parse_message(buf, false)
}

/// Decodes the start of a message whose tail may be missing (a capture shorter than the packet):
/// the header and the first question must be there; answers cut by the end of the buffer are
/// dropped with everything after them.
pub fn parse_prefix(buf: &[u8]) -> Result<Message, Error> {
    parse_message(buf, true)
}

/// Decodes a message as DNS over TCP sends it, behind a 2-byte length (RFC 1035 §4.2.2). Bytes
/// after the declared length (a next, pipelined message) are ignored; a buffer shorter than the
/// declared length is taken as a cut capture and decoded as [`parse_prefix`] does. Error offsets
/// count the length prefix.
pub fn parse_tcp(buf: &[u8]) -> Result<Message, Error> {
    let Some(prefix) = buf.get(..2) else {
        return Err(err(ErrorKind::Truncated("length prefix"), 0));
    };
    let declared = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
    let body = &buf[2..];
    let result = match body.get(..declared) {
        Some(msg) => parse_message(msg, false),
        None => parse_message(body, true),
    };
    result.map_err(|e| err(e.kind, e.offset + 2))
}

/// The mnemonic of a record type as events show it; `TYPE<n>` (RFC 3597) for the others.
pub fn type_name(t: u16) -> Cow<'static, str> {
    let name = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        41 => "OPT",
        65 => "HTTPS",
        255 => "ANY",
        _ => return Cow::Owned(format!("TYPE{t}")),
    };
    Cow::Borrowed(name)
}

/// The mnemonic of a response code as events show it; `RCODE<n>` for the others.
pub fn rcode_name(r: u8) -> Cow<'static, str> {
    let name = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => return Cow::Owned(format!("RCODE{r}")),
    };
    Cow::Borrowed(name)
}

fn parse_message(buf: &[u8], cut: bool) -> Result<Message, Error> {
    if buf.len() < HEADER_LEN {
        return Err(err(ErrorKind::Truncated("header"), 0));
    }
    let id = be16(buf, 0);
    let flags = be16(buf, 2);
    let qdcount = be16(buf, 4);
    let ancount = be16(buf, 6);

    let mut pos = HEADER_LEN;
    let mut question = None;
    for i in 0..qdcount {
        if i == 0 {
            let (name, end) = read_name(buf, pos)?;
            let qtype = read16(buf, end, "question")?;
            read16(buf, end + 2, "question")?; // QCLASS: IN in practice, not reported
            question = Some(Question { name, qtype });
            pos = end + 4;
        } else {
            // Only the first question is reported; the others are stepped over without decoding.
            let end = skip_name(buf, pos)?;
            read16(buf, end + 2, "question")?;
            pos = end + 4;
        }
    }

    let mut answers = Vec::with_capacity(usize::from(ancount).min(MAX_ANSWERS));
    for _ in 0..usize::from(ancount).min(MAX_ANSWERS) {
        match read_answer(buf, pos) {
            Ok((answer, end)) => {
                answers.push(answer);
                pos = end;
            }
            Err(e) if cut && e.kind.could_be_cut() => break,
            Err(e) => return Err(e),
        }
    }

    Ok(Message {
        id,
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        rcode: (flags & 0xf) as u8,
        question,
        answers,
    })
}

/// Decodes the resource record at `pos`; returns it and the offset just past it.
fn read_answer(buf: &[u8], pos: usize) -> Result<(Answer, usize), Error> {
    let (name, end) = read_name(buf, pos)?;
    let rtype = read16(buf, end, "answer")?;
    let class = read16(buf, end + 2, "answer")?;
    let ttl = read32(buf, end + 4, "answer")?;
    let rdlen = read16(buf, end + 8, "answer")?;
    let start = end + 10;
    let rdata = buf
        .get(start..start + usize::from(rdlen))
        .ok_or(err(ErrorKind::Truncated("record data"), start))?;
    let bad = err(ErrorKind::BadRdata { rtype, len: rdlen }, start);
    let data = match rtype {
        TYPE_A if class == CLASS_IN => {
            let octets: [u8; 4] = rdata.try_into().map_err(|_| bad)?;
            Some(AnswerData::Ip(IpAddr::V4(Ipv4Addr::from(octets))))
        }
        TYPE_AAAA if class == CLASS_IN => {
            let octets: [u8; 16] = rdata.try_into().map_err(|_| bad)?;
            Some(AnswerData::Ip(IpAddr::V6(Ipv6Addr::from(octets))))
        }
        TYPE_CNAME | TYPE_PTR | TYPE_NS => {
            // The target may point anywhere earlier in the message, but must end inside the data.
            let (target, target_end) = read_name(buf, start)?;
            if target_end > start + rdata.len() {
                return Err(bad);
            }
            Some(AnswerData::Name(target))
        }
        _ => None,
    };
    let answer = Answer {
        name,
        rtype,
        ttl,
        data,
    };
    Ok((answer, start + rdata.len()))
}

/// Decodes the (possibly compressed) name at `start`; returns it in presentation form and the
/// offset just past its encoding at `start` (after the first pointer, if any).
fn read_name(buf: &[u8], start: usize) -> Result<(String, usize), Error> {
    let mut out = String::new();
    let mut pos = start;
    let mut resume = None;
    let mut jumps = 0;
    let mut wire = 0;
    loop {
        let len = *buf.get(pos).ok_or(err(ErrorKind::Truncated("name"), pos))?;
        match len & 0xc0 {
            0x00 => {
                let len = usize::from(len);
                wire += 1 + len;
                if wire > MAX_NAME_WIRE {
                    return Err(err(ErrorKind::NameTooLong, pos));
                }
                if len == 0 {
                    if out.is_empty() {
                        out.push('.');
                    }
                    return Ok((out, resume.unwrap_or(pos + 1)));
                }
                let label = buf
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(err(ErrorKind::Truncated("name"), pos))?;
                if !out.is_empty() {
                    out.push('.');
                }
                push_label(&mut out, label);
                pos += 1 + len;
            }
            0xc0 => {
                let low = *buf
                    .get(pos + 1)
                    .ok_or(err(ErrorKind::Truncated("name"), pos))?;
                let target = u16::from_be_bytes([len & 0x3f, low]);
                if usize::from(target) >= buf.len() {
                    return Err(err(ErrorKind::BadPointer(target), pos));
                }
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return Err(err(ErrorKind::PointerLoop, pos));
                }
                resume.get_or_insert(pos + 2);
                pos = usize::from(target);
            }
            _ => return Err(err(ErrorKind::BadLabel(len), pos)),
        }
    }
}

/// Steps over the name at `start` without following pointers; returns the offset past it.
fn skip_name(buf: &[u8], start: usize) -> Result<usize, Error> {
    let mut pos = start;
    loop {
        let len = *buf.get(pos).ok_or(err(ErrorKind::Truncated("name"), pos))?;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(pos + 1),
            0x00 => {
                let next = pos + 1 + usize::from(len);
                if next - start > MAX_NAME_WIRE {
                    return Err(err(ErrorKind::NameTooLong, pos));
                }
                if next > buf.len() {
                    return Err(err(ErrorKind::Truncated("name"), pos));
                }
                pos = next;
            }
            0xc0 => {
                buf.get(pos + 1)
                    .ok_or(err(ErrorKind::Truncated("name"), pos))?;
                return Ok(pos + 2);
            }
            _ => return Err(err(ErrorKind::BadLabel(len), pos)),
        }
    }
}

fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'"' | b'(' | b')' | b';' | b'\\' | b'@' | b'$' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x21..=0x7e => out.push(char::from(b.to_ascii_lowercase())),
            _ => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
}

/// Reads a big-endian u16 the caller has already bounds checked.
fn be16(buf: &[u8], pos: usize) -> u16 {
    u16::from_be_bytes([buf[pos], buf[pos + 1]])
}

fn read16(buf: &[u8], pos: usize, what: &'static str) -> Result<u16, Error> {
    match buf.get(pos..pos + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(err(ErrorKind::Truncated(what), pos)),
    }
}

fn read32(buf: &[u8], pos: usize, what: &'static str) -> Result<u32, Error> {
    match buf.get(pos..pos + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(err(ErrorKind::Truncated(what), pos)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes a dotted name as uncompressed labels.
    pub(crate) fn wire_name(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in name.split('.').filter(|l| !l.is_empty()) {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    pub(crate) fn header(id: u16, flags: u16, qd: u16, an: u16) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [id, flags, qd, an, 0, 0] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out
    }

    /// A query for `name` of type `qtype`, class IN, recursion desired.
    pub(crate) fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut out = header(id, 0x0100, 1, 0);
        out.extend(wire_name(name));
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out
    }

    /// Appends a record header (type, class IN, ttl) and the data with its length.
    fn record(out: &mut Vec<u8>, rtype: u16, ttl: u32, data: &[u8]) {
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    }

    /// A NOERROR response for `name` A with one A answer (owner compressed to the question).
    pub(crate) fn a_response(id: u16, name: &str, ip: [u8; 4], ttl: u32) -> Vec<u8> {
        let mut out = header(id, 0x8180, 1, 1);
        out.extend(wire_name(name));
        out.extend_from_slice(&[0, 1, 0, 1]);
        out.extend_from_slice(&[0xc0, 12]);
        record(&mut out, TYPE_A, ttl, &ip);
        out
    }

    /// `www.Example.TEST` A: CNAME -> edge.example.test, CNAME -> cdn.test, then A and AAAA for
    /// cdn.test, every later name compressed against an earlier one.
    pub(crate) fn cname_chain_response() -> Vec<u8> {
        let mut out = header(0xbeef, 0x8180, 1, 4);
        out.extend(wire_name("www.Example.TEST")); // at 12; "example" at 16
        out.extend_from_slice(&[0, 1, 0, 1]);
        // 1: www.example.test CNAME edge.<ptr 16>
        out.extend_from_slice(&[0xc0, 12]);
        let mut target = vec![4];
        target.extend_from_slice(b"edge");
        target.extend_from_slice(&[0xc0, 16]);
        let edge_at = out.len() + 10;
        record(&mut out, TYPE_CNAME, 300, &target);
        // 2: <ptr edge> CNAME cdn.<ptr to "test" at 24>
        out.extend_from_slice(&[0xc0, edge_at as u8]);
        let mut target = vec![3];
        target.extend_from_slice(b"cdn");
        target.extend_from_slice(&[0xc0, 24]);
        let cdn_at = out.len() + 10;
        record(&mut out, TYPE_CNAME, 300, &target);
        // 3, 4: <ptr cdn> A, AAAA
        out.extend_from_slice(&[0xc0, cdn_at as u8]);
        record(&mut out, TYPE_A, 60, &[10, 1, 2, 3]);
        out.extend_from_slice(&[0xc0, cdn_at as u8]);
        let v6: Ipv6Addr = "2001:db8::7".parse().unwrap();
        record(&mut out, TYPE_AAAA, 30, &v6.octets());
        out
    }

    fn kind(r: Result<Message, Error>) -> ErrorKind {
        r.unwrap_err().kind
    }

    #[test]
    fn query_for_api_test_a() {
        let buf = query(0x1234, "api.test", 1);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
            3, b'a', b'p', b'i', 4, b't', b'e', b's', b't', 0,
            0, 1, 0, 1,
        ];
        assert_eq!(buf, expected);
        let m = parse(&buf).unwrap();
        assert_eq!(m.id, 0x1234);
        assert!(!m.response);
        assert_eq!((m.opcode, m.rcode), (0, 0));
        let q = m.question.unwrap();
        assert_eq!(q.name, "api.test");
        assert_eq!(q.qtype, 1);
        assert!(m.answers.is_empty());
    }

    #[test]
    fn cname_chain_with_compression() {
        let m = parse(&cname_chain_response()).unwrap();
        assert!(m.response);
        assert_eq!(m.id, 0xbeef);
        assert_eq!(m.rcode, 0);
        assert_eq!(m.question.unwrap().name, "www.example.test");
        let a = &m.answers;
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].name, "www.example.test");
        assert_eq!(a[0].rtype, TYPE_CNAME);
        assert_eq!(a[0].ttl, 300);
        assert_eq!(
            a[0].data,
            Some(AnswerData::Name("edge.example.test".into()))
        );
        assert_eq!(a[1].name, "edge.example.test");
        assert_eq!(a[1].data, Some(AnswerData::Name("cdn.test".into())));
        assert_eq!(a[2].name, "cdn.test");
        assert_eq!(a[2].rtype, TYPE_A);
        assert_eq!(a[2].ttl, 60);
        assert_eq!(a[2].data, Some(AnswerData::Ip("10.1.2.3".parse().unwrap())));
        assert_eq!(a[3].rtype, TYPE_AAAA);
        assert_eq!(
            a[3].data,
            Some(AnswerData::Ip("2001:db8::7".parse().unwrap()))
        );
        assert_eq!(a[3].data.as_ref().unwrap().to_string(), "2001:db8::7");
        assert_eq!(a[1].data.as_ref().unwrap().to_string(), "cdn.test");
    }

    #[test]
    fn nxdomain() {
        let mut buf = query(7, "nope.test", 28);
        buf[2] = 0x81;
        buf[3] = 0x83;
        let m = parse(&buf).unwrap();
        assert!(m.response);
        assert_eq!(m.rcode, 3);
        assert_eq!(rcode_name(m.rcode), "NXDOMAIN");
        assert_eq!(m.question.unwrap().qtype, 28);
        assert!(m.answers.is_empty());
    }

    #[test]
    fn opcode_and_flags() {
        // QR=0, opcode 5 (UPDATE), rcode bits ignored in meaning but reported.
        let mut buf = query(1, "zone.test", 6);
        buf[2] = 5 << 3;
        buf[3] = 0x0f;
        let m = parse(&buf).unwrap();
        assert!(!m.response);
        assert_eq!(m.opcode, 5);
        assert_eq!(m.rcode, 15);
    }

    #[test]
    fn pointer_to_itself_is_a_loop() {
        let mut buf = header(1, 0, 1, 0);
        buf.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(
            parse(&buf).unwrap_err(),
            Error {
                kind: ErrorKind::PointerLoop,
                offset: 12
            }
        );
    }

    #[test]
    fn pointers_to_each_other_are_a_loop() {
        let mut buf = header(1, 0, 1, 0);
        buf.extend_from_slice(&[0xc0, 14, 0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(kind(parse(&buf)), ErrorKind::PointerLoop);
    }

    #[test]
    fn loop_through_a_label_hits_the_length_cap() {
        // "a" then a pointer back to "a": the name grows on every turn.
        let mut buf = header(1, 0, 1, 0);
        buf.extend_from_slice(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(kind(parse(&buf)), ErrorKind::NameTooLong);
    }

    #[test]
    fn pointer_outside_the_message() {
        let mut buf = header(1, 0, 1, 0);
        buf.extend_from_slice(&[0xc1, 0x00, 0, 1, 0, 1]);
        assert_eq!(
            parse(&buf).unwrap_err(),
            Error {
                kind: ErrorKind::BadPointer(256),
                offset: 12
            }
        );
    }

    #[test]
    fn reserved_label_types() {
        for b in [0x40u8, 0x80] {
            let mut buf = header(1, 0, 1, 0);
            buf.extend_from_slice(&[b, 0, 0, 1, 0, 1]);
            assert_eq!(kind(parse(&buf)), ErrorKind::BadLabel(b));
        }
    }

    #[test]
    fn name_length_limit() {
        // Four 62-byte labels and the root take 4 * 63 + 1 = 253 bytes on the wire; a 1-byte label
        // more makes 255, the limit; a 2-byte label makes 256, caught at the root byte.
        let long = vec!["x".repeat(62); 4].join(".");
        let ok = format!("{long}.y");
        let m = parse(&query(1, &ok, 1)).unwrap();
        assert_eq!(m.question.unwrap().name, ok);
        let too_long = format!("{long}.yz");
        assert_eq!(
            parse(&query(1, &too_long, 1)).unwrap_err(),
            Error {
                kind: ErrorKind::NameTooLong,
                offset: 12 + 4 * 63 + 3
            }
        );
    }

    #[test]
    fn label_bytes_are_escaped_like_dig() {
        let mut buf = header(1, 0, 1, 0);
        buf.extend_from_slice(&[9, b'A', b'.', b'b', b' ', 0xff, b'\\', b'"', 0, b'Z']);
        buf.extend_from_slice(&[4, b't', b'E', b's', b'T', 0, 0, 1, 0, 1]);
        let m = parse(&buf).unwrap();
        assert_eq!(m.question.unwrap().name, r#"a\.b\032\255\\\"\000z.test"#);
    }

    #[test]
    fn root_name() {
        let mut buf = header(1, 0, 1, 0);
        buf.extend_from_slice(&[0, 0, 2, 0, 1]);
        let q = parse(&buf).unwrap().question.unwrap();
        assert_eq!(q.name, ".");
        assert_eq!(type_name(q.qtype), "NS");
    }

    #[test]
    fn no_question() {
        let m = parse(&header(9, 0x8181, 0, 0)).unwrap();
        assert_eq!(m.question, None);
        assert_eq!(m.rcode, 1);
    }

    #[test]
    fn later_questions_are_stepped_over() {
        let mut buf = header(1, 0x8180, 2, 1);
        buf.extend(wire_name("first.test"));
        buf.extend_from_slice(&[0, 1, 0, 1]);
        buf.extend_from_slice(&[3, b't', b'w', b'o', 0xc0, 18, 0, 1, 0, 1]);
        buf.extend_from_slice(&[0xc0, 12]);
        record(&mut buf, TYPE_A, 5, &[192, 0, 2, 1]);
        let m = parse(&buf).unwrap();
        assert_eq!(m.question.unwrap().name, "first.test");
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].name, "first.test");
    }

    #[test]
    fn other_types_carry_no_data_and_are_stepped_over() {
        let mut buf = header(1, 0x8180, 1, 2);
        buf.extend(wire_name("mail.test"));
        buf.extend_from_slice(&[0, 15, 0, 1]);
        buf.extend_from_slice(&[0xc0, 12]);
        record(&mut buf, 15, 10, &[0, 10, 0xc0, 12]);
        buf.extend_from_slice(&[0xc0, 12]);
        record(&mut buf, TYPE_A, 10, &[192, 0, 2, 9]);
        let m = parse(&buf).unwrap();
        assert_eq!(m.answers.len(), 2);
        assert_eq!(m.answers[0].data, None);
        assert_eq!(type_name(m.answers[0].rtype), "MX");
        assert_eq!(
            m.answers[1].data,
            Some(AnswerData::Ip("192.0.2.9".parse().unwrap()))
        );
    }

    #[test]
    fn bad_address_length() {
        let mut buf = header(1, 0x8180, 1, 1);
        buf.extend(wire_name("a.test"));
        buf.extend_from_slice(&[0, 1, 0, 1]);
        buf.extend_from_slice(&[0xc0, 12]);
        let start = buf.len() + 10;
        record(&mut buf, TYPE_A, 10, &[1, 2, 3, 4, 5]);
        let e = parse(&buf).unwrap_err();
        assert_eq!(
            e,
            Error {
                kind: ErrorKind::BadRdata { rtype: 1, len: 5 },
                offset: start
            }
        );
        assert_eq!(
            e.to_string(),
            format!("malformed A record data of 5 bytes at byte {start}")
        );
    }

    #[test]
    fn cname_running_past_its_data() {
        let mut buf = header(1, 0x8180, 1, 1);
        buf.extend(wire_name("a.test"));
        buf.extend_from_slice(&[0, 5, 0, 1]);
        buf.extend_from_slice(&[0xc0, 12]);
        // rdlength 1, but the name inside takes 3 bytes.
        record(&mut buf, TYPE_CNAME, 10, &[1]);
        buf.extend_from_slice(&[b'b', 0]);
        assert_eq!(
            kind(parse(&buf)),
            ErrorKind::BadRdata {
                rtype: TYPE_CNAME,
                len: 1
            }
        );
    }

    #[test]
    fn addresses_of_other_classes_are_not_ips() {
        let mut buf = a_response(1, "version.bind", [1, 2, 3, 4], 0);
        let class_at = buf.len() - 4 - 2 - 4 - 2;
        buf[class_at + 1] = 3; // CHAOS
        let m = parse(&buf).unwrap();
        assert_eq!(m.answers[0].data, None);
    }

    #[test]
    fn answers_are_capped() {
        let mut buf = header(1, 0x8180, 1, 40);
        buf.extend(wire_name("many.test"));
        buf.extend_from_slice(&[0, 1, 0, 1]);
        for i in 0..40u8 {
            buf.extend_from_slice(&[0xc0, 12]);
            record(&mut buf, TYPE_A, 1, &[10, 0, 0, i]);
        }
        let m = parse(&buf).unwrap();
        assert_eq!(m.answers.len(), MAX_ANSWERS);
        assert_eq!(
            m.answers[31].data,
            Some(AnswerData::Ip("10.0.0.31".parse().unwrap()))
        );
    }

    #[test]
    fn every_truncation_is_an_error_and_prefix_parses_what_is_there() {
        let full = cname_chain_response();
        let all = parse(&full).unwrap().answers;
        let question_end = 12 + wire_name("www.example.test").len() + 4;
        for n in 0..full.len() {
            let cut = &full[..n];
            assert!(parse(cut).is_err(), "prefix of {n} bytes parsed");
            match parse_prefix(cut) {
                Ok(m) => {
                    assert!(n >= question_end);
                    assert_eq!(m.answers[..], all[..m.answers.len()]);
                }
                Err(e) => {
                    assert!(n < question_end, "{n}: {e}");
                    assert!(matches!(e.kind, ErrorKind::Truncated(_)));
                    assert!(e.offset <= n);
                }
            }
        }
        assert_eq!(parse_prefix(&full).unwrap().answers, all);
    }

    #[test]
    fn truncation_offsets_say_where() {
        assert_eq!(
            parse(&[0; 5]).unwrap_err().to_string(),
            "truncated header at byte 0"
        );
        let buf = query(1, "api.test", 1);
        assert_eq!(
            parse(&buf[..buf.len() - 1]).unwrap_err(),
            Error {
                kind: ErrorKind::Truncated("question"),
                offset: buf.len() - 2
            }
        );
        assert_eq!(
            parse(&buf[..15]).unwrap_err(),
            Error {
                kind: ErrorKind::Truncated("name"),
                offset: 12
            }
        );
    }

    #[test]
    fn garbage_in_a_cut_capture_is_still_an_error() {
        let mut buf = a_response(1, "a.test", [1, 2, 3, 4], 1);
        let owner = 12 + wire_name("a.test").len() + 4;
        buf[owner] = 0x80;
        assert_eq!(kind(parse_prefix(&buf)), ErrorKind::BadLabel(0x80));
    }

    #[test]
    fn tcp_length_prefix() {
        let msg = a_response(3, "api.test", [10, 0, 0, 1], 60);
        let mut buf = (msg.len() as u16).to_be_bytes().to_vec();
        buf.extend_from_slice(&msg);
        let m = parse_tcp(&buf).unwrap();
        assert_eq!(m, parse(&msg).unwrap());
        // A following message in the same segment is ignored.
        buf.extend_from_slice(&[0, 12, 1, 2, 3]);
        assert_eq!(parse_tcp(&buf).unwrap(), m);
    }

    #[test]
    fn tcp_short_capture_parses_what_is_there() {
        let msg = cname_chain_response();
        let mut buf = (msg.len() as u16).to_be_bytes().to_vec();
        buf.extend_from_slice(&msg[..msg.len() - 5]);
        let m = parse_tcp(&buf).unwrap();
        assert_eq!(m.answers.len(), 3);
        assert_eq!(m.question.unwrap().name, "www.example.test");
    }

    #[test]
    fn tcp_errors() {
        assert_eq!(
            parse_tcp(&[0]).unwrap_err(),
            Error {
                kind: ErrorKind::Truncated("length prefix"),
                offset: 0
            }
        );
        assert_eq!(
            parse_tcp(&[0, 0]).unwrap_err(),
            Error {
                kind: ErrorKind::Truncated("header"),
                offset: 2
            }
        );
        // Offsets count the prefix: a loop at message offset 12 is at byte 14.
        let mut msg = header(1, 0, 1, 0);
        msg.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let mut buf = (msg.len() as u16).to_be_bytes().to_vec();
        buf.extend_from_slice(&msg);
        assert_eq!(
            parse_tcp(&buf).unwrap_err(),
            Error {
                kind: ErrorKind::PointerLoop,
                offset: 14
            }
        );
        // A declared length shorter than the header.
        assert_eq!(
            kind(parse_tcp(&[0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
            ErrorKind::Truncated("header")
        );
    }

    #[test]
    fn names_of_types_and_rcodes() {
        let types = [
            (1, "A"),
            (2, "NS"),
            (5, "CNAME"),
            (6, "SOA"),
            (12, "PTR"),
            (15, "MX"),
            (16, "TXT"),
            (28, "AAAA"),
            (33, "SRV"),
            (41, "OPT"),
            (65, "HTTPS"),
            (255, "ANY"),
            (64, "TYPE64"),
            (0, "TYPE0"),
            (65535, "TYPE65535"),
        ];
        for (t, name) in types {
            assert_eq!(type_name(t), name);
        }
        let rcodes = [
            (0, "NOERROR"),
            (1, "FORMERR"),
            (2, "SERVFAIL"),
            (3, "NXDOMAIN"),
            (4, "NOTIMP"),
            (5, "REFUSED"),
            (9, "RCODE9"),
        ];
        for (r, name) in rcodes {
            assert_eq!(rcode_name(r), name);
        }
    }

    /// A small deterministic generator: the tests must not depend on a crate or on luck.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn mutated_messages_never_panic() {
        let seeds = [
            cname_chain_response(),
            query(1, "api.test", 1),
            a_response(2, "x.test", [1, 1, 1, 1], 1),
        ];
        let mut rng = Rng::new(0x5eed);
        for _ in 0..20_000 {
            let mut buf = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(4) {
                let i = rng.below(buf.len());
                match rng.below(3) {
                    0 => buf[i] = rng.next() as u8,
                    1 => buf[i] = 0xc0 | (rng.next() as u8 & 1),
                    _ => buf.truncate(i),
                }
                if buf.is_empty() {
                    break;
                }
            }
            for m in [parse(&buf), parse_prefix(&buf), parse_tcp(&buf)]
                .into_iter()
                .flatten()
            {
                assert!(m.answers.len() <= MAX_ANSWERS);
                for a in &m.answers {
                    assert!(a.name.len() <= 4 * MAX_NAME_WIRE);
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng::new(42);
        for _ in 0..20_000 {
            let len = rng.below(80);
            let buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = parse(&buf);
            let _ = parse_prefix(&buf);
            let _ = parse_tcp(&buf);
        }
    }
}
