//! Typed configuration: one TOML file plus `SHOPSTREAM_*` environment overrides.
//!
//! Sources are layered: built-in defaults, then the TOML file (if given), then environment
//! variables named `SHOPSTREAM_<SECTION>__<KEY>` (double underscore between levels, e.g.
//! `SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS`). Unknown keys are rejected so typos surface.
//! Secrets never come from the file: they are read only from the environment (or a `.env`
//! file loaded into it) through the fixed variable names in [`Secrets`], and a config file
//! that tries to set one is an error. Errors render as one line naming the offending key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use figment::providers::{Env, Format as _, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Keys that hold secrets and therefore may only come from the environment.
const SECRET_KEYS: &[&str] = &[
    "password",
    "sasl_password",
    "ssl_key_password",
    "sasl.password",
    "ssl.key.password",
];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub registry: RegistryConfig,
    pub postgres: PostgresConfig,
    pub processing: ProcessingConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    /// Watermarks, windows, dedup and validation (see `engine::EngineConfig`).
    pub engine: crate::engine::EngineConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    /// plaintext | ssl | sasl_plaintext | sasl_ssl
    pub security_protocol: SecurityProtocol,
    /// PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 (required with a SASL protocol)
    pub sasl_mechanism: Option<SaslMechanism>,
    pub sasl_username: Option<String>,
    pub ssl_ca_location: Option<String>,
    pub ssl_certificate_location: Option<String>,
    pub ssl_key_location: Option<String>,
    /// Extra librdkafka properties passed through verbatim (no secrets here).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: "localhost:9092".into(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: None,
            sasl_username: None,
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            properties: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether the protocol authenticates with SASL.
    pub fn is_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// Whether the protocol encrypts with TLS.
    pub fn is_ssl(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// SASL mechanisms built into shopstream's librdkafka (GSSAPI and OAUTHBEARER are not).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Confluent-compatible schema registry; only needed for `format = "avro"`.
    pub url: String,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            url: "http://localhost:8081".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    /// disable | prefer | require | verify-ca | verify-full (libpq's meanings)
    pub sslmode: SslMode,
    /// PEM file of the CA certificates that verify the server (default with verify-ca
    /// and verify-full: the system's trust store).
    pub sslrootcert: Option<String>,
}

