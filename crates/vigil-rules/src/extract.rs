//! Reading field values out of one event. [`Ev`] is built once per event; values borrow from
//! the event where they can, and the few computed strings (cmdlines, resolved paths) are made
//! at most once per event, on first use.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};

use vigil_abi::*;
use vigil_enrich::Image;
use vigil_events::net::{ConnPhase, Role, Transport};
use vigil_events::{names, paths, Bytes, Event, File, Syscall};
use vigil_net::dns;

use crate::context::EvalContext;
use crate::evtype;
use crate::fields::{Either, End, Field, Level, NetAttr, ProcAttr};
use crate::value::Val;

/// `ECONNABORTED`: the result a connect aborted by its owner reports (the socket has no error).
const ECONNABORTED: i64 = 103;

/// The subject's image as this event describes it.
struct ImageView<'a> {
    exe: &'a [u8],
    args: &'a [Bytes],
    cwd: &'a [u8],
}

/// Ids of the subject; from the exec event itself or from the table.
#[derive(Clone, Copy)]
struct Ids {
    uid: u32,
    gid: u32,
    euid: u32,
    egid: u32,
    loginuid: Option<u32>,
    tty: u32,
}

/// One event being evaluated.
pub(crate) struct Ev<'a> {
    pub ctx: &'a EvalContext<'a>,
    pub type_id: usize,
    pid: u32,
    ppid: Option<u32>,
    comm: Option<&'a [u8]>,
    image: Option<ImageView<'a>>,
    ids: Option<Ids>,
    start_ns: Option<u64>,
    /// Cmdline of the subject and of its parent, the ones rules read most.
    cmdline: [OnceCell<Vec<u8>>; 2],
    args: OnceCell<Vec<u8>>,
    cwd: OnceCell<Vec<u8>>,
    path: OnceCell<Vec<u8>>,
    path2: OnceCell<Vec<u8>>,
    /// The socket of a network event.
    sock: Option<Sock>,
}

/// The socket a network event is about: its two ends and which one serves.
#[derive(Debug, Clone, Copy)]
struct Sock {
    local: SocketAddr,
    remote: SocketAddr,
    /// The local end is the server (accepted TCP sockets, DNS and HTTP servers).
    local_server: bool,
    proto: &'static str,
    /// `fd.connected`; unknown for UDP flows.
    connected: Option<bool>,
}

impl Sock {
    fn of(event: &Event) -> Option<Sock> {
        Some(match event {
            Event::Conn(c) => Sock {
                local: c.local,
                remote: c.remote,
                local_server: c.role == Role::Server,
                proto: "tcp",
                connected: Some(c.phase != ConnPhase::ConnectFailed),
            },
            // A flow does not record which side sent first: the side with the lower port is
            // taken as the server (53, 123, 443 against an ephemeral port), the remote on a tie.
            Event::Udp(u) => Sock {
                local: u.local,
                remote: u.remote,
                local_server: u.local.port() < u.remote.port(),
                proto: "udp",
                connected: None,
            },
            Event::Dns(d) => {
                let x = &d.exchange;
                let server = x.role == Role::Server;
                let (local, remote) = if server {
                    (x.server, x.client)
                } else {
                    (x.client, x.server)
                };
                let tcp = x.transport == Transport::Tcp;
                Sock {
                    local,
                    remote,
                    local_server: server,
                    proto: if tcp { "tcp" } else { "udp" },
                    connected: tcp.then_some(true),
                }
            }
            Event::Http(h) => Sock {
                local: h.exchange.local,
                remote: h.exchange.remote,
                local_server: h.exchange.role == Role::Server,
                proto: "tcp",
                connected: Some(true),
            },
            _ => return None,
        })
    }

    /// The address and port of one end; IPv4-mapped IPv6 as IPv4.
    fn end(&self, end: End) -> (IpAddr, u16) {
        let (server, client) = if self.local_server {
            (self.local, self.remote)
        } else {
            (self.remote, self.local)
        };
        let a = match end {
            End::Server => server,
            End::Client => client,
            End::Local => self.local,
            End::Remote => self.remote,
        };
        (a.ip().to_canonical(), a.port())
    }
}

