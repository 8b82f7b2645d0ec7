//! librdkafka client configuration built from the typed config and the secrets.
//!
//! Every Kafka client of shopstream (processor, sink, generator, admin, replay, DLQ
//! redrive) starts from [`base_config`], whose security part is [`apply_security`], so
//! the protocol, SASL and TLS settings apply uniformly. Secrets come only from
//! [`Secrets`]; rdkafka's own `Debug` of a `ClientConfig` redacts them, and shopstream
//! never logs a client configuration otherwise. [`KafkaSecurity`] carries the settings to
//! clients built outside the runtime (the generator).

use rdkafka::ClientConfig;

use crate::config::{KafkaConfig, Secrets};

/// The common client settings: bootstrap servers, security, and the pass-through properties.
pub fn base_config(kafka: &KafkaConfig, secrets: &Secrets) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.bootstrap_servers);
    apply_security(&mut c, kafka, secrets);
    for (k, v) in &kafka.properties {
        c.set(k, v);
    }
    c
}

/// librdkafka's `fetch.wait.max.ms` for the pipeline's consumers unless the configuration
/// sets it: how long the broker may hold a fetch that finds no new data. librdkafka's
/// default, 500 ms, costs nothing on a real broker, which answers a held fetch as soon as
/// data arrives, but librdkafka's mock cluster (the demo's embedded broker, the load
/// tests) holds every empty fetch for the whole wait, so a record produced just after it
/// waited up to 500 ms to be fetched: most of the end-to-end latency measured there
/// (load-tests/RESULTS.md). 10 ms bounds that; on a real broker it only makes an idle
/// consumer send more (empty) fetches.
pub const FETCH_WAIT_MAX_MS: &str = "10";

/// Sets [`FETCH_WAIT_MAX_MS`] on a consumer configuration that does not set its own.
pub fn default_fetch_wait(c: &mut ClientConfig) {
    if c.get("fetch.wait.max.ms").is_none() {
        c.set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS);
    }
}

/// Sets librdkafka's `security.protocol`, and the SASL and TLS properties the protocol uses.
/// The combinations are checked when the configuration loads (`crate::security`).
pub fn apply_security(c: &mut ClientConfig, kafka: &KafkaConfig, secrets: &Secrets) {
    let protocol = kafka.security_protocol;
    c.set("security.protocol", protocol.as_librdkafka());
    if protocol.is_sasl() {
        if let Some(m) = kafka.sasl_mechanism {
            c.set("sasl.mechanism", m.as_librdkafka());
        }
        if let Some(user) = &kafka.sasl_username {
            c.set("sasl.username", user);
        }
        if let Some(pw) = &secrets.kafka_sasl_password {
            c.set("sasl.password", pw);
        }
    }
    if protocol.is_ssl() {
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
    }
}

/// Kafka settings and secrets for a client built outside the runtime; the default is a
/// plaintext connection with no extra properties.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaSecurity {
    pub kafka: KafkaConfig,
    pub secrets: Secrets,
}

