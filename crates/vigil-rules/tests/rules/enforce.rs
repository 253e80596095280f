//! Rules with an `action`: their conditions lowered into kernel plans, the errors for what the
//! kernel cannot check (with positions), audit mode, `append`/`override` of `action` and
//! `mode`, and the user-space side (evaluation skips them, `RuleInfo` says how they run).

use std::net::IpAddr;

use vigil_rules::{Action, ErrorKind, Hook, Mode, Net, PathMatch, Plan, Priority, L4};

use crate::common::*;

/// A one-rule file: the condition (as a JSON-quoted scalar on line 3, so that condition column
/// `c` is file column `c + 14`), then `action` on line 6.
fn yaml(action: &str, condition: &str) -> String {
    format!(
        "- rule: R\n  desc: d\n  condition: {}\n  output: \"blocked (proc=%proc.name file=%fd.name)\"\n  priority: CRITICAL\n  action: {action}\n",
        serde_json::to_string(condition).unwrap()
    )
}

#[track_caller]
fn plan(action: &str, condition: &str) -> Plan {
    let rs = load_ok(&yaml(action, condition));
    assert_eq!(rs.enforcement().len(), 1, "{condition}");
    rs.enforcement()[0].clone()
}

#[track_caller]
fn error(action: &str, condition: &str) -> String {
    match try_load(&yaml(action, condition)) {
        Ok(rs) => panic!("loaded: {condition}: {:?}", rs.enforcement()),
        Err(e) => {
            assert_eq!(e.errors.len(), 1, "{e}");
            assert!(
                matches!(e.errors[0].kind, ErrorKind::Enforce { .. }),
                "{:?}",
                e.errors[0].kind
            );
            e.to_string()
        }
    }
}

#[track_caller]
fn error_has(action: &str, condition: &str, parts: &[&str]) {
    let e = error(action, condition);
    for p in parts {
        assert!(e.contains(p), "{condition}: {e}\n  missing: {p}");
    }
}

fn net(s: &str) -> Net {
    let (addr, prefix) = s.split_once('/').unwrap();
    Net {
        addr: addr.parse::<IpAddr>().unwrap(),
        prefix: prefix.parse().unwrap(),
    }
}

fn exact(s: &str) -> PathMatch {
    PathMatch::Exact(s.as_bytes().to_vec())
}

fn prefix(s: &str) -> PathMatch {
    PathMatch::Prefix(s.as_bytes().to_vec())
}

#[test]
fn workload_scope_by_namespace_and_pod_labels() {
    let p = plan(
        "kill",
        "evt.type = execve and proc.exepath = /usr/bin/nc and k8s.ns.name in (shop, web) \
         and k8s.pod.label[app] in (cart, front, x) and k8s.pod.label[app] in (cart, front) \
         and k8s.pod.label[tier] = backend",
    );
    assert_eq!(p.namespaces, ["shop", "web"]);
    assert_eq!(
        p.pod_labels,
        [
            (
                "app".to_string(),
                vec!["cart".to_string(), "front".to_string()]
            ),
            ("tier".to_string(), vec!["backend".to_string()])
        ]
    );
    assert!(p.scoped());
    let labels = |kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert!(p.in_scope("shop", &labels(&[("app", "cart"), ("tier", "backend")])));
    assert!(!p.in_scope("shop", &labels(&[("app", "cart")])));
    assert!(!p.in_scope("other", &labels(&[("app", "cart"), ("tier", "backend")])));
    let p = plan("deny", "evt.type = connect and fd.sport = 4444");
    assert!(!p.scoped() && p.in_scope("any", &labels(&[])));
}

#[test]
fn connect_plan() {
    let p = plan(
        "deny",
        "evt.type = connect and evt.dir = < and fd.sip in (10.0.0.1, \"192.168.0.0/16\") \
         and fd.sport in (3333, 4444) and fd.l4proto = tcp",
    );
    assert_eq!(
        p,
        Plan {
            rule: "R".into(),
            priority: Priority::Critical,
            output: "blocked (proc=%proc.name file=%fd.name)".into(),
            action: Action::Deny,
            mode: Mode::Enforce,
            hook: Hook::Connect,
            nets: vec![net("10.0.0.1/32"), net("192.168.0.0/16")],
            ports: vec![3333, 4444],
            protocol: Some(L4::Tcp),
            paths: vec![],
            uids: vec![],
            exe: vec![],
            namespaces: vec![],
            pod_labels: vec![],
        }
    );
    // The remote end is the server of a connect: fd.rip/fd.rport are the same tests.
    let p = plan(
        "deny",
        "evt.type=connect and fd.rip = 1.2.3.4 and fd.rport = 22",
    );
    assert_eq!((p.nets, p.ports), (vec![net("1.2.3.4/32")], vec![22]));
    // Both protocols: None.
    let p = plan("deny", "evt.type=connect and fd.l4proto in (tcp, udp)");
    assert_eq!(p.protocol, None);
}

