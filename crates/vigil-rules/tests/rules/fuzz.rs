//! Deterministic fuzzing: random and mutated conditions and YAML never panic the loader or the
//! evaluator (the cargo-fuzz target can reuse these generators).

use vigil_rules::{load, RuleFile};

use crate::common::*;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const TOKENS: &[&str] = &[
    "proc.name",
    "proc.aname[2]",
    "proc.aname",
    "fd.name",
    "evt.type",
    "evt.arg.flags",
    "evt.arg[0]",
    "proc.pid",
    "user.uid",
    "k8s.pod.label[app]",
    "fd.sip",
    "fd.ip",
    "fd.snet",
    "fd.sport",
    "fd.sip.name",
    "10.0.0.0/8",
    "::1",
    "\"::ffff:1.2.3.4\"",
    "connect",
    "accept4",
    "tolower(",
    "val(",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "intersects",
    "pmatch",
    "contains",
    "icontains",
    "startswith",
    "endswith",
    "glob",
    "iglob",
    "regex",
    "exists",
    "bcontains",
    "anyof",
    "and",
    "or",
    "not",
    "not(",
    "(",
    ")",
    "(",
    ")",
    ",",
    "[",
    "]",
    "bash",
    "\"a b\"",
    "'c'",
    "\"\\x4",
    "\"",
    "'",
    "\\",
    "0x1f",
    "-3",
    "1e+5",
    "shells",
    "m1",
    "m2",
    "execve",
    "openat",
    "/etc/*",
    "'[a-'",
    "'(('",
    "é",
    "\t",
    "\n",
    "%",
    "",
    " ",
];

const BASE: &str = r#"- list: shells
  items: [bash, sh, shells2]
- list: shells2
  items: [zsh]
- macro: m1
  condition: evt.type in (execve, openat) and proc.name in (shells)
- macro: m2
  condition: m1 or fd.name startswith /etc
- rule: R1
  desc: d
  condition: m2 and not proc.aname[2] = cron
  output: "%proc.name %fd.name %evt.arg.flags"
  priority: INFO
  exceptions:
    - name: e
      fields: [proc.name, proc.cwd]
      comps: [=, startswith]
      values: [[bash, /tmp]]
- rule: R1
  condition: and proc.pid > 1
  append: true
"#;

fn events() -> Vec<vigil_events::Event> {
    vec![
        exec("bash", "/usr/bin/bash", &["bash", "-c", "x"], "/tmp"),
        open("/etc/shadow", 0o1101),
        fork("sh"),
        exit("sh", Some(1), None),
        syscall(
            vigil_abi::VIGIL_SYS_DUP2,
            [3, 1, 0, 2, 80, 0],
            ["\u{1}\u{2}\u{3}\u{4}", "", ""],
            1,
        ),
        connect("10.0.0.5:40000", "[::1]:22"),
        accept("[::ffff:10.0.0.5]:80", "10.0.0.9:5000"),
        connect_failed("10.0.0.5:40000", "1.2.3.4:443", 0),
        udp("10.0.0.5:40001", "8.8.8.8:53"),
        packet_drop("NO_SOCKET", 1),
        capture(),
    ]
}

fn try_all(text: String) {
    let files = [RuleFile {
        name: "fuzz.yaml".into(),
        text,
    }];
    if let Ok(rs) = load(&files, &all_types()) {
        for e in events() {
            alerts(&rs, &e);
        }
    }
}

#[test]
fn random_conditions_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..4000 {
        let n = 1 + rng.below(12);
        let cond: Vec<&str> = (0..n).map(|_| rng.pick(TOKENS)).collect();
        let sep = if rng.below(4) == 0 { "" } else { " " };
        try_all(format!("{BASE}{}", rule(&cond.join(sep))));
    }
}

