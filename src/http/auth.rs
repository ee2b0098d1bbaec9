//! Bearer tokens and roles for `/api/v1`.
//!
//! Tokens come from `[[http.tokens]]` (each a name, a role and the token or its SHA-256).
//! A request's token is hashed and compared with every configured digest in constant time;
//! the token itself is never stored or logged. With no tokens configured the API is open
//! (and `http.listen` is loopback-only).

use super::ApiError;
use crate::config::{HttpConfig, Role};
use axum::http::{HeaderMap, header};
use sha2::Digest;

/// A configured token that does not resolve.
#[derive(Debug, thiserror::Error)]
#[error("http.tokens[{index}]: {message}")]
pub struct AuthError {
    pub index: usize,
    pub message: String,
}

/// Who is asking: the token's name and role, or anyone on loopback when the API is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `token:<name>`, or `None` when no tokens are configured.
    pub name: Option<String>,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct Auth {
    tokens: Vec<(String, Role, [u8; 32])>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
}

impl Default for Auth {
    /// No tokens (open API), 16 KiB bodies.
    fn default() -> Self {
        Auth {
            tokens: Vec::new(),
            max_body_bytes: 16 * 1024,
        }
    }
}

/// Without tokens anyone who reaches the loopback port is an admin, and so would be any web
/// page open in a browser on this host: through the browser (a cross-site form or image) or
/// through DNS rebinding (a hostile name resolving to 127.0.0.1). So an open API refuses
/// (403) requests that a browser marks as coming from another site (`Sec-Fetch-Site` other
/// than `same-origin` or `none`) and requests whose `Host` is not a loopback name.
/// Non-browser clients (curl, scripts) send no `Sec-Fetch-Site` and a loopback `Host`.
fn open_request_allowed(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return Err(ApiError::Forbidden(
            "cross-site request refused: without [[http.tokens]] the API answers only its own console and non-browser clients".into(),
        ));
    }
    let host = headers
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or_default());
    if let Some(host) = host
        && !loopback_host(host)
    {
        return Err(ApiError::Forbidden(format!(
            "Host '{host}' refused: without [[http.tokens]] the API answers loopback names only (localhost, 127.0.0.1, [::1])"
        )));
    }
    // A browser that sends no Sec-Fetch-Site (older ones) still sends Origin on a
    // cross-origin request: it must be this server's own origin.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let same = match (authority, host) {
            (Some(a), Some(h)) => a.eq_ignore_ascii_case(h),
            (Some(a), None) => loopback_host(a),
            (None, _) => false,
        };
        if !same {
            return Err(ApiError::Forbidden(format!(
                "Origin '{origin}' refused: without [[http.tokens]] the API answers only its own console and non-browser clients"
            )));
        }
    }
    Ok(())
}

