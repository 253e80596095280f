//! The field catalogue: which Falco field names this engine knows and what each one reads.
//!
//! Three outcomes for a name: a [`Field`] that Vigil's events can fill; a field Falco has and
//! Vigil knows but cannot fill yet (containers, Kubernetes: [`Field::Missing`], so that upstream
//! rules still load, and evaluate as Falco does without that metadata); anything else, which
//! disables the rule with the reason from [`FieldError`].

/// Which process a `proc.*` field reads: the subject, a numbered ancestor (1 = parent), or any
/// ancestor (`proc.aname` without an index matches when one of them does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Nth(usize),
    AnyAncestor,
}

/// Attributes readable for the subject and for its ancestors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcAttr {
    /// `comm`.
    Name,
    Pid,
    /// `argv[0]` as given.
    Exe,
    /// The resolved executable.
    ExePath,
    /// `comm arg1 arg2 ...`.
    Cmdline,
    /// `arg1 arg2 ...`.
    Args,
    /// `argv[0] arg1 arg2 ...`.
    Exeline,
}

/// Which end of a connection an address field reads. Server and client follow the roles
/// (a `connect` is the client, an `accept` the server); local and remote are this socket's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Server,
    Client,
    Local,
    Remote,
}

/// Fields that match when either end does (`fd.ip`, `fd.port`, `fd.net`): Falco's filter-only
/// fields. `!=` holds only when neither end is equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Either {
    /// `fd.ip` and `fd.net`.
    Ip,
    Port,
}

/// Vigil's fields of network events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetAttr {
    BytesSent,
    BytesReceived,
    Retransmits,
    ConnectLatencyUs,
    Role,
    DnsQuery,
    DnsType,
    DnsRcode,
    HttpMethod,
    HttpPath,
    HttpStatus,
    DropReason,
    DropCount,
}

/// A resolved field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    EvtType,
    EvtDir,
    EvtTime,
    EvtRes,
    EvtRawRes,
    EvtFailed,
    EvtIsOpenRead,
    EvtIsOpenWrite,
    EvtIsOpenExec,
    EvtIsOpenCreate,
    EvtSource,
    /// `evt.arg.NAME`: Falco's rendering (names for flags and enums).
    EvtArg(Box<str>),
    /// `evt.rawarg.NAME`: the number itself.
    EvtRawArg(Box<str>),
    EvtArgs,
    Proc(ProcAttr, Level),
    ProcTid,
    ProcPpid,
    ProcCwd,
    ProcTty,
    ProcDuration,
    ProcIsExeFromMemfd,
    /// Vigil's: the image runs with effective ids other than the real ones (set-user-ID or
    /// set-group-ID executable).
    ProcIsSuidExe,
    /// Vigil's: the real uid (`user.uid` is the effective one, as in Falco).
    UserRuid,
    UserUid,
    UserName,
    UserLoginUid,
    UserLoginName,
    GroupGid,
    GroupName,
    FdName,
    FdDirectory,
    FdFilename,
    FdTypeChar,
    FdType,
    FdNum,
    /// `fd.sip`, `fd.cip`, `fd.lip`, `fd.rip` and the `*net` forms (the address, compared with
    /// networks).
    FdIp(End),
    /// `fd.sport`, `fd.cport`, `fd.lport`, `fd.rport`.
    FdPort(End),
    /// `fd.sip.name` ...: the DNS name learned for the address.
    FdIpName(End),
    /// `fd.ip`, `fd.net`, `fd.port`: multi-valued (server, then client).
    FdEither(Either),
    FdL4Proto,
    FdConnected,
    /// True on the events that name a socket (connect, accept).
    FdNameChanged,
    FdSockFamily,
    Net(NetAttr),
    /// `fs.path.source`: rename/link source, symlink target.
    FsPathSource,
    /// `fs.path.target`: rename/link destination, the symlink itself.
    FsPathTarget,
    /// `fs.path.nameraw`: the path as the process passed it.
    FsPathNameRaw,
    /// `container.id`: 12 characters of the id, or `host`.
    ContainerId,
    /// `container.full_id`: the whole id, or `host`.
    ContainerFullId,
    /// `container.type`: the runtime (`docker`, `containerd`, `cri-o`, `podman`), or `host`.
    ContainerType,
    /// `k8s.pod.uid` (`k8s.pod.id`): from the pod's cgroup; missing outside pods.
    K8sPodUid,
    /// `k8s.ns.name`, from the Kubernetes API.
    K8sNsName,
    /// `k8s.pod.name`.
    K8sPodName,
    /// `k8s.pod.labels`: `key:value` pairs, comma-separated (as Falco prints them).
    K8sPodLabels,
    /// `k8s.pod.label[key]`.
    K8sPodLabel(String),
    /// `container.name`: the pod's container with this id.
    ContainerName,
    /// `container.image`.
    ContainerImage,
    /// Known to Falco and to Vigil, never filled yet.
    Missing,
}