#[test]
fn addresses_and_networks_v4_and_v6() {
    let p = plan(
        "deny",
        "evt.type = connect and fd.snet in (\"10.1.2.3/8\", \"fd00::/8\", \"::ffff:172.16.0.0/108\", \
         \"2001:db8::1\", \"::ffff:10.9.9.9\", \"[::1]\")",
    );
    assert_eq!(
        p.nets,
        [
            net("10.0.0.0/8"),
            net("fd00::/8"),
            net("172.16.0.0/12"),
            net("2001:db8::1/128"),
            net("::1/128"),
        ],
        "host bits cleared, IPv4-mapped as IPv4, 10.9.9.9 inside 10.0.0.0/8"
    );
    let p = plan("deny", "evt.type = connect and fd.rnet = \"0.0.0.0/0\"");
    assert_eq!(p.nets, [net("0.0.0.0/0")]);
    assert!(p.nets[0].contains("8.8.8.8".parse().unwrap()));
    error_has(
        "deny",
        "evt.type = connect and fd.sip = example.com",
        &["'example.com' is not an IP address or network"],
    );
    error_has(
        "deny",
        "evt.type = connect and fd.snet = \"10.0.0.0/40\"",
        &["'10.0.0.0/40' is not an IP address or network"],
    );
}

#[test]
fn or_merges_alternatives_of_one_field_and_and_intersects() {
    let p = plan(
        "deny",
        "(evt.type = connect) and (fd.sport = 1 or fd.rport = 2 or fd.sport in (3, 1)) \
         and (fd.sip = 1.2.3.4 or fd.snet = \"10.0.0.0/8\" or fd.rip = 10.1.1.1)",
    );
    assert_eq!(p.ports, [1, 2, 3]);
    assert_eq!(p.nets, [net("1.2.3.4/32"), net("10.0.0.0/8")]);
    let p = plan(
        "deny",
        "evt.type = connect and fd.sport in (1, 2, 3) and fd.sport in (2, 3, 4) \
         and fd.snet = \"10.0.0.0/8\" and fd.sip in (10.0.0.5, 11.0.0.5)",
    );
    assert_eq!((p.ports, p.nets), (vec![2, 3], vec![net("10.0.0.5/32")]));
    let p = plan(
        "deny",
        "(evt.type = sendto or evt.type = sendmsg) and evt.type in (sendmsg, connect)",
    );
    assert_eq!(p.hook, Hook::Sendmsg);
    let p = plan(
        "kill",
        "evt.type = execve and (proc.exepath startswith /tmp/ or proc.exepath = /dev/shm/x) \
         and proc.exepath startswith /tmp/a",
    );
    assert_eq!(p.paths, [prefix("/tmp/a")]);
    let e = error(
        "deny",
        "evt.type = connect and fd.sport in (1, 2) and fd.sport = 3",
    );
    assert_eq!(
        e,
        "rules.yaml:3:61: rule 'R': cannot enforce in the kernel: \"fd.sport = 3\" (never matches \
         together with the other tests of the destination port: nothing is left to enforce) \
         (condition column 47)"
    );
}

#[test]
fn lists_and_macros_are_expanded() {
    let yaml = "\
- list: miner_ports
  items: [3333, 4444]
- list: more_ports
  items: [miner_ports, 5555]
- list: pools
  items: ['\"10.0.0.0/8\"', 192.168.1.1]
- macro: outbound
  condition: evt.type = connect and evt.dir = <
- macro: to_pools
  condition: fd.sip in (pools) or fd.snet = \"172.16.0.0/12\"
- rule: Miners
  desc: d
  condition: outbound and fd.sport in (more_ports) and to_pools and fd.rport in miner_ports
  output: o
  priority: ERROR
  action: deny
";
    let rs = load_ok(yaml);
    let p = &rs.enforcement()[0];
    assert_eq!(p.hook, Hook::Connect);
    assert_eq!(p.ports, [3333, 4444]);
    assert_eq!(
        p.nets,
        [
            net("10.0.0.0/8"),
            net("192.168.1.1/32"),
            net("172.16.0.0/12")
        ]
    );
    let p = plan("deny", "evt.type in (connect) and user.uid in (0, 1000, 0)");
    assert_eq!(p.uids, [0, 1000]);
}