/// Whether a `Host` header names this machine's loopback: `localhost` (or `*.localhost`),
/// `127.x.x.x` or `[::1]`, with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Equality that takes the same time wherever the inputs differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// From `[http]` (already validated: every token resolves).
    pub fn from_config(cfg: &HttpConfig) -> Result<Auth, AuthError> {
        let tokens = cfg
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.digest()
                    .map(|d| (t.name.clone(), t.role, d))
                    .map_err(|e| AuthError {
                        index: i,
                        message: e.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Auth {
            tokens,
            max_body_bytes: cfg.max_body_bytes,
        })
    }

    /// Whether tokens are required.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The caller of a request that needs at least `need`, or the refusal: 401 without a
    /// valid bearer token, 403 with one of a lower role (or a request the open API refuses).
    pub fn authorize(&self, headers: &HeaderMap, need: Role) -> Result<Caller, ApiError> {
        if self.tokens.is_empty() {
            open_request_allowed(headers)?;
            return Ok(Caller {
                name: None,
                role: Role::Admin,
            });
        }
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::Unauthorized(
                "missing Authorization: Bearer <token>".into(),
            ));
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .unwrap_or_default();
        let digest: [u8; 32] = sha2::Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (name, role, d) in &self.tokens {
            if same(d, &digest) {
                found = Some((name, *role));
            }
        }
        let Some((name, role)) = found else {
            return Err(ApiError::Unauthorized("unknown token".into()));
        };
        if role < need {
            return Err(ApiError::Forbidden(format!(
                "token '{name}' has role {}; this needs {}",
                role.as_str(),
                need.as_str()
            )));
        }
        Ok(Caller {
            name: Some(format!("token:{name}")),
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenConfig;
    use axum::http::StatusCode;

    fn headers(token: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(t) = token {
            h.insert(
                header::AUTHORIZATION,
                format!("Bearer {t}").parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn open_api_refuses_other_sites_and_foreign_hosts() {
        let open = Auth::default();
        let with = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(
                    header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            open.authorize(&h, Role::Admin)
                .map(|_| ())
                .map_err(|r| r.status())
        };
        for ok in [
            "127.0.0.1:8088",
            "localhost",
            "LOCALHOST:1",
            "[::1]:8088",
            "127.1.2.3",
            "a.localhost:9",
        ] {
            assert_eq!(with(&[("host", ok)]), Ok(()), "{ok}");
        }
        assert_eq!(with(&[]), Ok(()), "no Host (HTTP/1.0)");
        for bad in [
            "evil.example:8088",
            "192.168.1.2",
            "[2001:db8::1]:80",
            "localhost.evil.example",
        ] {
            assert_eq!(with(&[("host", bad)]), Err(StatusCode::FORBIDDEN), "{bad}");
        }
        assert_eq!(
            with(&[("host", "127.0.0.1"), ("sec-fetch-site", "same-origin")]),
            Ok(())
        );
        assert_eq!(
            with(&[("host", "127.0.0.1"), ("sec-fetch-site", "none")]),
            Ok(())
        );
        for (origin, host) in [
            ("http://127.0.0.1:8088", "127.0.0.1:8088"),
            ("http://LOCALHOST:8088", "localhost:8088"),
        ] {
            assert_eq!(
                with(&[("host", host), ("origin", origin)]),
                Ok(()),
                "{origin}"
            );
        }
        for (origin, host) in [
            ("http://evil.example", "127.0.0.1:8088"),
            ("http://127.0.0.1:9999", "127.0.0.1:8088"),
            ("null", "127.0.0.1:8088"),
            ("http://127.0.0.1:8088.evil.example", "127.0.0.1:8088"),
        ] {
            assert_eq!(
                with(&[("host", host), ("origin", origin)]),
                Err(StatusCode::FORBIDDEN),
                "{origin}"
            );
        }
        for site in ["cross-site", "same-site"] {
            assert_eq!(
                with(&[("host", "127.0.0.1"), ("sec-fetch-site", site)]),
                Err(StatusCode::FORBIDDEN),
                "{site}"
            );
        }
    }

    #[test]
    fn roles_and_tokens() {
        let viewer = "viewer-token-0123456789";
        let cfg = HttpConfig {
            tokens: vec![
                TokenConfig {
                    name: "vera".into(),
                    role: Role::Viewer,
                    token: Some(viewer.into()),
                    token_env: None,
                    token_sha256: None,
                },
                TokenConfig {
                    name: "mo".into(),
                    role: Role::Moderator,
                    token: None,
                    token_env: None,
                    // sha256("moderator-token-0123456789")
                    token_sha256: Some(hex::encode(sha2::Sha256::digest(
                        b"moderator-token-0123456789",
                    ))),
                },
            ],
            ..HttpConfig::default()
        };
        let auth = Auth::from_config(&cfg).unwrap();
        let code = |r: Result<Caller, ApiError>| r.err().map(|r| r.status().as_u16());
        assert_eq!(
            code(auth.authorize(&headers(None), Role::Viewer)),
            Some(401)
        );
        // The scheme is case-insensitive (RFC 7235).
        let mut lower = HeaderMap::new();
        lower.insert(
            header::AUTHORIZATION,
            format!("bearer {viewer}").parse().unwrap(),
        );
        assert!(auth.authorize(&lower, Role::Viewer).is_ok());
        assert_eq!(
            code(auth.authorize(&headers(Some("nope-nope-nope-nope")), Role::Viewer)),
            Some(401)
        );
        assert_eq!(
            auth.authorize(&headers(Some(viewer)), Role::Viewer)
                .unwrap()
                .name
                .as_deref(),
            Some("token:vera")
        );
        assert_eq!(
            code(auth.authorize(&headers(Some(viewer)), Role::Moderator)),
            Some(403)
        );
        let mo = auth
            .authorize(
                &headers(Some("moderator-token-0123456789")),
                Role::Moderator,
            )
            .unwrap();
        assert_eq!(
            (mo.name.as_deref(), mo.role),
            (Some("token:mo"), Role::Moderator)
        );
        assert_eq!(
            code(auth.authorize(&headers(Some("moderator-token-0123456789")), Role::Admin)),
            Some(403)
        );
        // No tokens: open.
        assert!(
            Auth::default()
                .authorize(&headers(None), Role::Admin)
                .is_ok()
        );
    }
}