/// Why a field name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("field {0} is not supported yet")]
    Unsupported(String),
    #[error("unknown field {0}")]
    Unknown(String),
    #[error("field {0} needs an argument")]
    MissingArg(String),
    #[error("field {name} does not take the argument '{arg}'")]
    BadArg { name: String, arg: String },
    #[error("field transformer {0}() is not supported yet")]
    Transformer(String),
}

/// Falco field classes: an unknown name in one of these is a Falco field Vigil lacks, any other
/// is most likely a typo. Both disable the rule; the reason differs.
const FALCO_CLASSES: &[&str] = &[
    "evt.",
    "proc.",
    "thread.",
    "user.",
    "group.",
    "fd.",
    "fdlist.",
    "fs.",
    "container.",
    "k8s.",
    "syscall.",
    "span.",
    "evtin.",
    "mesos.",
    "ka.",
    "jevt.",
    "gen.",
];

/// Fields that exist in Falco, are part of Vigil's plan, and are absent for now.
const KNOWN_MISSING: &[&str] = &[
    "evt.num",
    "proc.sname",
    "proc.sid",
    "proc.vpid",
    "proc.vpgid",
    "proc.env",
    "proc.exe_ino",
    "proc.is_exe_upper_layer",
    "proc.is_container_healthcheck",
    "proc.is_container_liveness_probe",
    "proc.is_container_readiness_probe",
    "container.image.id",
    "container.image.repository",
    "container.image.tag",
    "container.image.digest",
    "container.privileged",
    "container.info",
    "container.start_ts",
];

/// Fields that take a `[key]` argument of any text.
const KEYED_MISSING: &[&str] = &["proc.env"];