impl<'a> Ev<'a> {
    pub fn new(ctx: &'a EvalContext<'a>) -> Ev<'a> {
        let h = ctx.event.header();
        let proc = ctx.proc;
        let table_image = proc.map(|p| view(&p.image));
        let table_ids = proc.map(|p| Ids {
            uid: p.uid,
            gid: p.gid,
            euid: p.euid,
            egid: p.egid,
            loginuid: p.loginuid,
            tty: p.tty_dev,
        });
        let mut ev = Ev {
            ctx,
            type_id: evtype::id_of_event(ctx.event),
            pid: h.tgid,
            ppid: proc.map(|p| p.ppid),
            comm: proc.map(|p| &p.image.comm[..]),
            image: table_image,
            ids: table_ids,
            start_ns: proc.map(|p| p.start_time_ns),
            cmdline: [OnceCell::new(), OnceCell::new()],
            args: OnceCell::new(),
            cwd: OnceCell::new(),
            path: OnceCell::new(),
            path2: OnceCell::new(),
            sock: Sock::of(ctx.event),
        };
        // The event's own fields win over the table, as in vigil-export's JSON.
        match ctx.event {
            Event::Exec(e) => {
                ev.ppid = Some(e.ppid);
                ev.comm = Some(&e.comm);
                ev.image = Some(ImageView {
                    exe: &e.exe,
                    args: &e.args,
                    cwd: &e.cwd,
                });
                ev.ids = Some(Ids {
                    uid: e.uid,
                    gid: e.gid,
                    euid: e.euid,
                    egid: e.egid,
                    loginuid: e.loginuid,
                    tty: e.tty_dev,
                });
                ev.start_ns = Some(e.start_time_ns);
            }
            Event::Fork(f) => {
                ev.ppid = Some(if f.thread {
                    proc.map_or(f.parent_tgid, |p| p.ppid)
                } else {
                    f.parent_tgid
                });
                if ev.comm.is_none() {
                    ev.comm = Some(&f.comm);
                }
                ev.start_ns = Some(f.start_time_ns);
            }
            Event::Exit(x) => {
                ev.ppid = Some(x.ppid);
                ev.comm = Some(&x.comm);
                ev.start_ns = Some(x.start_time_ns);
                if let (None, Some(exe)) = (&ev.image, &x.exe) {
                    ev.image = Some(ImageView {
                        exe,
                        args: &[],
                        cwd: &[],
                    });
                }
            }
            // The table entry is the socket's owner; the event's comm names it when the table
            // does not know the process.
            Event::Conn(c) => {
                if ev.comm.is_none() {
                    ev.comm = Some(&c.comm);
                }
            }
            Event::Udp(u) => {
                if ev.comm.is_none() && !u.comm.is_empty() {
                    ev.comm = Some(&u.comm);
                }
            }
            Event::File(_)
            | Event::Syscall(_)
            | Event::Capture(_)
            | Event::Enforce(_)
            | Event::Cgroup(_)
            | Event::Dns(_)
            | Event::Http(_)
            | Event::Drop(_) => {}
        }
        ev
    }

    /// Number of ancestors (for `proc.aname` without index).
    pub fn ancestor_count(&self) -> usize {
        self.ctx.ancestry.len()
    }

    /// `attr` of the subject (level 0) or of the `level`-th ancestor.
    pub fn proc_at(&self, attr: ProcAttr, level: usize) -> Option<Val<'_>> {
        let (pid, comm, image) = if level == 0 {
            (
                self.pid,
                self.comm,
                self.image.as_ref().map(|i| (i.exe, i.args)),
            )
        } else {
            let a = self.ctx.ancestry.get(level - 1)?;
            (
                a.pid,
                Some(&a.image.comm[..]),
                Some((&a.image.exe[..], &a.image.args[..])),
            )
        };
        match attr {
            ProcAttr::Pid => Some(Val::Int(i64::from(pid))),
            ProcAttr::Name => comm.map(Val::borrowed),
            ProcAttr::ExePath => image.map(|(exe, _)| Val::borrowed(exe)),
            ProcAttr::Exe => {
                image.map(|(exe, args)| Val::borrowed(args.first().map_or(exe, |a| a)))
            }
            ProcAttr::Cmdline => {
                let args = image.map_or(&[][..], |(_, a)| a);
                let comm = comm?;
                match self.cmdline.get(level) {
                    Some(cell) => Some(Val::borrowed(cell.get_or_init(|| join(comm, args)))),
                    None => Some(Val::owned(join(comm, args))),
                }
            }
            ProcAttr::Args => {
                let (_, args) = image?;
                let rest = args.get(1..).unwrap_or(&[]);
                if level == 0 {
                    Some(Val::borrowed(self.args.get_or_init(|| rest.join(&b' '))))
                } else {
                    Some(Val::owned(rest.join(&b' ')))
                }
            }
            ProcAttr::Exeline => {
                let (exe, args) = image?;
                let first = args.first().map_or(exe, |a| a);
                Some(Val::owned(join(first, args)))
            }
        }
    }

    /// A single-valued field (`Field::Proc` with `Level::AnyAncestor` is handled by the caller).
    pub fn get(&self, field: &Field) -> Option<Val<'_>> {
        let event = self.ctx.event;
        let h = event.header();
        match field {
            Field::EvtType => Some(Val::text(evtype::name_of(self.type_id))),
            Field::EvtDir => Some(Val::text("<")),
            Field::EvtTime => Some(Val::Int(h.time_ns as i64)),
            Field::EvtSource => Some(Val::text("syscall")),
            Field::EvtRes => Some(Val::text(errno_name(result(event)).unwrap_or("SUCCESS"))),
            Field::EvtRawRes => Some(Val::Int(result(event))),
            Field::EvtFailed => Some(Val::Bool(result(event) < 0)),
            Field::EvtIsOpenRead => Some(Val::Bool(open_flags(event).is_some_and(|f| f & 3 != 1))),
            Field::EvtIsOpenWrite => {
                Some(Val::Bool(open_flags(event).is_some_and(opens_for_write)))
            }
            Field::EvtIsOpenCreate => {
                Some(Val::Bool(open_flags(event).is_some_and(|f| f & 0o100 != 0)))
            }
            Field::EvtIsOpenExec => Some(Val::Bool(match event {
                Event::File(f) if f.op == VIGIL_FOP_OPEN => {
                    f.flags & 0o100 != 0 && f.mode & 0o111 != 0
                }
                _ => false,
            })),
            Field::EvtArg(name) => crate::args::arg(self, name, false),
            Field::EvtRawArg(name) => crate::args::arg(self, name, true),
            Field::EvtArgs => Some(Val::owned(crate::args::all_args(self).into_bytes())),
            Field::Proc(attr, Level::Nth(n)) => self.proc_at(*attr, *n),
            Field::Proc(_, Level::AnyAncestor) => None,
            Field::ProcTid => Some(Val::Int(i64::from(h.pid))),
            Field::ProcPpid => self.ppid.map(|p| Val::Int(i64::from(p))),
            Field::ProcCwd => self.image.as_ref().map(|i| {
                // Falco's proc.cwd ends with '/', and rules test `proc.cwd startswith "/dev/shm/"`.
                Val::borrowed(self.cwd.get_or_init(|| {
                    let mut c = i.cwd.to_vec();
                    if !c.ends_with(b"/") {
                        c.push(b'/');
                    }
                    c
                }))
            }),
            Field::ProcTty => self.ids.map(|i| Val::Int(i64::from(i.tty))),
            Field::ContainerId => Some(match self.ctx.container {
                Some(c) => Val::text(c.id.get(..12).unwrap_or(&c.id)),
                None => Val::text("host"),
            }),
            Field::ContainerFullId => Some(Val::text(self.ctx.container.map_or("host", |c| &c.id))),
            Field::ContainerType => Some(Val::text(
                self.ctx.container.map_or("host", |c| c.runtime.as_str()),
            )),
            Field::K8sNsName => self.ctx.pod.map(|p| Val::text(&p.namespace)),
            Field::K8sPodName => self.ctx.pod.map(|p| Val::text(&p.name)),
            Field::K8sPodLabels => self.ctx.pod.map(|p| {
                let pairs: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                Val::owned(pairs.join(", ").into_bytes())
            }),
            Field::K8sPodLabel(key) => self
                .ctx
                .pod
                .and_then(|p| p.labels.get(key))
                .map(|v| Val::text(v)),
            Field::ContainerName | Field::ContainerImage => {
                let c = self.ctx.container?;
                let name = matches!(field, Field::ContainerName);
                // The pod spec first (Kubernetes' names), else the runtime's API.
                let from_pod = self.ctx.pod.and_then(|p| {
                    p.containers
                        .iter()
                        .find(|m| m.id.as_deref() == Some(c.id.as_str()))
                        .map(|m| if name { &m.name } else { &m.image })
                });
                let from_runtime = c
                    .meta
                    .as_deref()
                    .map(|m| if name { &m.name } else { &m.image });
                from_pod.or(from_runtime).map(|v| Val::text(v))
            }
            Field::K8sPodUid => self
                .ctx
                .container
                .and_then(|c| c.pod_uid.as_deref())
                .map(Val::text),
            Field::ProcDuration => self
                .start_ns
                .map(|s| Val::Int(h.time_ns.saturating_sub(s) as i64)),
            Field::ProcIsExeFromMemfd => self
                .image
                .as_ref()
                .map(|i| Val::Bool(i.exe.starts_with(b"/memfd:"))),
            Field::ProcIsSuidExe => self
                .ids
                .map(|i| Val::Bool(i.uid != i.euid || i.gid != i.egid)),
            Field::UserRuid => self.ids.map(|i| Val::Int(i64::from(i.uid))),
            Field::UserUid => self.ids.map(|i| Val::Int(i64::from(i.euid))),
            Field::UserName => self
                .ids
                .and_then(|i| self.ctx.names.user(i.euid))
                .map(Val::text),
            Field::UserLoginUid => self.ids.map(|i| Val::Int(i.loginuid.map_or(-1, i64::from))),
            Field::UserLoginName => self
                .ids
                .and_then(|i| i.loginuid)
                .and_then(|l| self.ctx.names.user(l))
                .map(Val::text),
            Field::GroupGid => self.ids.map(|i| Val::Int(i64::from(i.egid))),
            Field::GroupName => self
                .ids
                .and_then(|i| self.ctx.names.group(i.egid))
                .map(Val::text),
            Field::FdName => self.fd_name(),
            Field::FdDirectory => self.file_path().map(|p| Val::borrowed(dirname(p))),
            Field::FdFilename => self.file_path().map(|p| Val::borrowed(basename(p))),
            Field::FdTypeChar => self.fd_type().map(|(c, _)| Val::text(c)),
            Field::FdType => self.fd_type().map(|(_, t)| Val::text(t)),
            Field::FdNum => fd_num(event).map(|n| Val::Int(i64::from(n))),
            Field::FdIp(end) => self.end(*end).map(|(ip, _)| Val::Ip(ip)),
            Field::FdPort(end) => self.end(*end).map(|(_, port)| Val::Int(i64::from(port))),
            Field::FdIpName(end) => {
                let (ip, _) = self.end(*end)?;
                self.ctx.names.ip_name(&ip, h.time_ns).map(Val::text)
            }
            Field::FdEither(kind) => self.either(*kind)[0].clone(),
            Field::FdL4Proto => self.sock.map(|s| Val::text(s.proto)),
            Field::FdConnected => self.sock.and_then(|s| s.connected).map(Val::Bool),
            Field::FdNameChanged => self
                .sock
                .map(|_| Val::Bool(matches!(event, Event::Conn(c) if c.phase != ConnPhase::Close))),
            Field::FdSockFamily => match self.sock {
                Some(_) => Some(Val::text("ip")),
                None => {
                    dup_socket(event).map(|s| Val::text(if s.family == 1 { "unix" } else { "ip" }))
                }
            },
            Field::Net(attr) => net_attr(event, *attr),
            Field::FsPathSource => match event {
                Event::File(f) if f.op == VIGIL_FOP_SYMLINK => Some(Val::borrowed(&f.path)),
                Event::File(f) if two_paths(f) => self.file_path().map(Val::borrowed),
                _ => None,
            },
            Field::FsPathTarget => match event {
                Event::File(f) if f.op == VIGIL_FOP_SYMLINK => self.file_path().map(Val::borrowed),
                Event::File(f) if two_paths(f) => self.second_path().map(Val::borrowed),
                _ => None,
            },
            Field::FsPathNameRaw => match event {
                Event::File(f) if f.op == VIGIL_FOP_SYMLINK => Some(Val::borrowed(&f.path2)),
                Event::File(f) => Some(Val::borrowed(&f.path)),
                _ => None,
            },
            Field::Missing => None,
        }
    }

    /// `fd.name`: the resolved path of a file event (for symlink the link, for rename/link the
    /// source), `addr:port` of the socket behind a dup2/dup3, and `cip:cport->sip:sport` for a
    /// network event, as Falco prints a socket (IPv6 without brackets).
    pub(crate) fn fd_name(&self) -> Option<Val<'_>> {
        if let Some(p) = self.file_path() {
            return Some(Val::borrowed(p));
        }
        if let Some(s) = &self.sock {
            let (cip, cport) = s.end(End::Client);
            let (sip, sport) = s.end(End::Server);
            return Some(Val::owned(
                format!("{cip}:{cport}->{sip}:{sport}").into_bytes(),
            ));
        }
        let s = dup_socket(self.ctx.event).filter(|s| s.family != 1)?;
        Some(Val::owned(
            format!("{}:{}", ip_text(s.addr), s.port).into_bytes(),
        ))
    }

    /// Address and port of one end of the event's socket. A dup2/dup3 of an IP socket knows
    /// only its peer (the remote end).
    fn end(&self, end: End) -> Option<(IpAddr, u16)> {
        if let Some(s) = &self.sock {
            return Some(s.end(end));
        }
        if end != End::Remote {
            return None;
        }
        let s = dup_socket(self.ctx.event).filter(|s| s.family != 1)?;
        Some((ip_of(s.addr)?, u16::try_from(s.port).ok()?))
    }

    /// The values of `fd.ip`/`fd.port`: the server's, then the client's (a dup2/dup3 socket:
    /// its peer's only).
    pub fn either(&self, kind: Either) -> [Option<Val<'static>>; 2] {
        let val = |a: Option<(IpAddr, u16)>| {
            a.map(|(ip, port)| match kind {
                Either::Ip => Val::Ip(ip),
                Either::Port => Val::Int(i64::from(port)),
            })
        };
        if self.sock.is_some() {
            [val(self.end(End::Server)), val(self.end(End::Client))]
        } else {
            [val(self.end(End::Remote)), None]
        }
    }

    /// `fd.typechar` and `fd.type`.
    fn fd_type(&self) -> Option<(&'static str, &'static str)> {
        if let Some(s) = &self.sock {
            // By the address, as libsinsp types a socket talking IPv4-mapped IPv6 as IPv4.
            return Some(if s.end(End::Remote).0.is_ipv4() {
                ("4", "ipv4")
            } else {
                ("6", "ipv6")
            });
        }
        fd_type(self.ctx.event)
    }

    /// The resolved primary path of a file event, as vigil-export's `file.path`.
    pub fn file_path(&self) -> Option<&[u8]> {
        let Event::File(f) = self.ctx.event else {
            return None;
        };
        Some(self.path.get_or_init(|| {
            if f.op == VIGIL_FOP_SYMLINK {
                paths::resolve(&f.base2, &f.path2)
            } else {
                paths::resolve(&f.base, &f.path)
            }
        }))
    }

    /// The resolved second path of rename/link (`file.new_path`).
    pub fn second_path(&self) -> Option<&[u8]> {
        match self.ctx.event {
            Event::File(f) if two_paths(f) => Some(
                self.path2
                    .get_or_init(|| paths::resolve(&f.base2, &f.path2)),
            ),
            _ => None,
        }
    }
}