#[test]
fn sendmsg_is_udp() {
    let p = plan(
        "deny",
        "evt.type in (sendto, sendmsg, sendmmsg) and fd.rip = 8.8.8.8 and fd.rport = 53",
    );
    assert_eq!(p.hook, Hook::Sendmsg);
    assert_eq!(p.protocol, Some(L4::Udp));
    assert_eq!((p.nets, p.ports), (vec![net("8.8.8.8/32")], vec![53]));
    let p = plan("deny", "evt.type = sendto and fd.l4proto = udp");
    assert_eq!(p.protocol, Some(L4::Udp));
    error_has(
        "deny",
        "evt.type = sendto and fd.l4proto = tcp",
        &["sendto/sendmsg are enforced on UDP sockets only"],
    );
}

#[test]
fn bind_plan() {
    let p = plan(
        "deny",
        "evt.type = bind and fd.lport in (22, 2222) and fd.lnet = \"0.0.0.0/0\" and fd.l4proto = udp",
    );
    assert_eq!(p.hook, Hook::Bind);
    assert_eq!(p.ports, [22, 2222]);
    assert_eq!(p.nets, [net("0.0.0.0/0")]);
    assert_eq!(p.protocol, Some(L4::Udp));
    // The local end is the server of a bind.
    let p = plan(
        "deny",
        "evt.type = bind and fd.sport = 8080 and fd.sip = 127.0.0.1",
    );
    assert_eq!((p.ports, p.nets), (vec![8080], vec![net("127.0.0.1/32")]));
    error_has(
        "deny",
        "evt.type = bind and fd.rport = 80",
        &[
            "\"fd.rport = 80\" (fd.rport cannot be enforced on bind rules; enforceable on them: \
             evt.type, fd.lport/fd.sport",
        ],
    );
    error_has(
        "deny",
        "evt.type = connect and fd.lport = 80",
        &["fd.lport cannot be enforced on connect rules"],
    );
    error_has(
        "deny",
        "evt.type = bind and fd.lport = 70000",
        &["'70000' is not a port number"],
    );
}

#[test]
fn exec_plan() {
    let p = plan(
        "kill",
        "evt.type in (execve, execveat) and (proc.exepath in (/usr/bin/xmrig, /opt/x) \
         or proc.exepath startswith /tmp/ or proc.exepath pmatch (/srv/miner)) and user.uid = 1000",
    );
    assert_eq!(p.hook, Hook::Exec);
    assert_eq!(p.action, Action::Kill);
    assert_eq!(
        p.paths,
        [
            exact("/usr/bin/xmrig"),
            exact("/opt/x"),
            prefix("/tmp/"),
            exact("/srv/miner"),
            prefix("/srv/miner/"),
        ]
    );
    assert_eq!(p.uids, [1000]);
    assert!(p.exe.is_empty() && p.nets.is_empty() && p.protocol.is_none());
    // proc.exe is argv[0]: accepted with absolute paths, checked on the executed file.
    let p = plan("kill", "evt.type = execve and proc.exe = /tmp/x");
    assert_eq!(p.paths, [exact("/tmp/x")]);
    error_has(
        "kill",
        "evt.type = execve and proc.exe = nc",
        &["proc.exe is argv[0]", "not 'nc' (or use proc.exepath)"],
    );
    error_has(
        "kill",
        "evt.type = execve and proc.exepath startswith anyof (/tmp/, bin)",
        &["the kernel compares resolved absolute paths: 'bin' is not one"],
    );
    let p = plan(
        "kill",
        "evt.type = execve and proc.exepath startswith anyof (/tmp/, /dev/shm/)",
    );
    assert_eq!(p.paths, [prefix("/tmp/"), prefix("/dev/shm/")]);
    let p = plan(
        "kill",
        "evt.type = execve and proc.exepath = anyof (/a, /b)",
    );
    assert_eq!(p.paths, [exact("/a"), exact("/b")]);
    error_has(
        "kill",
        "evt.type = execve and proc.exepath startswith allof (/a, /b)",
        &["startswith allof cannot be enforced on proc.exepath"],
    );
    assert_eq!(
        error("kill", "evt.type = execve and user.uid = 0"),
        "rules.yaml:3:15: rule 'R': cannot enforce in the kernel: an execve rule must name the \
         executed files (proc.exepath =, in, startswith or pmatch): killing every program start \
         is too broad"
    );
    error_has(
        "kill",
        "evt.type = execve and fd.name = /x",
        &["fd.name cannot be enforced on execve rules"],
    );
}