/// Tests of enforceable (and a few unenforceable) conditions, joined at random.
const ENFORCE_TESTS: &[&str] = &[
    "evt.type = connect",
    "evt.type in (sendto, sendmsg)",
    "evt.type = bind",
    "evt.type in (execve, execveat)",
    "evt.type in (open, openat)",
    "evt.type = creat",
    "evt.dir = <",
    "evt.is_open_write = true",
    "fd.rport in (3333, 4444)",
    "fd.sport = 70000",
    "fd.rnet in (\"10.0.0.0/8\", \"fd00::/8\")",
    "fd.sip = 10.1.2.3",
    "fd.lport = 22",
    "fd.lnet = \"0.0.0.0/0\"",
    "fd.l4proto = udp",
    "fd.l4proto = tcp",
    "proc.exepath startswith /tmp/",
    "proc.exepath pmatch (/opt)",
    "proc.exe = /usr/bin/nc",
    "fd.name in (/etc/passwd, /etc/shadow)",
    "fd.name startswith /etc/cron",
    "fd.directory = /etc",
    "user.uid in (0, 1000)",
    "proc.name = x",
    "container.id = host",
    "fd.sport > 1",
    "m1",
];

#[test]
fn random_enforced_conditions_never_panic() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut planned = 0;
    for i in 0..3000 {
        let mut cond = String::new();
        for j in 0..1 + rng.below(5) {
            if j > 0 {
                cond.push_str(rng.pick(&[" and ", " and ", " and ", " or ", " and not "]));
            }
            if rng.below(8) == 0 {
                cond.push_str(rng.pick(TOKENS));
            } else {
                cond.push_str(rng.pick(ENFORCE_TESTS));
            }
        }
        let action = if i % 2 == 0 { "deny" } else { "kill" };
        let text = format!("{BASE}{}  action: {action}\n", rule(&cond));
        let files = [RuleFile {
            name: "fuzz.yaml".into(),
            text: text.clone(),
        }];
        match load(&files, &all_types()) {
            Ok(rs) => {
                planned += rs.enforcement().len();
                for e in events() {
                    alerts(&rs, &e);
                }
            }
            Err(e) => {
                let lines = text.lines().count();
                for d in &e.errors {
                    assert!(d.line >= 1 && d.line <= lines + 1, "{d}");
                    let _ = d.to_string();
                }
            }
        }
    }
    assert!(
        planned > 20,
        "only {planned} random conditions were enforceable"
    );
}

#[test]
fn mutated_documents_never_panic() {
    let mut rng = Rng(42);
    let alphabet: Vec<char> = "-:[]{}()'\"#|>&*!%@,\n \t.abc0é".chars().collect();
    for _ in 0..1500 {
        let mut chars: Vec<char> = BASE.chars().collect();
        for _ in 0..1 + rng.below(6) {
            let i = rng.below(chars.len() + 1);
            match rng.below(4) {
                0 if i < chars.len() => {
                    chars.remove(i);
                }
                1 => chars.insert(i, alphabet[rng.below(alphabet.len())]),
                2 if i < chars.len() => chars[i] = alphabet[rng.below(alphabet.len())],
                _ => chars.truncate(i),
            }
        }
        try_all(chars.into_iter().collect());
    }
}

#[test]
fn hostile_nesting_is_bounded() {
    // Exponential macro expansion and deep nesting fail cleanly.
    let mut yaml = String::from("- macro: m0\n  condition: proc.pid = 1\n");
    for i in 1..40 {
        yaml.push_str(&format!(
            "- macro: m{i}\n  condition: m{} and m{}\n",
            i - 1,
            i - 1
        ));
    }
    yaml.push_str(&rule("m39"));
    let e = try_load(&yaml).unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");
    let deep = format!("{}proc.pid = 1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(try_load(&rule(&deep)).is_err());
    let nots = format!("{}proc.pid = 1", "not ".repeat(5000));
    assert!(try_load(&rule(&nots)).is_ok());
    // A long chain of macros, each using the next, and of lists in lists.
    let mut yaml = String::new();
    let mut lists = String::new();
    for i in 0..5000 {
        yaml.push_str(&format!("- macro: c{i}\n  condition: (c{})\n", i + 1));
        lists.push_str(&format!("- list: l{i}\n  items: [l{}]\n", i + 1));
    }
    yaml.push_str("- macro: c5000\n  condition: proc.pid = 1\n");
    let e = try_load(&format!("{yaml}{}", rule("c0"))).unwrap_err();
    assert!(e.to_string().contains("nests too deeply"), "{e}");
    let e = try_load(&format!("{lists}{}", rule("proc.name in (l0)"))).unwrap_err();
    assert!(e.to_string().contains("nests too deeply"), "{e}");
}