/// PostgreSQL TLS modes, as libpq defines them: `prefer` and `require` encrypt without
/// checking the server's certificate (unless `sslrootcert` is set, which makes `require`
/// behave as `verify-ca`), `verify-ca` checks it against the CA, `verify-full` also checks
/// that it names the host.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_libpq(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            host: "localhost".into(),
            port: 5432,
            user: "shopstream".into(),
            dbname: "shopstream".into(),
            sslmode: SslMode::Prefer,
            sslrootcert: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Guarantee {
    ExactlyOnce,
    AtLeastOnce,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    Json,
    Avro,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessingConfig {
    pub guarantee: Guarantee,
    /// Length of one Kafka transaction (or at-least-once commit) in milliseconds.
    pub commit_interval_ms: u64,
    /// Wire format of the input topics.
    pub format: WireFormat,
    /// Stable per instance; the transactional.id is `<prefix>-<instance_id>`.
    pub instance_id: String,
    pub transactional_id_prefix: String,
    /// Largest accepted record value in bytes; larger ones go to the DLQ.
    pub max_record_bytes: usize,
    /// Join the consumer groups as a static member (`group.instance.id` derived from
    /// instance_id), so a restarted instance gets its partitions back at once instead of
    /// after the session timeout and a rebalance.
    pub static_membership: bool,
    /// Backpressure: records waiting in the producer queue at which a stage pauses its
    /// input partitions (resumed at half of it).
    pub max_in_flight: u64,
    /// Backpressure: records the instance's PostgreSQL sink may be behind its topics
    /// before stage 1 pauses its inputs (resumed at half of it); 0 never pauses for it.
    pub max_sink_lag: u64,
    /// How long start-up waits for a Kafka broker (and, with Avro, the schema registry)
    /// before it fails with an error naming what it could not reach.
    pub startup_timeout_ms: u64,
    /// How long a graceful shutdown (SIGTERM/SIGINT) may take to commit or abort the open
    /// transactions and stop; past it the process exits with an error.
    pub shutdown_timeout_ms: u64,
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        ProcessingConfig {
            guarantee: Guarantee::ExactlyOnce,
            commit_interval_ms: 100,
            format: WireFormat::Json,
            instance_id: "0".into(),
            transactional_id_prefix: "shopstream".into(),
            max_record_bytes: 1 << 20,
            static_membership: true,
            max_in_flight: 100_000,
            max_sink_lag: 200_000,
            startup_timeout_ms: 60_000,
            shutdown_timeout_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the Prometheus `/metrics` endpoint; empty disables it.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// Secrets, read only from the environment (after `.env` has been loaded into it).
#[derive(Clone, Default, PartialEq)]
pub struct Secrets {
    /// `SHOPSTREAM_KAFKA_SASL_PASSWORD`
    pub kafka_sasl_password: Option<String>,
    /// `SHOPSTREAM_KAFKA_SSL_KEY_PASSWORD`
    pub kafka_ssl_key_password: Option<String>,
    /// `SHOPSTREAM_POSTGRES_PASSWORD`
    pub postgres_password: Option<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |o: &Option<String>| if o.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Secrets")
            .field("kafka_sasl_password", &mask(&self.kafka_sasl_password))
            .field(
                "kafka_ssl_key_password",
                &mask(&self.kafka_ssl_key_password),
            )
            .field("postgres_password", &mask(&self.postgres_password))
            .finish()
    }
}

impl Secrets {
    pub fn from_env() -> Secrets {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Secrets {
            kafka_sasl_password: get("SHOPSTREAM_KAFKA_SASL_PASSWORD"),
            kafka_ssl_key_password: get("SHOPSTREAM_KAFKA_SSL_KEY_PASSWORD"),
            postgres_password: get("SHOPSTREAM_POSTGRES_PASSWORD"),
        }
    }
}

/// A configuration error, rendered as one line that names the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("config: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Checks that the secrets the settings need are present (see [`crate::security`]);
    /// the error names the environment variable, never a value.
    pub fn check_secrets(&self, secrets: &Secrets) -> Result<(), ConfigError> {
        crate::security::check_secrets(self, secrets).map_err(ConfigError)
    }
}

impl Config {
    /// Loads defaults, then `file` (if any), then `SHOPSTREAM_*` environment overrides.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(
            file,
            Env::prefixed("SHOPSTREAM_").split("__").lowercase(true),
        )
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
            reject_secrets_in_file(&text, path)?;
            fig = fig.merge(Toml::file(path));
        }
        // Every typed key is `<section>__<key>`: single-level names (the secrets,
        // SHOPSTREAM_CONFIG) are not part of the tree and must not become unknown keys.
        let env = env.filter(|k| k.as_str().contains('.') || k.as_str().contains("__"));
        fig.merge(env)
            .extract::<Config>()
            .map_err(|e| ConfigError(normalise_key(&one_line(e))))?
            .validated()
    }

    fn validated(self) -> Result<Config, ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("key `{key}`: {why}")));
        if self.processing.commit_interval_ms == 0 {
            return bad("processing.commit_interval_ms", "must be > 0");
        }
        if self.kafka.bootstrap_servers.trim().is_empty() {
            return bad("kafka.bootstrap_servers", "must not be empty");
        }
        crate::security::check_settings(&self).map_err(ConfigError)?;
        crate::limits::check_limits(&self).map_err(ConfigError)?;
        if let Err(e) = self.engine.validate() {
            return Err(ConfigError(format!("engine: {e}")));
        }
        if let Some(k) = self.kafka.properties.keys().find(|k| is_secret_key(k)) {
            return bad(
                &format!("kafka.properties.{k}"),
                "secrets are read only from the environment (see .env.example)",
            );
        }
        Ok(self)
    }
}

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEYS
        .iter()
        .any(|s| k == *s || k.ends_with(&format!(".{s}")))
}

fn reject_secrets_in_file(text: &str, path: &Path) -> Result<(), ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError(format!("{}: {}", path.display(), one_line(e)))
    })?;
    fn walk(t: &toml::Table, prefix: &str) -> Option<String> {
        t.iter().find_map(|(k, v)| {
            let full = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if is_secret_key(k) {
                return Some(full);
            }
            v.as_table().and_then(|sub| walk(sub, &full))
        })
    }
    match walk(&table, "") {
        Some(key) => Err(ConfigError(format!(
            "key `{key}` in {}: secrets are read only from the environment (see .env.example)",
            path.display()
        ))),
        None => Ok(()),
    }
}

/// figment names keys with its profile prefix and, for environment sources, in upper
/// case; render them as they are written in the TOML file (`processing.guarantee`).
fn normalise_key(msg: &str) -> String {
    let Some(start) = msg.find("key \"").map(|i| i + 5) else {
        return msg.to_string();
    };
    let Some(len) = msg[start..].find('"') else {
        return msg.to_string();
    };
    let key = msg[start..start + len].to_ascii_lowercase();
    let key = key.strip_prefix("default.").unwrap_or(&key);
    format!("{}{key}{}", &msg[..start], &msg[start + len..])
}