#[test]
fn open_write_plan() {
    let p = plan(
        "kill",
        "evt.type in (open, openat, openat2) and evt.is_open_write = true \
         and (fd.name in (/etc/ld.so.preload, /etc/passwd) or fd.name startswith /etc/cron.d/ \
         or fd.directory = /etc/sudoers.d) and proc.exepath startswith /tmp/ and user.uid = 33",
    );
    assert_eq!(p.hook, Hook::OpenWrite);
    assert_eq!(
        p.paths,
        [
            exact("/etc/ld.so.preload"),
            exact("/etc/passwd"),
            prefix("/etc/cron.d/"),
            prefix("/etc/sudoers.d/"),
        ]
    );
    assert_eq!(p.exe, [prefix("/tmp/")]);
    assert_eq!(p.uids, [33]);
    // creat always writes.
    let p = plan("kill", "evt.type = creat and fd.directory in (/, /root)");
    assert_eq!(p.paths, [prefix("/")]);
    // Without the write restriction, the plan would kill readers too.
    assert_eq!(
        error("kill", "evt.type = openat and fd.name = /etc/shadow"),
        "rules.yaml:3:15: rule 'R': cannot enforce in the kernel: \"evt.type = openat\" (an open \
         rule must be limited to opens for writing: add `evt.is_open_write = true`) (condition \
         column 1)"
    );
    error_has(
        "kill",
        "evt.type = openat and evt.is_open_write = true",
        &["an open rule must name the files"],
    );
    error_has(
        "kill",
        "evt.type = openat and evt.is_open_write = false and fd.name = /x",
        &["enforce it as `evt.is_open_write = true`"],
    );
    // Falco's open_write macro tests what only exists once the open returned.
    error_has(
        "kill",
        "evt.type = openat and evt.is_open_write = true and fd.typechar = 'f' and fd.num >= 0 \
         and fd.name = /x",
        &["\"fd.typechar = 'f'\" (fd.typechar is only known once the open has returned"],
    );
    error_has(
        "kill",
        "evt.type = openat and evt.is_open_write = true and fd.name = etc/x",
        &["'etc/x' is not one"],
    );
    error_has(
        "deny",
        "evt.type = connect and evt.is_open_write = true",
        &["evt.is_open_write cannot be enforced on connect rules"],
    );
}

#[test]
fn scope_by_uid_and_executable() {
    let p = plan(
        "deny",
        "evt.type = connect and user.uid in (1000, 1001) and proc.exepath in (/usr/bin/curl, \
         /usr/bin/wget) and fd.sport = 25",
    );
    assert_eq!(p.uids, [1000, 1001]);
    assert_eq!(p.exe, [exact("/usr/bin/curl"), exact("/usr/bin/wget")]);
    assert!(p.paths.is_empty());
    error_has(
        "deny",
        "evt.type = connect and user.uid = -1",
        &["'-1' is not a numeric uid"],
    );
    error_has(
        "deny",
        "evt.type = connect and user.name = root",
        &["user.name is not available in the kernel: use user.uid"],
    );
    error_has(
        "deny",
        "evt.type = connect and proc.pexepath = /usr/bin/bash",
        &["proc.pexepath is not available in the kernel"],
    );
}

