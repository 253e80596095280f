//! Bearer tokens for the API, each mapped to the Kubernetes namespaces its holder may see.
//!
//! No tokens configured means an open API (a single-tenant host). Once any token is configured,
//! every endpoint but the liveness and readiness probes needs one.

use serde::Deserialize;

/// One API client as configured under `api.tokens`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who this is, for logs.
    pub name: String,
    /// The secret itself; or `token_file`, read at start (so secrets stay out of the config).
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_file: Option<std::path::PathBuf>,
    /// Namespaces this client may see; absent: everything (an administrator).
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
}

/// What a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Only events, alerts and map nodes of pods in these namespaces.
    Namespaces(Vec<String>),
}

#[derive(Debug, Clone)]
struct Tenant {
    token: Vec<u8>,
    scope: Scope,
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    tenants: Vec<Tenant>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("a token is required")]
    Missing,
    #[error("the token is not valid")]
    Invalid,
}

impl Auth {
    /// Checks and loads the tokens; errors name the entry (`api.tokens[i]`).
    pub fn from_config(tokens: &[TokenConfig]) -> Result<Auth, String> {
        let mut tenants: Vec<Tenant> = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            let at = format!("api.tokens[{i}] ({})", t.name);
            let token = match (&t.token, &t.token_file) {
                (Some(s), None) => s.clone(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|e| format!("{at}: reading token_file {}: {e}", path.display()))?
                    .trim()
                    .to_string(),
                _ => {
                    return Err(format!(
                        "{at}: give exactly one of `token` and `token_file`"
                    ))
                }
            };
            if token.len() < 16 {
                return Err(format!("{at}: a token must be at least 16 characters"));
            }
            if tenants.iter().any(|x| x.token == token.as_bytes()) {
                return Err(format!("{at}: the same token is given twice"));
            }
            let scope = match &t.namespaces {
                None => Scope::All,
                Some(ns) if ns.is_empty() => {
                    return Err(format!(
                        "{at}: `namespaces` is empty; leave it out for access to everything"
                    ))
                }
                Some(ns) => Scope::Namespaces(ns.clone()),
            };
            tenants.push(Tenant {
                token: token.into_bytes(),
                scope,
            });
        }
        Ok(Auth { tenants })
    }

    pub fn enabled(&self) -> bool {
        !self.tenants.is_empty()
    }

    /// The scope of the presented token.
    pub fn scope(&self, token: Option<&str>) -> Result<Scope, AuthError> {
        if self.tenants.is_empty() {
            return Ok(Scope::All);
        }
        let token = token.ok_or(AuthError::Missing)?.as_bytes();
        // Every candidate is compared in full, so timing says nothing about which bytes matched.
        let mut found = None;
        for t in &self.tenants {
            if constant_time_eq(&t.token, token) {
                found = Some(t.scope.clone());
            }
        }
        found.ok_or(AuthError::Invalid)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, token: &str, ns: Option<&[&str]>) -> TokenConfig {
        TokenConfig {
            name: name.into(),
            token: Some(token.into()),
            token_file: None,
            namespaces: ns.map(|n| n.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn tokens_map_to_scopes() {
        let auth = Auth::from_config(&[
            cfg("admin", "admin-token-0123456789", None),
            cfg("a", "tenant-a-token-0123456789", Some(&["team-a"])),
        ])
        .unwrap();
        assert_eq!(auth.scope(Some("admin-token-0123456789")), Ok(Scope::All));
        assert_eq!(
            auth.scope(Some("tenant-a-token-0123456789")),
            Ok(Scope::Namespaces(vec!["team-a".into()]))
        );
        assert_eq!(auth.scope(None), Err(AuthError::Missing));
        assert_eq!(
            auth.scope(Some("tenant-a-token-012345678")),
            Err(AuthError::Invalid)
        );
        assert_eq!(Auth::default().scope(None), Ok(Scope::All));
    }

    #[test]
    fn bad_entries_are_named() {
        let e = Auth::from_config(&[cfg("x", "short", None)]).unwrap_err();
        assert!(e.starts_with("api.tokens[0] (x): a token must be"), "{e}");
        let e = Auth::from_config(&[cfg("x", "0123456789abcdefg", Some(&[]))]).unwrap_err();
        assert!(e.contains("`namespaces` is empty"), "{e}");
        let e = Auth::from_config(&[
            cfg("x", "0123456789abcdefg", None),
            cfg("y", "0123456789abcdefg", None),
        ])
        .unwrap_err();
        assert!(e.starts_with("api.tokens[1] (y)"), "{e}");
    }
}