fn view(image: &Image) -> ImageView<'_> {
    ImageView {
        exe: &image.exe,
        args: &image.args,
        cwd: &image.cwd,
    }
}

/// `head arg1 arg2 ...` (args[0] is skipped: `head` stands for it).
fn join(head: &[u8], args: &[Bytes]) -> Vec<u8> {
    let rest = args.get(1..).unwrap_or(&[]);
    let mut out = Vec::with_capacity(head.len() + rest.iter().map(|a| a.len() + 1).sum::<usize>());
    out.extend_from_slice(head);
    for a in rest {
        out.push(b' ');
        out.extend_from_slice(a);
    }
    out
}

/// The syscall result; exec, fork and exit events are successes. A failed connect is
/// `-errno` of the socket error (`ECONNREFUSED`, `ETIMEDOUT` ...), `-ECONNABORTED` when its
/// owner closed it before it completed; other network events are successes.
pub(crate) fn result(event: &Event) -> i64 {
    match event {
        Event::File(f) => f.result,
        Event::Syscall(s) => s.result,
        Event::Conn(c) if c.phase == ConnPhase::ConnectFailed => match c.sk_err {
            0 => -ECONNABORTED,
            e => -i64::from(e),
        },
        Event::Exec(_)
        | Event::Fork(_)
        | Event::Exit(_)
        | Event::Conn(_)
        | Event::Capture(_)
        | Event::Enforce(_)
        | Event::Cgroup(_)
        | Event::Udp(_)
        | Event::Dns(_)
        | Event::Http(_)
        | Event::Drop(_) => 0,
    }
}

