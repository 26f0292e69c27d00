//! The sidecar's one gate, in front of `/mcp` and the HUD alike: the `Host` check against DNS
//! rebinding, the `Origin` check against other sites, and the bearer token. Hosts and origins
//! are compared as authorities (name and port, IPv6 brackets removed, case ignored): a listed
//! name without a port accepts any port, `name:port` that port only. A request's own origin
//! (the page's form posting back to the host it was served from) is always accepted. The HUD's
//! browser keeps a session value derived from the token in a cookie, never the token itself.

use crate::secret::Secret;
use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

/// Who may pass: the hosts and origins served, and the bearer token when one is set.
#[derive(Debug, Clone)]
pub struct Gate {
    pub token: Option<Secret>,
    pub hosts: Vec<String>,
    pub origins: Vec<String>,
}

/// Why a request may not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Host,
    Origin,
    Token,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Self::Host => "this Host is not served (CIWATCH_HTTP_ALLOWED_HOSTS)",
            Self::Origin => "this Origin is not allowed (CIWATCH_HTTP_ALLOWED_ORIGINS)",
            Self::Token => "missing or wrong bearer token (CIWATCH_HTTP_TOKEN)",
        }
    }
}

/// A host and its port, as compared.
#[derive(Debug, PartialEq, Eq)]
struct Authority {
    name: String,
    port: Option<u16>,
}

impl Authority {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (name, port) = match text.strip_prefix('[') {
            Some(v6) => {
                let (name, rest) = v6.split_once(']')?;
                (name, rest.strip_prefix(':'))
            }
            None => match text.rsplit_once(':') {
                Some((name, port)) if !name.contains(':') => (name, Some(port)),
                _ => (text, None),
            },
        };
        let port = match port {
            Some(port) => Some(port.parse().ok()?),
            None => None,
        };
        (!name.is_empty()).then(|| Self {
            name: name.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether `self`, a listed entry, admits `given`: the same name, and the same port when
    /// the entry names one.
    fn admits(&self, given: &Authority) -> bool {
        self.name == given.name && self.port.is_none_or(|port| given.port == Some(port))
    }
}

impl Gate {
    /// The `Host` and `Origin` checks.
    pub fn admits(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(Authority::parse)
            .ok_or(Refusal::Host)?;
        if !self
            .hosts
            .iter()
            .filter_map(|h| Authority::parse(h))
            .any(|allowed| allowed.admits(&host))
        {
            return Err(Refusal::Host);
        }
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            // A navigation, or a client that is not a browser.
            return Ok(());
        };
        if self.origin_allowed(origin, &host) {
            Ok(())
        } else {
            Err(Refusal::Origin)
        }
    }

    /// One of the listed origins (`:*` for any port), or the request's own.
    fn origin_allowed(&self, origin: &str, host: &Authority) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        let Some(given) = Authority::parse(authority) else {
            return false;
        };
        let default_port = match scheme {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        };
        let same_origin =
            given.name == host.name && given.port.or(default_port) == host.port.or(default_port);
        same_origin
            || self.origins.iter().any(|allowed| {
                let Some((allowed_scheme, rest)) = allowed.split_once("://") else {
                    return false;
                };
                if !allowed_scheme.eq_ignore_ascii_case(scheme) {
                    return false;
                }
                match rest.strip_suffix(":*") {
                    Some(name) => Authority::parse(name).is_some_and(|a| a.name == given.name),
                    None => Authority::parse(rest).is_some_and(|a| {
                        a.name == given.name
                            && a.port.or(default_port) == given.port.or(default_port)
                    }),
                }
            })
    }

    /// Whether the request holds the token: as `Authorization: Bearer`, or (where a browser
    /// comes back with it) as the session cookie `cookie` names.
    pub fn holds_token(&self, headers: &HeaderMap, cookie: Option<&str>) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let bearer = bearer(headers)
            .is_some_and(|given| constant_time_eq(given.as_bytes(), expected.expose().as_bytes()));
        let session = cookie
            .and_then(|name| cookie_value(headers, name))
            .is_some_and(|given| {
                constant_time_eq(given.as_bytes(), session_value(expected).as_bytes())
            });
        bearer || session
    }

    /// Whether `given` is the token (a browser's one-time `?token=`).
    pub fn is_token(&self, given: &str) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| constant_time_eq(given.as_bytes(), t.expose().as_bytes()))
    }

    /// The session cookie's value for this gate's token: derived from it, never the token.
    pub fn session(&self) -> Option<String> {
        self.token.as_ref().map(session_value)
    }
}