#[test]
fn what_cannot_be_enforced_is_a_load_error_at_its_test() {
    // The example of the documentation, with its position.
    assert_eq!(
        error("kill", "evt.type = execve and proc.cmdline contains xmrig"),
        "rules.yaml:3:37: rule 'R': cannot enforce in the kernel: \"proc.cmdline contains xmrig\" \
         (proc.cmdline is not available in the kernel; enforceable on execve rules: evt.type, \
         proc.exepath/proc.exe (the executed file), user.uid, k8s.ns.name, k8s.pod.label[key]) (condition column 23)"
    );
    assert_eq!(
        error("deny", "evt.type = connect and not fd.sport = 22"),
        "rules.yaml:3:38: rule 'R': cannot enforce in the kernel: \"not fd.sport = 22\" (`not` \
         cannot be enforced: the kernel maps list what to match, not what to exclude; narrow the \
         other tests instead) (condition column 24)"
    );
    error_has(
        "deny",
        "evt.type = connect and not (fd.sport = 22 or fd.sport = 23)",
        &["\"not (fd.sport = 22 or fd.sport = 23)\" (`not` cannot be enforced"],
    );
    assert_eq!(
        error(
            "deny",
            "evt.type = connect and (fd.sport = 22 or fd.sip = 10.0.0.1)"
        ),
        "rules.yaml:3:56: rule 'R': cannot enforce in the kernel: \"fd.sip = 10.0.0.1\" (`or` can \
         only join tests of the same field in the kernel, not the destination port and the \
         destination address; write one rule per alternative) (condition column 42)"
    );
    error_has(
        "deny",
        "(evt.type = connect and fd.sport = 1) or (evt.type = connect and fd.sport = 2)",
        &[
            "rules.yaml:3:16:",
            "\"evt.type = connect and fd.sport = 1\" (`or` between `and`s cannot be enforced",
        ],
    );
    error_has(
        "deny",
        "evt.type = connect or fd.sport = 1",
        &["not evt.type and fd.sport"],
    );
    error_has(
        "kill",
        "evt.type = execve and container.id != host and proc.exepath = /x",
        &[
            "container.id cannot scope enforcement; the kernel scopes rules by workload with \
           k8s.ns.name and k8s.pod.label[key] (= or in)",
        ],
    );
    error_has(
        "kill",
        "evt.type = execve and k8s.ns.name startswith team and proc.exepath = /x",
        &["startswith cannot be enforced on k8s.ns.name; use = or in (names)"],
    );
    error_has(
        "deny",
        "evt.type = connect and (k8s.pod.label[app] = a or k8s.pod.label[tier] = b)",
        &["`or` can only join tests of the same field"],
    );
    error_has(
        "deny",
        "evt.type = connect and fd.sport > 1024",
        &["\"fd.sport > 1024\" (> cannot be enforced on fd.sport; use = or in (port numbers))"],
    );
    error_has(
        "kill",
        "evt.type = execve and proc.name = xmrig",
        &["proc.name is not available in the kernel"],
    );
    error_has(
        "kill",
        "evt.type = execve and proc.exepath contains xmrig",
        &["contains cannot be enforced on proc.exepath; use =, in, startswith or pmatch"],
    );
    error_has(
        "kill",
        "evt.type = execve and tolower(proc.exepath) = /x",
        &["tolower() cannot be enforced in the kernel"],
    );
    error_has(
        "kill",
        "evt.type = execve and proc.exepath = val(proc.pexepath)",
        &["comparing two fields cannot be enforced"],
    );
    error_has(
        "kill",
        "evt.type = execve and foo.bar = 1 and proc.exepath = /x",
        &["\"foo.bar = 1\" (unknown field foo.bar)"],
    );
    error_has(
        "kill",
        "evt.type = execve and thread.cap_effective contains CAP_SYS_ADMIN",
        &["field thread.cap_effective is not supported yet"],
    );
    error_has(
        "deny",
        "evt.dir = > and evt.type = connect",
        &["evt.dir is always < in Vigil"],
    );
    error_has(
        "deny",
        "evt.type = connect and fd.port = 22",
        &["fd.port matches either end of the socket; name the end"],
    );
    error_has(
        "kill",
        "evt.type = execve and evt.res = SUCCESS and proc.exepath = /x",
        &["evt.res is the call's result, only known once it has returned"],
    );
}