impl KafkaSecurity {
    /// [`base_config`] of these settings, connecting to `bootstrap_servers`.
    pub fn client_config(&self, bootstrap_servers: &str) -> ClientConfig {
        let mut c = base_config(&self.kafka, &self.secrets);
        c.set("bootstrap.servers", bootstrap_servers);
        c
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{SaslMechanism, SecurityProtocol};
    use rdkafka::producer::BaseProducer;

    fn secrets() -> Secrets {
        Secrets {
            kafka_sasl_password: Some("sasl-pw".into()),
            kafka_ssl_key_password: Some("key-pw".into()),
            postgres_password: Some("pg-pw".into()),
        }
    }

    fn kafka(protocol: SecurityProtocol, mechanism: Option<SaslMechanism>) -> KafkaConfig {
        let tls = protocol.is_ssl();
        let file = |f: &str| tls.then(|| format!("/etc/kafka/{f}"));
        KafkaConfig {
            security_protocol: protocol,
            sasl_mechanism: mechanism,
            sasl_username: protocol.is_sasl().then(|| "svc".into()),
            ssl_ca_location: file("ca.pem"),
            ssl_certificate_location: file("client.pem"),
            ssl_key_location: file("client.key"),
            ..KafkaConfig::default()
        }
    }

    /// Every librdkafka property the config sets, bootstrap servers aside (values through
    /// `get`: `config_map` shows sensitive ones sanitised).
    fn properties(c: &ClientConfig) -> BTreeMap<String, String> {
        c.config_map()
            .keys()
            .map(|k| k.to_string())
            .filter(|k| k != "bootstrap.servers")
            .map(|k| {
                let v = c.get(&k).unwrap_or_default().to_string();
                (k, v)
            })
            .collect()
    }

    fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plaintext_sets_only_the_protocol() {
        let c = base_config(&kafka(SecurityProtocol::Plaintext, None), &secrets());
        assert_eq!(
            properties(&c),
            expect(&[("security.protocol", "plaintext")])
        );
    }

    #[test]
    fn ssl_sets_the_ca_client_certificate_and_key() {
        let c = base_config(&kafka(SecurityProtocol::Ssl, None), &secrets());
        assert_eq!(
            properties(&c),
            expect(&[
                ("security.protocol", "ssl"),
                ("ssl.ca.location", "/etc/kafka/ca.pem"),
                ("ssl.certificate.location", "/etc/kafka/client.pem"),
                ("ssl.key.location", "/etc/kafka/client.key"),
                ("ssl.key.password", "key-pw"),
            ])
        );
    }

    #[test]
    fn every_sasl_mechanism_maps_to_librdkafka() {
        for (mechanism, name) in [
            (SaslMechanism::Plain, "PLAIN"),
            (SaslMechanism::ScramSha256, "SCRAM-SHA-256"),
            (SaslMechanism::ScramSha512, "SCRAM-SHA-512"),
        ] {
            let c = base_config(
                &kafka(SecurityProtocol::SaslPlaintext, Some(mechanism)),
                &secrets(),
            );
            assert_eq!(
                properties(&c),
                expect(&[
                    ("security.protocol", "sasl_plaintext"),
                    ("sasl.mechanism", name),
                    ("sasl.username", "svc"),
                    ("sasl.password", "sasl-pw"),
                ]),
                "{name}"
            );
            let c = base_config(
                &kafka(SecurityProtocol::SaslSsl, Some(mechanism)),
                &secrets(),
            );
            assert_eq!(
                properties(&c),
                expect(&[
                    ("security.protocol", "sasl_ssl"),
                    ("sasl.mechanism", name),
                    ("sasl.username", "svc"),
                    ("sasl.password", "sasl-pw"),
                    ("ssl.ca.location", "/etc/kafka/ca.pem"),
                    ("ssl.certificate.location", "/etc/kafka/client.pem"),
                    ("ssl.key.location", "/etc/kafka/client.key"),
                    ("ssl.key.password", "key-pw"),
                ]),
                "{name}"
            );
        }
    }

    /// librdkafka refuses `security.protocol=ssl` or a SCRAM mechanism at client creation
    /// when it was built without OpenSSL: creating a client proves the build has them.
    #[test]
    fn this_build_of_librdkafka_supports_every_protocol_and_mechanism() {
        for protocol in [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ] {
            for mechanism in [
                SaslMechanism::Plain,
                SaslMechanism::ScramSha256,
                SaslMechanism::ScramSha512,
            ] {
                let mut k = kafka(protocol, protocol.is_sasl().then_some(mechanism));
                // No files: librdkafka would read them at creation.
                k.ssl_ca_location = None;
                k.ssl_certificate_location = None;
                k.ssl_key_location = None;
                let s = Secrets {
                    kafka_ssl_key_password: None,
                    ..secrets()
                };
                let created = base_config(&k, &s).create::<BaseProducer>();
                assert!(
                    created.is_ok(),
                    "{protocol:?} {mechanism:?}: {:?}",
                    created.err()
                );
            }
        }
    }

    #[test]
    fn the_fetch_wait_defaults_low_and_the_configuration_wins() {
        let mut c = base_config(&KafkaConfig::default(), &Secrets::default());
        default_fetch_wait(&mut c);
        assert_eq!(c.get("fetch.wait.max.ms"), Some(FETCH_WAIT_MAX_MS));
        let mut k = KafkaConfig::default();
        k.properties
            .insert("fetch.wait.max.ms".into(), "250".into());
        let mut c = base_config(&k, &Secrets::default());
        default_fetch_wait(&mut c);
        assert_eq!(c.get("fetch.wait.max.ms"), Some("250"));
    }

    #[test]
    fn a_generator_client_keeps_the_security_and_its_own_servers() {
        let sec = KafkaSecurity {
            kafka: kafka(SecurityProtocol::SaslSsl, Some(SaslMechanism::ScramSha512)),
            secrets: secrets(),
        };
        let c = sec.client_config("broker:9093");
        assert_eq!(c.get("bootstrap.servers"), Some("broker:9093"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("sasl.password"), Some("sasl-pw"));
        assert!(!format!("{c:?}").contains("sasl-pw"), "{c:?}");
    }
}