fn session_value(token: &Secret) -> String {
    let digest = Sha256::digest(format!("ciwatch-hud-session\0{}", token.expose()).as_bytes());
    crate::text::hex(&digest)
}

/// Whether the request came over HTTPS (directly, or as a proxy in front of it says), so its
/// cookie is `Secure`.
pub fn over_https(headers: &HeaderMap, uri: &axum::http::Uri) -> bool {
    let forwarded = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    uri.scheme_str() == Some("https")
        || forwarded("x-forwarded-proto").is_some_and(|p| p.split(',').next() == Some("https"))
        || forwarded("forwarded").is_some_and(|f| f.contains("proto=https"))
}

/// The token a request presents as `Authorization: Bearer …`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Compares without an early exit, so response timing does not reveal a token prefix.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name, value.parse().expect("header value"));
        }
        map
    }

    fn gate(hosts: &[&str], origins: &[&str]) -> Gate {
        Gate {
            token: Some(Secret::new("s3cret")),
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            origins: origins.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn hosts_are_authorities_with_or_without_a_port() {
        let gate = gate(&["localhost", "::1", "ciwatch.example:8443"], &[]);
        for host in [
            "localhost",
            "localhost:8080",
            "[::1]:80",
            "ciwatch.example:8443",
        ] {
            assert_eq!(
                gate.admits(&headers(&[(header::HOST, host)])),
                Ok(()),
                "{host}"
            );
        }
        for host in [
            "ciwatch.example",
            "ciwatch.example:9999",
            "evil.example",
            "",
        ] {
            assert_eq!(
                gate.admits(&headers(&[(header::HOST, host)])),
                Err(Refusal::Host),
                "{host}"
            );
        }
        assert_eq!(gate.admits(&HeaderMap::new()), Err(Refusal::Host));
    }

    #[test]
    fn origins_listed_or_the_pages_own() {
        let gate = gate(
            &["localhost", "ciwatch.example:8443"],
            &["http://localhost:*", "https://app.example"],
        );
        let with = |host: &str, origin: &str| {
            gate.admits(&headers(&[(header::HOST, host), (header::ORIGIN, origin)]))
        };
        assert_eq!(with("localhost:8080", "http://localhost:3000"), Ok(()));
        assert_eq!(with("localhost:8080", "https://app.example:443"), Ok(()));
        assert_eq!(
            with("ciwatch.example:8443", "https://ciwatch.example:8443"),
            Ok(())
        );
        assert_eq!(
            with("localhost:8080", "https://evil.example"),
            Err(Refusal::Origin)
        );
        assert_eq!(
            with("localhost:8080", "https://app.example:8443"),
            Err(Refusal::Origin)
        );
        assert_eq!(with("localhost:8080", "null"), Err(Refusal::Origin));
        assert_eq!(
            with("localhost:8080", "http://localhost.evil:3000"),
            Err(Refusal::Origin)
        );
    }

    #[test]
    fn the_session_cookie_is_derived_from_the_token_and_stands_for_it() {
        let gate = gate(&["localhost"], &[]);
        let session = gate.session().expect("a token is set");
        assert!(!session.contains("s3cret"));
        let cookie = format!("other=1; ciwatch_hud={session}");
        let with_cookie = headers(&[(header::COOKIE, &cookie)]);
        assert!(gate.holds_token(&with_cookie, Some("ciwatch_hud")));
        assert!(!gate.holds_token(&with_cookie, None), "not on /mcp");
        let raw = headers(&[(header::COOKIE, "ciwatch_hud=s3cret")]);
        assert!(!gate.holds_token(&raw, Some("ciwatch_hud")));
        let bearer = headers(&[(header::AUTHORIZATION, "Bearer s3cret")]);
        assert!(gate.holds_token(&bearer, None));
    }

    #[test]
    fn https_is_seen_directly_or_through_a_proxy() {
        let uri: axum::http::Uri = "/hud".parse().expect("uri");
        assert!(!over_https(&HeaderMap::new(), &uri));
        let proxied = headers(&[(
            header::HeaderName::from_static("x-forwarded-proto"),
            "https",
        )]);
        assert!(over_https(&proxied, &uri));
        let forwarded = headers(&[(header::FORWARDED, "for=1.2.3.4;proto=https")]);
        assert!(over_https(&forwarded, &uri));
    }
}
