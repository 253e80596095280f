//! User and group names from the host's /etc/passwd and /etc/group, for `user.name` and
//! `group.name` in rules and alerts. Read at start and on reload, never per event.

use std::collections::HashMap;
use std::path::Path;

/// uid/gid -> name maps.
#[derive(Debug, Default, Clone)]
pub struct UserDb {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl UserDb {
    /// Reads `<root>/etc/passwd` and `<root>/etc/group`; missing files give empty maps.
    pub fn load(root: &Path) -> UserDb {
        UserDb {
            users: parse(&std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default()),
            groups: parse(&std::fs::read_to_string(root.join("etc/group")).unwrap_or_default()),
        }
    }

    pub fn user(&self, uid: u32) -> Option<&str> {
        self.users.get(&uid).map(String::as_str)
    }

    pub fn group(&self, gid: u32) -> Option<&str> {
        self.groups.get(&gid).map(String::as_str)
    }
}

/// `name:x:id:...` lines; the first name for an id wins, as getpwuid does.
fn parse(text: &str) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.split(':');
        let (Some(name), Some(_), Some(id)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if let Ok(id) = id.parse() {
            out.entry(id).or_insert_with(|| name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n# c\nbad\nnobody:x:65534:65534::/:/bin/false\ntoor:x:0:0::/:/bin/sh\n").unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\n",
        )
        .unwrap();
        let db = UserDb::load(dir.path());
        assert_eq!(db.user(0), Some("root"));
        assert_eq!(db.user(65534), Some("nobody"));
        assert_eq!(db.group(65534), Some("nogroup"));
        assert_eq!(db.user(1), None);
    }
}