/// The errno name of a negative result (`names::errno`, plus the ones connects report that it
/// lacks).
fn errno_name(r: i64) -> Option<&'static str> {
    match r {
        r if r == -ECONNABORTED => Some("ECONNABORTED"),
        r => names::errno(r),
    }
}

/// Vigil's `net.*`, `dns.*`, `http.*` and `drop.*` fields, as the event's JSON has them.
fn net_attr(event: &Event, attr: NetAttr) -> Option<Val<'_>> {
    let int = |n: u64| Some(Val::Int(n as i64));
    let role = |r: Role| {
        Some(Val::text(match r {
            Role::Client => "client",
            Role::Server => "server",
        }))
    };
    let closed = |c: &vigil_events::Conn| c.phase == ConnPhase::Close;
    match (attr, event) {
        (NetAttr::BytesSent, Event::Conn(c)) if closed(c) => int(c.bytes_sent),
        (NetAttr::BytesSent, Event::Udp(u)) => int(u.bytes_sent),
        (NetAttr::BytesReceived, Event::Conn(c)) if closed(c) => int(c.bytes_received),
        (NetAttr::BytesReceived, Event::Udp(u)) => int(u.bytes_received),
        (NetAttr::Retransmits, Event::Conn(c)) if closed(c) => int(u64::from(c.retransmits)),
        (NetAttr::ConnectLatencyUs, Event::Conn(c)) => {
            c.connect_latency_ns.and_then(|n| int(n / 1000))
        }
        (NetAttr::Role, Event::Conn(c)) => role(c.role),
        (NetAttr::Role, Event::Dns(d)) => role(d.exchange.role),
        (NetAttr::Role, Event::Http(h)) => role(h.exchange.role),
        (NetAttr::DnsQuery, Event::Dns(d)) => Some(Val::text(&d.exchange.query)),
        (NetAttr::DnsType, Event::Dns(d)) => {
            let t = d.exchange.qtype;
            Some(Val::Named(i64::from(t), dns::type_name(t)))
        }
        (NetAttr::DnsRcode, Event::Dns(d)) => d
            .exchange
            .rcode
            .map(|r| Val::Named(i64::from(r), dns::rcode_name(r))),
        (NetAttr::HttpMethod, Event::Http(h)) => Some(Val::text(&h.exchange.method)),
        (NetAttr::HttpPath, Event::Http(h)) => Some(Val::text(&h.exchange.path)),
        (NetAttr::HttpStatus, Event::Http(h)) => h.exchange.status.map(|s| Val::Int(i64::from(s))),
        (NetAttr::DropReason, Event::Drop(d)) => Some(Val::text(&d.reason)),
        (NetAttr::DropCount, Event::Drop(d)) => int(d.count),
        _ => None,
    }
}

