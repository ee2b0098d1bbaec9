//! Reading a configuration: file or embedded default, then environment overrides, then the
//! unknown-key check and [`Config::validate`].

use super::{Config, DEFAULT_TOML};
use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variables with this prefix override configuration keys:
/// `STREAMGUARD__SECTION__KEY`.
pub const ENV_PREFIX: &str = "STREAMGUARD";

/// Where a configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The embedded `config/default.toml`.
    Embedded,
    /// A TOML file.
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Embedded => f.write_str("embedded config/default.toml"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One problem in a configuration, with the key it concerns (`streams[0].params`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("config {source_name} has {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        source_name: String,
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Source {
    /// Reads and checks the configuration, with environment overrides applied.
    pub fn load(&self) -> Result<Config, ConfigError> {
        self.load_with_env(std::env::vars())
    }

    /// As [`Source::load`], with the environment given explicitly (for tests).
    pub fn load_with_env(
        &self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let source_name = self.to_string();
        let text = match self {
            Source::Embedded => DEFAULT_TOML.to_string(),
            Source::File(path) => read(path)?,
        };
        let env_map: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        let built = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(env_map)),
            )
            .build()
            .map_err(|e| ConfigError::Parse {
                source_name: source_name.clone(),
                message: e.to_string(),
            })?;

        let mut unknown = Vec::new();
        let cfg: Config = serde_ignored::deserialize(built, |path| unknown.push(path.to_string()))
            .map_err(|e: config::ConfigError| ConfigError::Parse {
                source_name: source_name.clone(),
                message: e.to_string(),
            })?;

        let mut problems: Vec<Problem> = unknown
            .into_iter()
            .map(|key| Problem::new(display_key(&key), "unknown key"))
            .collect();
        problems.extend(cfg.validate());
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                source_name,
                problems,
            })
        }
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `serde_ignored` writes array positions as path segments (`streams.0.foo`); show them the
/// way the rest of our messages do (`streams[0].foo`).
fn display_key(path: &str) -> String {
    let mut out = String::new();
    for seg in path.split('.') {
        if seg.chars().all(|c| c.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SamplingMode;

    fn load_str(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        Source::File(path).load_with_env(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn problems(err: ConfigError) -> Vec<Problem> {
        match err {
            ConfigError::Invalid { problems, .. } => problems,
            other => panic!("expected Invalid, got {other}"),
        }
    }

    /// The (key, message) of each problem `toml` is refused for.
    fn refused(toml: &str) -> Vec<(String, String)> {
        problems(load_str(toml, &[]).unwrap_err())
            .into_iter()
            .map(|p| (p.key, p.message))
            .collect()
    }

    #[test]
    fn embedded_default_is_valid() {
        let cfg = Source::Embedded.load_with_env(Vec::new()).unwrap();
        assert_eq!(cfg.streams.len(), 2);
        assert_eq!(cfg.banks.len(), 1);
        assert_eq!(cfg.classify.models.len(), 1);
    }

    #[test]
    fn tokens_allow_listening_beyond_loopback_and_are_checked() {
        let err = load_str("[http]\nlisten = \"0.0.0.0:8088\"\n", &[]).unwrap_err();
        assert!(
            problems(err)[0].message.contains("without [[http.tokens]]"),
            "open API refused beyond loopback"
        );
        let ok = load_str(
            "[http]\nlisten = \"0.0.0.0:8088\"\n[[http.tokens]]\nname = \"mo\"\nrole = \"moderator\"\n\
             token_sha256 = \"aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(ok.http.tokens.len(), 1);
        // An IPv4-mapped loopback address is loopback.
        assert!(load_str("[http]\nlisten = \"[::ffff:127.0.0.1]:8088\"\n", &[]).is_ok());
        let err = load_str(
            "[[http.tokens]]\nname = \"a\"\nrole = \"viewer\"\ntoken = \"short\"\n\
             [[http.tokens]]\nname = \"a\"\nrole = \"admin\"\ntoken_sha256 = \"xyz\"\n\
             [[http.tokens]]\nname = \"b\"\nrole = \"boss\"\ntoken = \"0123456789abcdef0\"\n",
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("role") && text.contains("boss"), "{text}");
        let err = load_str(
            "[[http.tokens]]\nname = \"a\"\nrole = \"viewer\"\ntoken = \"short\"\n\
             [[http.tokens]]\nname = \"a\"\nrole = \"admin\"\ntoken_sha256 = \"xyz\"\n\
             [[http.tokens]]\nname = \"c\"\nrole = \"admin\"\n",
            &[],
        )
        .unwrap_err();
        let keys: Vec<String> = problems(err).into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "http.tokens[0].token",
                "http.tokens[1].name",
                "http.tokens[1].token_sha256",
                "http.tokens[2].token"
            ]
        );
    }

    #[test]
    fn sinks_are_checked() {
        let got = refused(
            "[[sinks]]\nname = \"a\"\nkind = \"nats\"\nurl = \"http://x\"\nsubject = \"a.*\"\n\
             [[sinks]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"ftp://x\"\n\
             [[sinks]]\nname = \"b\"\nkind = \"webhook\"\nurl = \"http://x\"\nsecret_env = \"SG_TEST_NO_SUCH_VAR\"\n\
             backoff_initial_ms = 9000\nbackoff_max_ms = 10\n",
        );
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "sinks[0].url",
                "sinks[0].subject",
                "sinks[1].name",
                "sinks[1].url",
                "sinks[1].secret",
                "sinks[2].secret_env",
                "sinks[2].backoff_initial_ms"
            ],
            "{got:?}"
        );
        assert!(
            got[4].1.contains("needs `secret` or `secret_env`"),
            "{got:?}"
        );
        assert!(
            got[5].1.contains("SG_TEST_NO_SUCH_VAR is not set"),
            "{got:?}"
        );
        let err = load_str(
            "[[sinks]]\nname = \"h\"\nkind = \"webhook\"\nurl = \"http://x\"\nsecret = \"\"\n",
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("must not be empty"), "{err}");
        let ok = load_str(
            "[[sinks]]\nname = \"js\"\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(ok.sinks[0].subject, "streamguard.alerts");
        assert_eq!(ok.sinks[0].stream, "STREAMGUARD_ALERTS");
        assert_eq!(
            ok.sinks[0].events,
            crate::config::SINK_EVENTS,
            "all by default"
        );
        let got = refused(
            "[[sinks]]\nname = \"js\"\nkind = \"nats\"\nurl = \"nats://h:1\"\nevents = [\"alert.raised\", \"alert.deleted\"]\n\
             [[sinks]]\nname = \"js2\"\nkind = \"nats\"\nurl = \"nats://h:1\"\nevents = []\n",
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "sinks[0].events");
        assert!(
            got[0].1.contains("unknown event 'alert.deleted'"),
            "{got:?}"
        );
        assert_eq!(got[1].0, "sinks[1].events");
        assert!(got[1].1.contains("names no event"), "{got:?}");
    }

    #[test]
    fn classifier_pool_and_k_of_n_settings_are_checked() {
        let err = load_str(
            "[classify]
workers = 0
queue = 0
halt_k = 4
halt_n = 3
",
            &[],
        )
        .unwrap_err();
        let keys: Vec<String> = problems(err).into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            ["classify.workers", "classify.queue", "classify.halt_k"]
        );
        let err = load_str(
            "[classify]
halt_k = 0
halt_n = 0
",
            &[],
        )
        .unwrap_err();
        let keys: Vec<String> = problems(err).into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["classify.halt_n", "classify.halt_k"]);
    }

    #[test]
    fn empty_file_gives_defaults() {
        let cfg = load_str("", &[]).unwrap();
        assert_eq!(cfg.sampler.interval_ms, 1000);
        assert_eq!(cfg.sampler.mode, SamplingMode::Keyframes);
        assert_eq!(cfg.analysis.min_quality, 50);
    }

    #[test]
    fn every_unknown_key_is_reported_with_its_path() {
        let err = load_str(
            "[sampler]\nintervall_ms = 5\n[[streams]]\nid = \"a\"\npipeline = \"testsrc\"\npipelin = \"x\"\n[bogus]\nx = 1\n",
            &[],
        )
        .unwrap_err();
        let keys: Vec<String> = problems(err).into_iter().map(|p| p.key).collect();
        assert!(
            keys.contains(&"sampler.intervall_ms".to_string()),
            "{keys:?}"
        );
        assert!(keys.contains(&"streams[0].pipelin".to_string()), "{keys:?}");
        assert!(keys.contains(&"bogus".to_string()), "{keys:?}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = load_str("[sampler]\ninterval_ms = \"soon\"\n", &[]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConfigError::Parse { .. }), "{msg}");
        assert!(msg.contains("sampler.interval_ms"), "{msg}");
    }

    #[test]
    fn validation_reports_all_problems_at_once() {
        let err = load_str(
            "[sampler]\ninterval_ms = 0\n[analysis]\nworkers = 0\nmin_quality = 101\n[[banks]]\nname = \"a b\"\npath = \"x\"\nthreshold = 300\n",
            &[],
        )
        .unwrap_err();
        let keys: Vec<String> = problems(err).into_iter().map(|p| p.key).collect();
        for k in [
            "sampler.interval_ms",
            "analysis.workers",
            "analysis.min_quality",
            "banks[0].name",
            "banks[0].threshold",
        ] {
            assert!(keys.contains(&k.to_string()), "missing {k} in {keys:?}");
        }
    }

    #[test]
    fn retention_keeps_confirmed_alerts_a_year() {
        let err = load_str("[store]\nretain_confirmed_days = 30\n", &[]).unwrap_err();
        let p = problems(err);
        assert_eq!(p[0].key, "store.retain_confirmed_days");
        assert!(p[0].message.contains("365"), "{}", p[0].message);
        let cfg = load_str(
            "[store]\nretain_confirmed_days = 0\nretain_dismissed_days = 7\nretain_log_days = 400\n",
            &[],
        )
        .unwrap();
        let r = cfg.store.retention();
        assert_eq!(
            (r.confirmed_days, r.dismissed_days, r.log_days),
            (0, 7, 400)
        );
        let d = load_str("", &[]).unwrap().store.retention();
        assert_eq!(
            (d.confirmed_days, d.dismissed_days, d.log_days),
            (365, 90, 0)
        );
        let err = load_str("[store]\nprune_interval_s = 1\n", &[]).unwrap_err();
        assert_eq!(problems(err)[0].key, "store.prune_interval_s");
        let err = load_str(
            "[store]\nretain_dismissed_days = 1\n[policy]\ndismiss_cooldown_s = 172800\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(problems(err)[0].key, "store.retain_dismissed_days");
    }

    #[test]
    fn environment_overrides_file() {
        let cfg = load_str(
            "[sampler]\ninterval_ms = 2000\n",
            &[
                ("STREAMGUARD__SAMPLER__INTERVAL_MS", "250"),
                ("STREAMGUARD__SAMPLER__MODE", "all"),
                ("OTHER", "x"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.sampler.interval_ms, 250);
        assert_eq!(cfg.sampler.mode, SamplingMode::All);
    }

    #[test]
    fn unknown_environment_key_is_rejected() {
        let err = load_str("", &[("STREAMGUARD__SAMPLER__SPEED", "3")]).unwrap_err();
        let keys: Vec<String> = problems(err).into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["sampler.speed".to_string()]);
    }

    #[test]
    fn missing_file_names_it() {
        let err = Source::File("/nonexistent/sg.toml".into())
            .load_with_env(Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/sg.toml"), "{err}");
    }

    #[test]
    fn stream_params_accept_numbers_and_strings() {
        let cfg = load_str(
            "[[streams]]\nid = \"s\"\npipeline = \"testsrc\"\nparams = { width = 320, pattern = \"ball\" }\n",
            &[],
        )
        .unwrap();
        assert_eq!(cfg.streams[0].params["width"], "320");
        assert_eq!(cfg.streams[0].params["pattern"], "ball");
    }
}