#[test]
fn the_hook_comes_from_evt_type() {
    assert_eq!(
        error("deny", "fd.sport = 3333"),
        "rules.yaml:3:15: rule 'R': cannot enforce in the kernel: the condition must select what \
         to enforce with evt.type (connect, sendto, sendmsg, sendmmsg, bind, execve, execveat, \
         open, openat, openat2, creat)"
    );
    error_has(
        "kill",
        "evt.type in (execve, ptrace) and proc.exepath = /x",
        &["evt.type ptrace cannot be enforced in the kernel"],
    );
    // A type excluded by another evt.type test does not count.
    let p = plan(
        "kill",
        "evt.type in (execve, ptrace) and evt.type = execve and proc.exepath = /x",
    );
    assert_eq!(p.hook, Hook::Exec);
    assert_eq!(
        error("deny", "evt.type in (connect, execve)"),
        "rules.yaml:3:15: rule 'R': cannot enforce in the kernel: \"evt.type in (connect, \
         execve)\" (evt.types connect and execve need different kernel hooks (connect and exec): \
         write one rule per hook) (condition column 1)"
    );
    error_has(
        "deny",
        "evt.type = connect and evt.type = bind",
        &["\"evt.type = bind\" (the evt.type tests exclude every type"],
    );
    error_has(
        "deny",
        "evt.type != connect",
        &["evt.type is enforced with = or in only"],
    );
}

#[test]
fn action_must_fit_the_hook() {
    assert_eq!(
        error("deny", "evt.type = execve and proc.exepath = /tmp/x"),
        "rules.yaml:6:11: rule 'R': cannot enforce in the kernel: action deny applies to \
         connect, sendto/sendmsg and bind rules; this execve rule can take action kill"
    );
    assert_eq!(
        error("kill", "evt.type = connect and fd.sport = 22"),
        "rules.yaml:6:11: rule 'R': cannot enforce in the kernel: action kill applies to execve \
         and open-for-writing rules; this connect rule can take action deny"
    );
}

#[test]
fn errors_in_macros_and_folded_conditions_point_at_the_test() {
    let yaml = "\
- macro: miner
  condition: proc.cmdline contains xmrig
- rule: Block miners
  desc: d
  condition: >
    evt.type = execve and
    proc.exepath startswith /tmp/ and miner
  output: o
  priority: ERROR
  action: kill
";
    let e = try_load(yaml).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "rules.yaml:2:14: macro 'miner' (used by rule 'Block miners'): cannot enforce in the \
             kernel: \"proc.cmdline contains xmrig\""
        ),
        "{e}"
    );
    let yaml = yaml.replace("and miner", "and\n    proc.name = x");
    let e = try_load(&yaml).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "rules.yaml:8:5: rule 'Block miners': cannot enforce in the kernel: \"proc.name = x\""
        ),
        "{e}"
    );
}

#[test]
fn exceptions_and_sources_cannot_be_enforced() {
    let text = format!(
        "{}  exceptions:\n    - name: ok\n      fields: [proc.exepath]\n      values: [[/usr/bin/ssh]]\n",
        yaml("deny", "evt.type = connect and fd.sport = 22")
    );
    let e = try_load(&text).unwrap_err().to_string();
    assert_eq!(
        e,
        "rules.yaml:1:3: rule 'R': cannot enforce in the kernel: exception 'ok' cannot be \
         enforced: an exception is a `not`, and the kernel maps list what to match, not what to \
         exclude"
    );
    // An exception without values yet is no condition.
    let text = format!(
        "{}  exceptions:\n    - name: ok\n      fields: [proc.exepath]\n",
        yaml("deny", "evt.type = connect and fd.sport = 22")
    );
    assert_eq!(load_ok(&text).enforcement().len(), 1);
    let text = format!(
        "{}  source: k8s_audit\n",
        yaml("deny", "evt.type = connect")
    );
    let e = try_load(&text).unwrap_err().to_string();
    assert!(e.contains("source k8s_audit cannot be enforced"), "{e}");
}

#[test]
fn action_and_mode_values() {
    let e = try_load(&yaml("block", "evt.type = connect"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "rules.yaml:1:3: rule 'R': 'action' must be deny, kill or none"
    );
    let e = try_load(&format!(
        "{}  mode: dry-run\n",
        yaml("deny", "evt.type = connect")
    ))
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "rules.yaml:1:3: rule 'R': 'mode' must be enforce or audit"
    );
    // `none` (the default) is an ordinary detection rule.
    let rs = load_ok(&yaml("none", "evt.type = connect and proc.name = bash"));
    assert!(rs.enforcement().is_empty());
    assert_eq!(rs.rules()[0].enforcement, None);
    assert_eq!(fired(&rs, &connect("10.0.0.5:40000", "10.0.0.9:80")), ["R"]);
    // `mode` without an action is a warning.
    let rs = load_ok(&format!(
        "{}  mode: audit\n",
        yaml("none", "evt.type = connect")
    ));
    assert_eq!(
        rs.rules()[0].warnings,
        ["'mode' has no effect on a rule without 'action'"]
    );
}

