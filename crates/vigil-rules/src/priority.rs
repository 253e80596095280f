//! Rule priorities, Falco's syslog-like scale.

use std::fmt;

use serde::Serialize;

/// How severe a rule's alert is, most severe first (so `Ord` sorts by severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Priority {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

impl Priority {
    /// Parses Falco's spellings case-insensitively; `info` is accepted for `Informational`.
    pub fn parse(s: &str) -> Option<Priority> {
        const NAMES: &[(&str, Priority)] = &[
            ("emergency", Priority::Emergency),
            ("alert", Priority::Alert),
            ("critical", Priority::Critical),
            ("error", Priority::Error),
            ("warning", Priority::Warning),
            ("notice", Priority::Notice),
            ("informational", Priority::Informational),
            ("info", Priority::Informational),
            ("debug", Priority::Debug),
        ];
        let s = s.trim();
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(_, p)| *p)
    }

    /// The name as Falco writes it in alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Priority;

    #[test]
    fn parses_falco_spellings() {
        assert_eq!(Priority::parse("WARNING"), Some(Priority::Warning));
        assert_eq!(Priority::parse("info"), Some(Priority::Informational));
        assert_eq!(Priority::parse("INFO"), Some(Priority::Informational));
        assert_eq!(
            Priority::parse("Informational"),
            Some(Priority::Informational)
        );
        assert_eq!(Priority::parse("emergency"), Some(Priority::Emergency));
        assert_eq!(Priority::parse("crit"), None);
        assert_eq!(
            serde_json::to_string(&Priority::Critical).unwrap(),
            "\"Critical\""
        );
        assert!(Priority::Emergency < Priority::Debug);
    }
}
