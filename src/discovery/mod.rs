//! Discovery: which streams are live at the ingest server. nginx-rtmp tells us through its
//! `on_publish` / `on_publish_done` callbacks (form fields or query string) and lists them in
//! its `rtmp_stat` XML, which reconciliation reads periodically.

use crate::moderation::actuator::StreamKey;
use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

/// Fields nginx-rtmp sends with every callback; anything else is a query argument of the
/// publish URL and is kept as stream metadata.
const CALLBACK_FIELDS: &[&str] = &[
    "call", "app", "name", "type", "addr", "clientid", "tcurl", "swfurl", "pageurl", "flashver",
    "epoch",
];

/// A publish (or publish-done) callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub key: StreamKey,
    /// The publish URL's query arguments (for example `?account_age_days=1`).
    pub args: BTreeMap<String, String>,
    pub addr: Option<String>,
}

/// Why a callback request is refused: always a 4xx, and nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("malformed callback: {0}")]
    Malformed(String),
    #[error("unknown app '{0}' (watched apps: {1})")]
    UnknownApp(String, String),
}

/// Checks a stream key as the ingest callbacks do: app and name of sane characters and
/// length, the app one of the watched `apps`.
pub fn check_key(app: &str, name: &str, apps: &[String]) -> Result<(), CallbackError> {
    for (what, v) in [("app", app), ("name", name)] {
        if v.is_empty() {
            return Err(CallbackError::Malformed(format!("{what} is empty")));
        }
        // Callbacks trim their values; a key given otherwise could never match a publish.
        if v.trim() != v {
            return Err(CallbackError::Malformed(format!(
                "{what} '{}' has surrounding spaces",
                v.escape_debug()
            )));
        }
        if v.len() > 256
            || v.chars()
                .any(|c| c.is_control() || matches!(c, '/' | '\\' | '?' | '#'))
        {
            return Err(CallbackError::Malformed(format!(
                "{what} '{}' has characters a stream key cannot have",
                v.escape_debug()
            )));
        }
    }
    if !apps.iter().any(|a| a == app) {
        return Err(CallbackError::UnknownApp(app.to_string(), apps.join(", ")));
    }
    Ok(())
}

/// Parses callback parameters, checking the app is watched and the name is sane.
pub fn parse_callback(
    params: &BTreeMap<String, String>,
    apps: &[String],
) -> Result<Publish, CallbackError> {
    let field = |k: &str| {
        params
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| CallbackError::Malformed(format!("missing field '{k}'")))
    };
    let app = field("app")?;
    let name = field("name")?;
    check_key(&app, &name, apps)?;
    let args = params
        .iter()
        .filter(|(k, _)| !CALLBACK_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Publish {
        key: StreamKey { app, name },
        args,
        addr: params.get("addr").cloned(),
    })
}

/// Why the server's stream list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatError {
    #[error("stat XML: {0}")]
    Xml(#[from] roxmltree::Error),
    /// The request got no answer.
    #[error("{url}: {source}")]
    Http { url: String, source: ureq::Error },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    /// The answer's body could not be read as text.
    #[error("{url}: {source}")]
    Read { url: String, source: std::io::Error },
}

/// The streams being published according to nginx-rtmp's `rtmp_stat` XML.
pub fn parse_stat(xml: &str) -> Result<Vec<StreamKey>, StatError> {
    let doc = roxmltree::Document::parse(xml)?;
    let child_text = |n: roxmltree::Node, tag: &str| {
        n.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string())
    };
    let mut out = Vec::new();
    for app in doc.descendants().filter(|n| n.has_tag_name("application")) {
        let Some(app_name) = child_text(app, "name") else {
            continue;
        };
        for live in app.children().filter(|n| n.has_tag_name("live")) {
            for stream in live.children().filter(|n| n.has_tag_name("stream")) {
                let publishing = stream.children().any(|c| c.has_tag_name("publishing"));
                if let (true, Some(name)) = (publishing, child_text(stream, "name")) {
                    out.push(StreamKey {
                        app: app_name.clone(),
                        name,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Fetches and parses the stat page.
pub fn fetch_stat(url: &str, timeout: Duration) -> Result<Vec<StreamKey>, StatError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|source| StatError::Http {
        url: url.to_string(),
        source,
    })?;
    if resp.status() != 200 {
        return Err(StatError::Status {
            url: url.to_string(),
            status: resp.status().as_u16(),
        });
    }
    let mut xml = String::new();
    resp.body_mut()
        .as_reader()
        .take(16 << 20)
        .read_to_string(&mut xml)
        .map_err(|source| StatError::Read {
            url: url.to_string(),
            source,
        })?;
    parse_stat(&xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn callback_keeps_query_args_and_rejects_bad_input() {
        let apps = vec!["live".to_string()];
        let p = parse_callback(
            &params(&[
                ("call", "publish"),
                ("app", "live"),
                ("name", "k1"),
                ("addr", "127.0.0.1"),
                ("account_age_days", "1"),
            ]),
            &apps,
        )
        .unwrap();
        assert_eq!(p.key.id(), "live/k1");
        assert_eq!(p.args, params(&[("account_age_days", "1")]));
        let e = parse_callback(&params(&[("app", "other"), ("name", "k")]), &apps).unwrap_err();
        assert!(matches!(e, CallbackError::UnknownApp(..)), "{e}");
        let e = parse_callback(&params(&[("app", "live")]), &apps).unwrap_err();
        assert_eq!(e.to_string(), "malformed callback: missing field 'name'");
        let e = parse_callback(&params(&[("app", "live"), ("name", "a/b")]), &apps).unwrap_err();
        assert!(matches!(e, CallbackError::Malformed(_)), "{e}");
    }

    #[test]
    fn stat_lists_publishing_streams_only() {
        let xml = r#"<?xml version="1.0" encoding="utf-8" ?>
<rtmp><server><application><name>live</name><live>
  <stream><name>a</name><time>100</time><publishing/><active/></stream>
  <stream><name>viewer-only</name><time>5</time></stream>
  <nclients>2</nclients></live></application>
<application><name>other</name><live><stream><name>b</name><publishing/></stream></live></application>
</server></rtmp>"#;
        let got: Vec<String> = parse_stat(xml).unwrap().iter().map(StreamKey::id).collect();
        assert_eq!(got, vec!["live/a", "other/b"]);
        assert!(parse_stat("<rtmp>").is_err());
    }
}