#[test]
fn audit_mode() {
    let rs = load_ok(&format!(
        "{}  mode: audit\n",
        yaml("deny", "evt.type = connect and fd.sport = 3333")
    ));
    assert_eq!(rs.enforcement()[0].mode, Mode::Audit);
    let info = &rs.rules()[0];
    assert_eq!(
        info.enforcement,
        Some((Action::Deny, Mode::Audit, Hook::Connect))
    );
    assert!(info.enabled && info.disabled_reason.is_none());
}

#[test]
fn append_and_override_of_action_and_mode() {
    let base = "\
- rule: Miner pool
  desc: d
  condition: evt.type = connect and fd.sport in (3333, 4444)
  output: o
  priority: ERROR
";
    // A detection rule made enforcing by a later file.
    let enforce = "\
- rule: Miner pool
  action: deny
  mode: audit
  override:
    action: replace
    mode: replace
";
    let files = |texts: &[&str]| -> Vec<vigil_rules::RuleFile> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| vigil_rules::RuleFile {
                name: format!("f{i}.yaml"),
                text: t.to_string(),
            })
            .collect()
    };
    let rs = vigil_rules::load(&files(&[base, enforce]), &all_types()).unwrap();
    assert_eq!(
        rs.rules()[0].enforcement,
        Some((Action::Deny, Mode::Audit, Hook::Connect))
    );
    // ... then switched to enforcing, then back to detection only.
    let strict = "- rule: Miner pool\n  mode: enforce\n  override:\n    mode: replace\n";
    let rs = vigil_rules::load(&files(&[base, enforce, strict]), &all_types()).unwrap();
    assert_eq!(rs.enforcement()[0].mode, Mode::Enforce);
    let off = "- rule: Miner pool\n  action: none\n  override:\n    action: replace\n";
    let rs = vigil_rules::load(&files(&[base, enforce, off]), &all_types()).unwrap();
    assert!(rs.enforcement().is_empty());
    assert_eq!(rs.rules()[0].enforcement, None);
    assert_eq!(rs.enabled_count(), 1);
    // An appended condition is lowered with the rest.
    let narrow = "\
- rule: Miner pool
  condition: and fd.sip = 10.0.0.1
  override:
    condition: append