/// Flags of an open, `None` for other events.
fn open_flags(event: &Event) -> Option<u32> {
    match event {
        Event::File(f) if f.op == VIGIL_FOP_OPEN => Some(f.flags),
        _ => None,
    }
}

/// Writable access, or a flag that changes the file (`O_CREAT`, `O_TRUNC`, `O_APPEND`,
/// `__O_TMPFILE`): the same test as the kernel-side filter, so "written" means one thing across
/// Vigil. `O_TMPFILE` is `__O_TMPFILE | O_DIRECTORY`: only the first bit counts, or every
/// `O_DIRECTORY` open would be a write.
fn opens_for_write(flags: u32) -> bool {
    flags & 3 != 0 || flags & (0o100 | 0o1000 | 0o2000 | 0o20000000) != 0
}

pub(crate) fn two_paths(f: &File) -> bool {
    matches!(f.op, VIGIL_FOP_RENAME | VIGIL_FOP_LINK)
}

fn dirname(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|c| *c == b'/') {
        Some(0) => b"/",
        Some(i) => &p[..i],
        None => b"",
    }
}

fn basename(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|c| *c == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

fn fd_type(event: &Event) -> Option<(&'static str, &'static str)> {
    match event {
        Event::File(f) => {
            let dir = matches!(f.op, VIGIL_FOP_MKDIR | VIGIL_FOP_RMDIR)
                || (f.op == VIGIL_FOP_OPEN && f.flags & 0o20200000 == 0o200000);
            Some(if dir {
                ("d", "directory")
            } else {
                ("f", "file")
            })
        }
        _ => dup_socket(event).map(|s| match s.family {
            1 => ("u", "unix"),
            10 => ("6", "ipv6"),
            _ => ("4", "ipv4"),
        }),
    }
}

fn fd_num(event: &Event) -> Option<i32> {
    match event {
        Event::File(f) => f.fd.or_else(|| {
            (f.op == VIGIL_FOP_OPEN && f.result >= 0).then(|| i32::try_from(f.result).ok())?
        }),
        Event::Syscall(s) if matches!(s.syscall, VIGIL_SYS_DUP2 | VIGIL_SYS_DUP3) => {
            i32::try_from(s.args[1]).ok()
        }
        _ => None,
    }
}

/// The socket a dup2/dup3 put on a standard fd.
pub(crate) struct DupSocket<'a> {
    pub family: u64,
    pub port: u64,
    pub addr: &'a [u8],
}

