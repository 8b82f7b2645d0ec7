//! Start-up checks of the security settings, so a misconfigured client fails at once with
//! a message naming the setting instead of retrying a broker or database handshake forever.
//! [`check_settings`] runs when the configuration loads: the Kafka protocol, SASL mechanism
//! and TLS files must fit together (a SASL protocol needs a mechanism and a user, TLS files
//! need a TLS protocol and must exist, a client certificate needs its key), security keys
//! may not be bypassed through `kafka.properties`, and PostgreSQL's CA file must exist.
//! [`check_secrets`] runs once the secrets are read: a SASL protocol needs its password.
//! Messages name keys and environment variables, never a secret's value.

use std::path::Path;

use crate::config::{Config, KafkaConfig, Secrets, SslMode};

/// librdkafka properties that have a typed key of their own; setting them through
/// `kafka.properties` would bypass these checks.
const TYPED_KAFKA_KEYS: &[(&str, &str)] = &[
    ("security.protocol", "kafka.security_protocol"),
    ("sasl.mechanism", "kafka.sasl_mechanism"),
    ("sasl.mechanisms", "kafka.sasl_mechanism"),
    ("sasl.username", "kafka.sasl_username"),
    ("ssl.ca.location", "kafka.ssl_ca_location"),
    ("ssl.certificate.location", "kafka.ssl_certificate_location"),
    ("ssl.key.location", "kafka.ssl_key_location"),
];

/// Environment variable of the Kafka SASL password.
pub const KAFKA_SASL_PASSWORD_ENV: &str = "SHOPSTREAM_KAFKA_SASL_PASSWORD";

/// Checks the security settings that need no secret; the error names the key at fault.
pub fn check_settings(config: &Config) -> Result<(), String> {
    check_kafka(&config.kafka)?;
    let pg = &config.postgres;
    if let Some(ca) = &pg.sslrootcert {
        if pg.sslmode == SslMode::Disable {
            return Err(key_error(
                "postgres.sslrootcert",
                "is set but postgres.sslmode is disable",
            ));
        }
        must_exist("postgres.sslrootcert", ca)?;
    }
    Ok(())
}

fn check_kafka(kafka: &KafkaConfig) -> Result<(), String> {
    let protocol = kafka.security_protocol;
    let name = protocol.as_librdkafka();
    for key in kafka.properties.keys() {
        let lower = key.to_ascii_lowercase();
        if let Some((_, typed)) = TYPED_KAFKA_KEYS.iter().find(|(p, _)| *p == lower) {
            return Err(key_error(
                &format!("kafka.properties.{key}"),
                &format!("set it with `{typed}` instead"),
            ));
        }
    }
    if protocol.is_sasl() {
        if kafka.sasl_mechanism.is_none() {
            return Err(key_error(
                "kafka.sasl_mechanism",
                &format!(
                    "required with security_protocol {name}: one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"
                ),
            ));
        }
        if kafka
            .sasl_username
            .as_deref()
            .filter(|u| !u.is_empty())
            .is_none()
        {
            return Err(key_error(
                "kafka.sasl_username",
                &format!("required with security_protocol {name}"),
            ));
        }
    } else {
        for (key, set) in [
            ("kafka.sasl_mechanism", kafka.sasl_mechanism.is_some()),
            ("kafka.sasl_username", kafka.sasl_username.is_some()),
        ] {
            if set {
                return Err(key_error(
                    key,
                    &format!("is set but security_protocol {name} does not use SASL (use sasl_plaintext or sasl_ssl)"),
                ));
            }
        }
    }
    let files = [
        ("kafka.ssl_ca_location", &kafka.ssl_ca_location),
        (
            "kafka.ssl_certificate_location",
            &kafka.ssl_certificate_location,
        ),
        ("kafka.ssl_key_location", &kafka.ssl_key_location),
    ];
    for (key, value) in files {
        let Some(path) = value else { continue };
        if !protocol.is_ssl() {
            return Err(key_error(
                key,
                &format!(
                    "is set but security_protocol {name} does not use TLS (use ssl or sasl_ssl)"
                ),
            ));
        }
        // librdkafka's special value: the CA certificates found by probing the system.
        if key == "kafka.ssl_ca_location" && path == "probe" {
            continue;
        }
        must_exist(key, path)?;
    }
    match (&kafka.ssl_certificate_location, &kafka.ssl_key_location) {
        (Some(_), None) => Err(key_error(
            "kafka.ssl_key_location",
            "required with kafka.ssl_certificate_location (the client certificate's key)",
        )),
        (None, Some(_)) => Err(key_error(
            "kafka.ssl_certificate_location",
            "required with kafka.ssl_key_location (the key's client certificate)",
        )),
        _ => Ok(()),
    }
}