";
    let rs = vigil_rules::load(&files(&[base, enforce, narrow]), &all_types()).unwrap();
    assert_eq!(rs.enforcement()[0].nets, [net("10.0.0.1/32")]);
    let narrow = narrow.replace("fd.sip", "proc.name");
    let e = vigil_rules::load(&files(&[base, enforce, &narrow]), &all_types()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("f2.yaml:2:18: rule 'Miner pool': cannot enforce in the kernel: \"proc.name = 10.0.0.1\""),
        "{e}"
    );
    // The action error points at the item that set the action.
    let exec = "- rule: Miner pool\n  condition: evt.type = execve and proc.exepath = /x\n  override:\n    condition: replace\n";
    let e = vigil_rules::load(&files(&[base, enforce, exec]), &all_types()).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "f1.yaml:2:11: rule 'Miner pool': cannot enforce in the kernel: action deny applies to"
        ),
        "{e}"
    );
    // `action` cannot be appended, and needs its `override` entry.
    let e = vigil_rules::load(
        &files(&[
            base,
            "- rule: Miner pool\n  action: deny\n  override:\n    action: append\n",
        ]),
        &all_types(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("'override' cannot append 'action'"),
        "{e}"
    );
    let e = vigil_rules::load(
        &files(&[
            base,
            "- rule: Miner pool\n  action: deny\n  priority: INFO\n  override:\n    priority: replace\n",
        ]),
        &all_types(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("key 'action' is given without an entry for it under 'override'"),
        "{e}"
    );
    // Old-style append ignores it, with a warning.
    let rs = vigil_rules::load(
        &files(&[
            base,
            "- rule: Miner pool\n  condition: and fd.sip = 10.0.0.1\n  action: deny\n  append: true\n",
        ]),
        &all_types(),
    )
    .unwrap();
    assert!(rs.enforcement().is_empty());
    assert!(
        rs.warnings()
            .iter()
            .any(|w| w.contains("'action' is ignored on an 'append: true' rule")),
        "{:?}",
        rs.warnings()
    );
    // Not an enable/disable item: a new definition, which lacks its condition.
    let e = vigil_rules::load(
        &files(&[
            base,
            "- rule: Miner pool\n  enabled: true\n  action: deny\n",
        ]),
        &all_types(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("missing required key 'condition'"),
        "{e}"
    );
    // A redefinition without action is a detection rule again.
    let rs = vigil_rules::load(&files(&[base, enforce, base]), &all_types()).unwrap();
    assert!(rs.enforcement().is_empty());
}

#[test]
fn evaluate_skips_enforced_rules() {
    let yaml = "\
- rule: Block pool
  desc: d
  condition: evt.type = connect and fd.sport = 3333
  output: blocked connect to %fd.sip:%fd.sport by %proc.name
  priority: CRITICAL
  tags: [network]
  action: deny
- rule: Any connect
  desc: d
  condition: evt.type = connect
  output: o
  priority: INFO
- rule: Kill tmp
  desc: d
  condition: evt.type = execve and proc.exepath startswith /tmp/
  output: o
  priority: INFO
  action: kill
";
    let rs = load_ok(yaml);
    let event = connect("10.0.0.5:40000", "10.0.0.9:3333");
    assert_eq!(fired(&rs, &event), ["Any connect"]);
    assert!(fired(&rs, &exec("x", "/tmp/x", &["/tmp/x"], "/")).is_empty());
    assert_eq!(rs.enabled_count(), 3);
    assert_eq!(rs.enforcement().len(), 2);
    // Only the evaluated rule needs a sensor.
    assert_eq!(rs.event_types(), ["connect"]);
    // The kernel reports plan 0: the agent renders its alert.
    let proc = proc_info();
    let anc = ancestry();
    let ctx = vigil_rules::EvalContext {
        event: &event,
        proc: Some(&proc),
        ancestry: &anc,
        names: &Names,
        container: None,
        pod: None,
    };
    let a = rs.enforcement_alert(0, &ctx).unwrap();
    assert_eq!(a.rule, "Block pool");
    assert_eq!(a.priority, Priority::Critical);
    assert_eq!(a.output, "blocked connect to 10.0.0.9:3333 by bash");
    assert_eq!(a.tags, ["network"]);
    assert!(rs.enforcement_alert(2, &ctx).is_none());
}

#[test]
fn rule_info_for_rules_check() {
    let text = format!(
        "{}{}",
        yaml("deny", "evt.type = connect"),
        "\
- rule: Off
  desc: d
  condition: evt.type = execve and proc.exepath = /x
  output: o
  priority: INFO
  action: kill
  enabled: false
"
    );
    let rs = load_ok(&text);
    let r = &rs.rules()[0];
    assert_eq!(
        r.enforcement,
        Some((Action::Deny, Mode::Enforce, Hook::Connect))
    );
    assert_eq!(
        r.warnings,
        ["action deny applies to every connect of every process"]
    );
    let off = &rs.rules()[1];
    assert!(!off.enabled);
    assert_eq!(off.enforcement, None);
    assert_eq!(rs.enforcement().len(), 1);
    // A disabled rule with an action is still checked: enabling it later must not fail.
    let bad = text.replace("proc.exepath = /x", "proc.name = x");
    let e = try_load(&bad).unwrap_err().to_string();
    assert!(
        e.contains("rule 'Off': cannot enforce in the kernel"),
        "{e}"
    );
}

#[test]
fn observability_does_not_disable_enforced_rules() {
    // The kernel hooks do not depend on the sensors: no event type observed at all.
    let rs = vigil_rules::load(
        &[vigil_rules::RuleFile {
            name: "rules.yaml".into(),
            text: yaml("deny", "evt.type = sendto and fd.rport = 53"),
        }],
        &vigil_rules::LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(rs.enforcement()[0].hook, Hook::Sendmsg);
    assert!(rs.rules()[0].enabled);
}