fn one_line(e: impl fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        // A prefix of its own per call: tests run in parallel and share the environment.
        static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("SHOPSTREAM_TEST_{}_{n}_", std::process::id());
        for (k, v) in env {
            std::env::set_var(format!("{prefix}{k}"), v);
        }
        let r = Config::load_from(
            Some(&path),
            Env::prefixed(&prefix).split("__").lowercase(true),
        );
        for (k, _) in env {
            std::env::remove_var(format!("{prefix}{k}"));
        }
        r
    }

    #[test]
    fn defaults_load_and_example_file_parses() {
        let example = include_str!("../shopstream.example.toml");
        let c = load_str(example, &[]).expect("example config must load");
        assert_eq!(c.processing.guarantee, Guarantee::ExactlyOnce);
        assert_eq!(load_str("", &[]).unwrap(), Config::default());
    }

    #[test]
    fn the_example_alert_settings_are_the_defaults() {
        // The commented `[engine.alerts]` block of the example, uncommented.
        let example = include_str!("../shopstream.example.toml");
        let block: String = example
            .lines()
            .skip_while(|l| *l != "# [engine.alerts]")
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        assert!(block.contains("revenue_drop_fraction"), "{block}");
        let c = load_str(&block, &[]).expect("the alert block loads");
        assert_eq!(
            c.engine.alerts,
            crate::analytics::alerts::AlertConfig::default()
        );
        let c = load_str("[engine.alerts]\nrevenue_drop_fraction = \"0.3\"\n", &[]).unwrap();
        assert_eq!(c.engine.alerts.revenue_drop_fraction.to_string(), "0.3");
        let e = load_str("[engine.alerts]\nmin_history = 0\n", &[]).unwrap_err();
        assert!(e.to_string().contains("min_history"), "{e}");
    }

    #[test]
    fn env_overrides_file() {
        let c = load_str(
            "[kafka]\nbootstrap_servers = \"a:1\"\n",
            &[
                ("KAFKA__BOOTSTRAP_SERVERS", "b:2"),
                ("PROCESSING__COMMIT_INTERVAL_MS", "250"),
            ],
        )
        .unwrap();
        assert_eq!(c.kafka.bootstrap_servers, "b:2");
        assert_eq!(c.processing.commit_interval_ms, 250);
    }

    #[test]
    fn bad_value_names_the_key_on_one_line() {
        let e = load_str("[processing]\ncommit_interval_ms = \"soon\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("commit_interval_ms"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = load_str("[processing]\nguarantee = \"maybe-once\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("guarantee"), "{e}");
        let e = load_str("[processing]\ncommit_interval_ms = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("processing.commit_interval_ms"), "{e}");
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let e = load_str("[kafka]\nbootstrap_server = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("bootstrap_server"), "{e}");
    }

    #[test]
    fn secrets_are_refused_in_the_file() {
        let e = load_str("[postgres]\npassword = \"hunter2\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("postgres.password"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = load_str("[kafka.properties]\n\"sasl.password\" = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("sasl.password"), "{e}");
    }

    #[test]
    fn security_settings_load_from_file_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let c = load_str(
            &format!(
                "[kafka]\nsecurity_protocol = \"sasl_ssl\"\nsasl_username = \"svc\"\n\
                 ssl_ca_location = \"{}\"\n[postgres]\nsslmode = \"verify-full\"\n",
                ca.display()
            ),
            &[("KAFKA__SASL_MECHANISM", "SCRAM-SHA-256")],
        )
        .unwrap();
        assert_eq!(c.kafka.security_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(c.kafka.sasl_mechanism, Some(SaslMechanism::ScramSha256));
        assert_eq!(c.postgres.sslmode, SslMode::VerifyFull);
        let e = load_str(
            "[kafka]\nsecurity_protocol = \"sasl_ssl\"\nsasl_mechanism = \"GSSAPI\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sasl_mechanism"), "{e}");
        let e = load_str("[postgres]\nsslmode = \"allow\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode"), "{e}");
        let e = load_str(
            "[kafka]\nsecurity_protocol = \"ssl\"\nssl_key_location = \"/nope.key\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("kafka.ssl_key_location"), "{e}");
    }

    #[test]
    fn secret_and_config_file_variables_are_not_config_keys() {
        let c = load_str(
            "",
            &[
                ("KAFKA_SASL_PASSWORD", "x"),
                ("POSTGRES_PASSWORD", "y"),
                ("CONFIG", "/etc/shopstream.toml"),
                ("POSTGRES__USER", "sink"),
            ],
        )
        .unwrap();
        assert_eq!(c.postgres.user, "sink");
    }

    #[test]
    fn config_debug_holds_no_secret_and_secrets_debug_is_masked() {
        let secrets = Secrets {
            kafka_sasl_password: Some("sasl-hunter2".into()),
            kafka_ssl_key_password: Some("key-hunter2".into()),
            postgres_password: Some("pg-hunter2".into()),
        };
        let text = format!("{secrets:?} {:?}", Config::default());
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<set>"), "{text}");
    }

    #[test]
    fn secrets_debug_is_masked() {
        let s = Secrets {
            postgres_password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