/// Resolves `name[arg]`.
pub(crate) fn resolve(name: &str, arg: Option<&str>) -> Result<Field, FieldError> {
    let bad_arg = || FieldError::BadArg {
        name: name.to_string(),
        arg: arg.unwrap_or_default().to_string(),
    };
    if let Some(level) = ancestor_field(name) {
        let (attr, default) = level;
        // Only the `proc.a*` forms take an index; the others name one process.
        let indexed = default == Level::AnyAncestor;
        let level = match arg {
            None => default,
            Some(a) if indexed => Level::Nth(a.trim().parse::<usize>().map_err(|_| bad_arg())?),
            Some(_) => return Err(bad_arg()),
        };
        return Ok(Field::Proc(attr, level));
    }
    if let Some(argname) = name.strip_prefix("evt.arg.") {
        return no_arg(arg, bad_arg).map(|()| Field::EvtArg(argname.into()));
    }
    if let Some(argname) = name.strip_prefix("evt.rawarg.") {
        return no_arg(arg, bad_arg).map(|()| Field::EvtRawArg(argname.into()));
    }
    if name == "evt.arg" || name == "evt.rawarg" {
        return match arg {
            // Falco also takes a position: Vigil's argument positions differ from the
            // kernel module's, so only names are meaningful.
            Some(a) if a.trim().parse::<usize>().is_ok() => Err(FieldError::Unsupported(format!(
                "{name}[{a}] (by position)"
            ))),
            Some(a) if name == "evt.arg" => Ok(Field::EvtArg(a.into())),
            Some(a) => Ok(Field::EvtRawArg(a.into())),
            None => Err(FieldError::MissingArg(name.into())),
        };
    }
    if name == "k8s.pod.label" {
        return match arg {
            Some(key) => Ok(Field::K8sPodLabel(key.trim().to_string())),
            None => Err(FieldError::MissingArg(name.into())),
        };
    }
    if KNOWN_MISSING.contains(&name) {
        if arg.is_some() && !KEYED_MISSING.contains(&name) {
            return Err(bad_arg());
        }
        return Ok(Field::Missing);
    }
    let field = match name {
        "evt.type" => Field::EvtType,
        "evt.dir" => Field::EvtDir,
        "evt.time" | "evt.rawtime" => Field::EvtTime,
        "evt.res" => Field::EvtRes,
        "evt.rawres" => Field::EvtRawRes,
        "evt.failed" => Field::EvtFailed,
        "evt.is_open_read" => Field::EvtIsOpenRead,
        "evt.is_open_write" => Field::EvtIsOpenWrite,
        "evt.is_open_exec" => Field::EvtIsOpenExec,
        "evt.is_open_create" => Field::EvtIsOpenCreate,
        "evt.source" => Field::EvtSource,
        "evt.args" => Field::EvtArgs,
        "proc.tid" | "thread.tid" => Field::ProcTid,
        "proc.ppid" => Field::ProcPpid,
        "proc.cwd" => Field::ProcCwd,
        "proc.tty" => Field::ProcTty,
        "container.id" => Field::ContainerId,
        "container.full_id" => Field::ContainerFullId,
        "container.type" => Field::ContainerType,
        "k8s.pod.uid" | "k8s.pod.id" => Field::K8sPodUid,
        "k8s.ns.name" => Field::K8sNsName,
        "k8s.pod.name" => Field::K8sPodName,
        "k8s.pod.labels" => Field::K8sPodLabels,
        "container.name" => Field::ContainerName,
        "container.image" => Field::ContainerImage,
        "proc.duration" => Field::ProcDuration,
        "proc.is_exe_from_memfd" => Field::ProcIsExeFromMemfd,
        "proc.is_suid_exe" => Field::ProcIsSuidExe,
        "user.ruid" => Field::UserRuid,
        "proc.loginuid" | "user.loginuid" => Field::UserLoginUid,
        "user.uid" => Field::UserUid,
        "user.name" => Field::UserName,
        "user.loginname" => Field::UserLoginName,
        "group.gid" => Field::GroupGid,
        "group.name" => Field::GroupName,
        "fd.name" | "fd.nameraw" | "fs.path.name" => Field::FdName,
        "fd.directory" => Field::FdDirectory,
        "fd.filename" => Field::FdFilename,
        "fd.typechar" => Field::FdTypeChar,
        "fd.type" => Field::FdType,
        "fd.num" => Field::FdNum,
        "fd.sip" | "fd.snet" => Field::FdIp(End::Server),
        "fd.cip" | "fd.cnet" => Field::FdIp(End::Client),
        "fd.lip" | "fd.lnet" => Field::FdIp(End::Local),
        "fd.rip" | "fd.rnet" => Field::FdIp(End::Remote),
        "fd.sport" => Field::FdPort(End::Server),
        "fd.cport" => Field::FdPort(End::Client),
        "fd.lport" => Field::FdPort(End::Local),
        "fd.rport" => Field::FdPort(End::Remote),
        "fd.sip.name" => Field::FdIpName(End::Server),
        "fd.cip.name" => Field::FdIpName(End::Client),
        "fd.lip.name" => Field::FdIpName(End::Local),
        "fd.rip.name" => Field::FdIpName(End::Remote),
        "fd.ip" | "fd.net" => Field::FdEither(Either::Ip),
        "fd.port" => Field::FdEither(Either::Port),
        "fd.l4proto" => Field::FdL4Proto,
        "fd.connected" => Field::FdConnected,
        "fd.name_changed" => Field::FdNameChanged,
        "fd.sockfamily" => Field::FdSockFamily,
        "net.bytes_sent" => Field::Net(NetAttr::BytesSent),
        "net.bytes_received" => Field::Net(NetAttr::BytesReceived),
        "net.retransmits" => Field::Net(NetAttr::Retransmits),
        "net.connect_latency_us" => Field::Net(NetAttr::ConnectLatencyUs),
        "net.role" => Field::Net(NetAttr::Role),
        "dns.query" => Field::Net(NetAttr::DnsQuery),
        "dns.type" => Field::Net(NetAttr::DnsType),
        "dns.rcode" => Field::Net(NetAttr::DnsRcode),
        "http.method" => Field::Net(NetAttr::HttpMethod),
        "http.path" => Field::Net(NetAttr::HttpPath),
        "http.status" => Field::Net(NetAttr::HttpStatus),
        "drop.reason" => Field::Net(NetAttr::DropReason),
        "drop.count" => Field::Net(NetAttr::DropCount),
        "fs.path.source" => Field::FsPathSource,
        "fs.path.target" => Field::FsPathTarget,
        "fs.path.nameraw" => Field::FsPathNameRaw,
        _ if FALCO_CLASSES.iter().any(|c| name.starts_with(c)) => {
            return Err(FieldError::Unsupported(display(name, arg)));
        }
        _ => return Err(FieldError::Unknown(display(name, arg))),
    };
    no_arg(arg, bad_arg).map(|()| field)
}