/// Checks that the secrets the settings need are set; names the variable, never a value.
pub fn check_secrets(config: &Config, secrets: &Secrets) -> Result<(), String> {
    let kafka = &config.kafka;
    if kafka.security_protocol.is_sasl() && secrets.kafka_sasl_password.is_none() {
        let mechanism = kafka.sasl_mechanism.map_or("SASL", |m| m.as_librdkafka());
        return Err(format!(
            "key `kafka.sasl_mechanism`: {mechanism} needs a password: set {KAFKA_SASL_PASSWORD_ENV} in the environment or .env"
        ));
    }
    Ok(())
}

fn must_exist(key: &str, path: &str) -> Result<(), String> {
    if Path::new(path).exists() {
        Ok(())
    } else {
        Err(key_error(key, &format!("file {path} does not exist")))
    }
}

fn key_error(key: &str, why: &str) -> String {
    format!("key `{key}`: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SaslMechanism, SecurityProtocol};

    fn sasl(mechanism: Option<SaslMechanism>, user: Option<&str>) -> Config {
        let mut c = Config::default();
        c.kafka.security_protocol = SecurityProtocol::SaslSsl;
        c.kafka.sasl_mechanism = mechanism;
        c.kafka.sasl_username = user.map(str::to_string);
        c
    }

    fn secrets(sasl: Option<&str>) -> Secrets {
        Secrets {
            kafka_sasl_password: sasl.map(str::to_string),
            ..Secrets::default()
        }
    }

    #[test]
    fn defaults_pass() {
        check_settings(&Config::default()).unwrap();
        check_secrets(&Config::default(), &Secrets::default()).unwrap();
    }

    #[test]
    fn sasl_needs_mechanism_user_and_password() {
        let e = check_settings(&sasl(None, Some("u"))).unwrap_err();
        assert!(
            e.contains("kafka.sasl_mechanism") && e.contains("sasl_ssl"),
            "{e}"
        );
        let e = check_settings(&sasl(Some(SaslMechanism::ScramSha256), None)).unwrap_err();
        assert!(e.contains("kafka.sasl_username"), "{e}");
        let ok = sasl(Some(SaslMechanism::ScramSha256), Some("u"));
        check_settings(&ok).unwrap();
        let e = check_secrets(&ok, &secrets(None)).unwrap_err();
        assert!(
            e.contains("SCRAM-SHA-256") && e.contains(KAFKA_SASL_PASSWORD_ENV),
            "{e}"
        );
        check_secrets(&ok, &secrets(Some("pw"))).unwrap();
    }

    #[test]
    fn sasl_settings_without_a_sasl_protocol_are_refused() {
        let mut c = Config::default();
        c.kafka.sasl_mechanism = Some(SaslMechanism::Plain);
        let e = check_settings(&c).unwrap_err();
        assert!(
            e.contains("kafka.sasl_mechanism") && e.contains("plaintext"),
            "{e}"
        );
    }

    #[test]
    fn tls_files_need_a_tls_protocol_must_exist_and_come_in_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.pem");
        std::fs::write(&file, "x").unwrap();
        let file = file.to_str().unwrap().to_string();
        let mut c = Config::default();
        c.kafka.ssl_ca_location = Some(file.clone());
        let e = check_settings(&c).unwrap_err();
        assert!(
            e.contains("kafka.ssl_ca_location") && e.contains("TLS"),
            "{e}"
        );
        c.kafka.security_protocol = SecurityProtocol::Ssl;
        check_settings(&c).unwrap();
        c.kafka.ssl_ca_location = Some("/nonexistent/ca.pem".into());
        let e = check_settings(&c).unwrap_err();
        assert!(
            e.contains("kafka.ssl_ca_location") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        c.kafka.ssl_ca_location = Some("probe".into());
        check_settings(&c).unwrap();
        c.kafka.ssl_certificate_location = Some(file.clone());
        let e = check_settings(&c).unwrap_err();
        assert!(e.contains("kafka.ssl_key_location"), "{e}");
        c.kafka.ssl_key_location = Some(file);
        check_settings(&c).unwrap();
    }

    #[test]
    fn typed_security_keys_cannot_be_set_as_properties() {
        let mut c = Config::default();
        c.kafka
            .properties
            .insert("Security.Protocol".into(), "sasl_ssl".into());
        let e = check_settings(&c).unwrap_err();
        assert!(e.contains("kafka.security_protocol"), "{e}");
    }

    #[test]
    fn postgres_ca_file_must_exist() {
        let mut c = Config::default();
        c.postgres.sslmode = SslMode::VerifyFull;
        c.postgres.sslrootcert = Some("/nonexistent/pg-ca.pem".into());
        let e = check_settings(&c).unwrap_err();
        assert!(e.contains("postgres.sslrootcert"), "{e}");
    }
}
