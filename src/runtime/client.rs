//! librdkafka client configuration built from the typed config and the secrets.
//!
//! Every Kafka client of shopstream (processor, sink, generator, admin, replay) starts from
//! [`base_config`], so security settings apply uniformly; secrets come only from
//! [`Secrets`] and are never logged (the debug rendering of a client config is not used).

use rdkafka::ClientConfig;

use crate::config::{KafkaConfig, Secrets, SecurityProtocol};

/// The common client settings: bootstrap servers, security, and the pass-through properties.
pub fn base_config(kafka: &KafkaConfig, secrets: &Secrets) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.bootstrap_servers);
    c.set("security.protocol", kafka.security_protocol.as_librdkafka());
    let sasl = matches!(
        kafka.security_protocol,
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
    );
    if sasl {
        c.set(
            "sasl.mechanism",
            kafka.sasl_mechanism.as_deref().unwrap_or("PLAIN"),
        );
        if let Some(user) = &kafka.sasl_username {
            c.set("sasl.username", user);
        }
        if let Some(pw) = &secrets.kafka_sasl_password {
            c.set("sasl.password", pw);
        }
    }
    for (key, value) in [
        ("ssl.ca.location", &kafka.ssl_ca_location),
        ("ssl.certificate.location", &kafka.ssl_certificate_location),
        ("ssl.key.location", &kafka.ssl_key_location),
    ] {
        if let Some(v) = value {
            c.set(key, v);
        }
    }
    if let Some(pw) = &secrets.kafka_ssl_key_password {
        c.set("ssl.key.password", pw);
    }
    for (k, v) in &kafka.properties {
        c.set(k, v);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_settings_and_secret_flow_through() {
        let kafka = KafkaConfig {
            security_protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: Some("SCRAM-SHA-512".into()),
            sasl_username: Some("svc".into()),
            ..Default::default()
        };
        let secrets = Secrets {
            kafka_sasl_password: Some("pw".into()),
            ..Default::default()
        };
        let c = base_config(&kafka, &secrets);
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("sasl.username"), Some("svc"));
        assert_eq!(c.get("sasl.password"), Some("pw"));
    }

    #[test]
    fn plaintext_sets_no_sasl() {
        let c = base_config(&KafkaConfig::default(), &Secrets::default());
        assert_eq!(c.get("security.protocol"), Some("plaintext"));
        assert_eq!(c.get("sasl.mechanism"), None);
    }
}