fn display(name: &str, arg: Option<&str>) -> String {
    match arg {
        Some(a) => format!("{name}[{a}]"),
        None => name.to_string(),
    }
}

fn no_arg(arg: Option<&str>, bad: impl Fn() -> FieldError) -> Result<(), FieldError> {
    match arg {
        None => Ok(()),
        Some(_) => Err(bad()),
    }
}

/// `proc.*` fields that read a process image: the attribute, and the level used when no index
/// is given.
fn ancestor_field(name: &str) -> Option<(ProcAttr, Level)> {
    let subject = Level::Nth(0);
    let parent = Level::Nth(1);
    let any = Level::AnyAncestor;
    Some(match name {
        "proc.name" => (ProcAttr::Name, subject),
        "proc.pid" => (ProcAttr::Pid, subject),
        "proc.exe" => (ProcAttr::Exe, subject),
        "proc.exepath" => (ProcAttr::ExePath, subject),
        "proc.cmdline" => (ProcAttr::Cmdline, subject),
        "proc.args" => (ProcAttr::Args, subject),
        "proc.exeline" => (ProcAttr::Exeline, subject),
        "proc.pname" => (ProcAttr::Name, parent),
        "proc.pexe" => (ProcAttr::Exe, parent),
        "proc.pexepath" => (ProcAttr::ExePath, parent),
        "proc.pcmdline" => (ProcAttr::Cmdline, parent),
        "proc.aname" => (ProcAttr::Name, any),
        "proc.apid" => (ProcAttr::Pid, any),
        "proc.aexe" => (ProcAttr::Exe, any),
        "proc.aexepath" => (ProcAttr::ExePath, any),
        "proc.acmdline" => (ProcAttr::Cmdline, any),
        _ => return None,
    })
}