pub(crate) fn dup_socket(event: &Event) -> Option<DupSocket<'_>> {
    match event {
        Event::Syscall(
            s @ Syscall {
                syscall: VIGIL_SYS_DUP2 | VIGIL_SYS_DUP3,
                ..
            },
        ) => Some(DupSocket {
            family: s.args[3],
            port: s.args[4],
            addr: &s.strs[0],
        }),
        _ => None,
    }
}

/// A raw IPv4 (4 bytes) or IPv6 (16 bytes) address; IPv4-mapped IPv6 as IPv4.
fn ip_of(b: &[u8]) -> Option<IpAddr> {
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        return Some(IpAddr::from(a));
    }
    <[u8; 16]>::try_from(b)
        .ok()
        .map(|a| IpAddr::from(a).to_canonical())
}

/// A raw IPv4 (4 bytes) or IPv6 (16 bytes) address as text, as vigil-export shows it.
pub(crate) fn ip_text(b: &[u8]) -> String {
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        return std::net::Ipv4Addr::from(a).to_string();
    }
    if let Ok(a) = <[u8; 16]>::try_from(b) {
        return std::net::Ipv6Addr::from(a).to_string();
    }
    String::new()
}

/// `Cow` helper for values computed from static names.
pub(crate) fn named(n: i64, name: Option<&'static str>) -> Val<'static> {
    match name {
        Some(s) => Val::Named(n, Cow::Borrowed(s)),
        None => Val::Int(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts() {
        assert_eq!(dirname(b"/etc/passwd"), b"/etc");
        assert_eq!(dirname(b"/passwd"), b"/");
        assert_eq!(basename(b"/etc/passwd"), b"passwd");
        assert_eq!(basename(b"rel"), b"rel");
        assert_eq!(
            join(
                b"bash",
                &[b"/bin/bash".to_vec(), b"-c".to_vec(), b"id".to_vec()]
            ),
            b"bash -c id"
        );
        assert!(opens_for_write(0o1101) && opens_for_write(0o100) && !opens_for_write(0));
        // O_TMPFILE writes; O_DIRECTORY alone (a read of a directory) does not.
        assert!(opens_for_write(0o20200000) && !opens_for_write(0o200000));
        assert_eq!(ip_text(&[10, 0, 0, 1]), "10.0.0.1");
    }
}