/// Every field name the catalogue accepts (for documentation and tests).
pub fn supported_fields() -> &'static [&'static str] {
    &[
        "evt.type",
        "evt.dir",
        "evt.time",
        "evt.rawtime",
        "evt.res",
        "evt.rawres",
        "evt.failed",
        "evt.is_open_read",
        "evt.is_open_write",
        "evt.is_open_exec",
        "evt.is_open_create",
        "evt.source",
        "evt.arg.<name>",
        "evt.arg[<name>]",
        "evt.rawarg.<name>",
        "evt.args",
        "proc.pid",
        "proc.tid",
        "thread.tid",
        "proc.ppid",
        "proc.name",
        "proc.exe",
        "proc.exepath",
        "proc.cmdline",
        "proc.args",
        "proc.exeline",
        "proc.cwd",
        "proc.tty",
        "container.id",
        "container.full_id",
        "container.type",
        "k8s.pod.uid",
        "k8s.pod.id",
        "k8s.ns.name",
        "k8s.pod.name",
        "k8s.pod.labels",
        "k8s.pod.label[<key>]",
        "container.name",
        "container.image",
        "proc.loginuid",
        "proc.duration",
        "proc.is_exe_from_memfd",
        "proc.is_suid_exe",
        "user.ruid",
        "proc.pname",
        "proc.pexe",
        "proc.pexepath",
        "proc.pcmdline",
        "proc.aname[<n>]",
        "proc.apid[<n>]",
        "proc.aexe[<n>]",
        "proc.aexepath[<n>]",
        "proc.acmdline[<n>]",
        "user.uid",
        "user.name",
        "user.loginuid",
        "user.loginname",
        "group.gid",
        "group.name",
        "fd.name",
        "fd.nameraw",
        "fd.directory",
        "fd.filename",
        "fd.typechar",
        "fd.type",
        "fd.num",
        "fd.sip",
        "fd.cip",
        "fd.lip",
        "fd.rip",
        "fd.sport",
        "fd.cport",
        "fd.lport",
        "fd.rport",
        "fd.snet",
        "fd.cnet",
        "fd.lnet",
        "fd.rnet",
        "fd.sip.name",
        "fd.cip.name",
        "fd.lip.name",
        "fd.rip.name",
        "fd.ip",
        "fd.net",
        "fd.port",
        "fd.l4proto",
        "fd.connected",
        "fd.name_changed",
        "fd.sockfamily",
        "fs.path.name",
        "fs.path.nameraw",
        "fs.path.source",
        "fs.path.target",
        "net.bytes_sent",
        "net.bytes_received",
        "net.retransmits",
        "net.connect_latency_us",
        "net.role",
        "dns.query",
        "dns.type",
        "dns.rcode",
        "http.method",
        "http.path",
        "http.status",
        "drop.reason",
        "drop.count",
    ]
}

/// Fields accepted so that Falco rules load, which evaluate as missing for now.
pub fn missing_fields() -> &'static [&'static str] {
    KNOWN_MISSING
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_arguments() {
        assert_eq!(
            resolve("proc.name", None),
            Ok(Field::Proc(ProcAttr::Name, Level::Nth(0)))
        );
        assert_eq!(
            resolve("proc.aname", Some("2")),
            Ok(Field::Proc(ProcAttr::Name, Level::Nth(2)))
        );
        assert_eq!(
            resolve("proc.aname", None),
            Ok(Field::Proc(ProcAttr::Name, Level::AnyAncestor))
        );
        assert_eq!(
            resolve("evt.arg.flags", None),
            Ok(Field::EvtArg("flags".into()))
        );
        assert_eq!(
            resolve("evt.arg", Some("flags")),
            Ok(Field::EvtArg("flags".into()))
        );
        assert!(matches!(
            resolve("evt.arg", Some("0")),
            Err(FieldError::Unsupported(_))
        ));
        assert_eq!(resolve("container.id", None), Ok(Field::ContainerId));
        assert_eq!(resolve("container.name", None), Ok(Field::ContainerName));
        assert_eq!(resolve("container.image.tag", None), Ok(Field::Missing));
        assert_eq!(
            resolve("k8s.pod.label", Some("app")),
            Ok(Field::K8sPodLabel("app".into()))
        );
        assert_eq!(resolve("fd.sip", None), Ok(Field::FdIp(End::Server)));
        assert_eq!(resolve("fd.snet", None), Ok(Field::FdIp(End::Server)));
        assert_eq!(
            resolve("fd.rip.name", None),
            Ok(Field::FdIpName(End::Remote))
        );
        assert_eq!(
            resolve("fd.sproto", None).unwrap_err().to_string(),
            "field fd.sproto is not supported yet"
        );
        assert_eq!(
            resolve("dns.answers", None).unwrap_err().to_string(),
            "unknown field dns.answers"
        );
        assert_eq!(
            resolve("foo.bar", None).unwrap_err().to_string(),
            "unknown field foo.bar"
        );
        assert!(matches!(
            resolve("proc.aname", Some("x")),
            Err(FieldError::BadArg { .. })
        ));
        assert!(matches!(
            resolve("proc.name", Some("1")),
            Err(FieldError::BadArg { .. })
        ));
        for f in supported_fields() {
            let (name, arg) = match f.split_once('[') {
                Some((n, _)) => (n, Some("1")),
                None => (*f, None),
            };
            let name = name.replace("<name>", "flags");
            let arg = if name == "evt.arg" {
                Some("flags")
            } else {
                arg
            };
            assert!(resolve(&name, arg).is_ok(), "{f}");
        }
    }
}
