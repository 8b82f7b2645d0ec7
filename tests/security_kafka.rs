//! Kafka security settings through the real binary. Start-up refuses bad combinations with
//! the setting's name (SCRAM without a password, a missing CA file, a typed key passed as
//! a raw property). A SASL/SCRAM client and a TLS client with an encrypted key, pointed at
//! the mock cluster (which speaks neither, so the handshakes fail after the secrets are
//! in use), log at debug level with librdkafka's own security/broker/conf debug on, and
//! neither password appears in anything they print; a wrong key password fails clearly.
//!
//! librdkafka's mock cluster has no SASL or TLS listener, so a successful SASL or TLS
//! session is not shown here: that needs a real broker (README, "Security").

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::db::start_pg;
use support::kafka::MockKafka;
use support::pg_security::make_pki;
use support::proc::{log_tail, spawn_logged, write_config};

const SASL_PASSWORD: &str = "sasl-Secret-9d2e61ab";
const KEY_PASSWORD: &str = "key-Secret-4c7f80e3";
const PG_PASSWORD: &str = "pg-Secret-0b5d7a19";

/// A config for the mock cluster and PostgreSQL, with `kafka` lines added to [kafka] and
/// `properties` lines to [kafka.properties].
fn config(dir: &Path, bootstrap: &str, pg_port: u16, kafka: &str, properties: &str) -> String {
    let path = write_config(dir, bootstrap, pg_port, "exactly-once", 0);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            &format!("[kafka]\nbootstrap_servers = \"{bootstrap}\"\n"),
            &format!("[kafka]\nbootstrap_servers = \"{bootstrap}\"\n{kafka}"),
        )
        .replace(
            "[kafka.properties]\n",
            &format!("[kafka.properties]\n{properties}"),
        );
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn secrets(mut c: Command) -> Command {
    c.env("SHOPSTREAM_KAFKA_SASL_PASSWORD", SASL_PASSWORD)
        .env("SHOPSTREAM_KAFKA_SSL_KEY_PASSWORD", KEY_PASSWORD)
        .env("SHOPSTREAM_POSTGRES_PASSWORD", PG_PASSWORD)
        .env("RUST_LOG", "debug");
    c
}

fn assert_no_secret(what: &str, text: &str) {
    for s in [SASL_PASSWORD, KEY_PASSWORD, PG_PASSWORD] {
        assert!(!text.contains(s), "{what}: a secret appears in the output");
    }
}

/// Runs `shopstream --config cfg <args>` for at most `secs` seconds (SIGTERM then) and
/// returns whether it exited successfully by itself (None when it had to be stopped) and
/// its output.
fn run_for(
    cmd: Command,
    cfg: &str,
    args: &[&str],
    secs: u64,
    log: &Path,
) -> (Option<bool>, String) {
    let mut cmd = cmd;
    cmd.args(["--config", cfg]).args(args);
    let mut child = spawn_logged(cmd, log);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) && !child.exited() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = if child.exited() {
        // terminate() on an exited child only reaps it and reports its status.
        Some(child.terminate())
    } else {
        child.terminate();
        None
    };
    let text = String::from_utf8_lossy(&std::fs::read(log).unwrap()).into_owned();
    (code, text)
}

/// A bad [kafka] section and properties, the environment it runs with, and what the error
/// must name.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn bad_security_settings_fail_at_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [Case; 4] = [
        (
            "security_protocol = \"sasl_ssl\"\nsasl_mechanism = \"SCRAM-SHA-256\"\nsasl_username = \"svc\"\n",
            "",
            &[],
            &["kafka.sasl_mechanism", "SCRAM-SHA-256", "SHOPSTREAM_KAFKA_SASL_PASSWORD"],
        ),
        (
            "security_protocol = \"ssl\"\nssl_ca_location = \"/nonexistent/kafka-ca.pem\"\n",
            "",
            &[],
            &["kafka.ssl_ca_location", "/nonexistent/kafka-ca.pem"],
        ),
        (
            "security_protocol = \"sasl_plaintext\"\nsasl_username = \"svc\"\n",
            "",
            &[("SHOPSTREAM_KAFKA_SASL_PASSWORD", SASL_PASSWORD)],
            &["kafka.sasl_mechanism", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"],
        ),
        (
            "",
            "\"security.protocol\" = \"sasl_ssl\"\n",
            &[],
            &["kafka.properties.security.protocol", "kafka.security_protocol"],
        ),
    ];
    for (i, (kafka, properties, env, expected)) in cases.iter().enumerate() {
        let sub = dir.path().join(i.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        let cfg = config(&sub, "127.0.0.1:1", 1, kafka, properties);
        let mut cmd = support::shopstream();
        cmd.envs(env.iter().copied());
        let out = cmd.args(["--config", &cfg, "run"]).output().unwrap();
        let text = support::output_text(&out);
        assert_eq!(out.status.code(), Some(2), "case {i}: {text}");
        for e in *expected {
            assert!(text.contains(e), "case {i}: expected {e:?} in {text}");
        }
        assert_no_secret(&format!("case {i}"), &text);
    }
}

#[test]
fn sasl_and_tls_clients_keep_their_secrets_out_of_debug_logs() {
    let k = MockKafka::with_topics(2);
    let pg = start_pg();
    let dir = tempfile::tempdir().unwrap();
    let debug = "debug = \"security,broker,conf\"\n";

    // SASL/SCRAM-SHA-512 over plaintext: the mock supports no SASL handshake, so the
    // client stops before sending credentials; its configuration (librdkafka's `conf`
    // debug dump included) holds the password throughout.
    let sub = dir.path().join("sasl");
    std::fs::create_dir_all(&sub).unwrap();
    let cfg = config(
        &sub,
        &k.bootstrap(),
        pg.port(),
        "security_protocol = \"sasl_plaintext\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"svc\"\n",
        debug,
    );
    // `generate` polls its producer, which serves librdkafka's log; `run` waits for a
    // broker at start-up and gives up after `processing.startup_timeout_ms` (5 s here).
    generate_logs(&cfg, &sub, "required by mechanism SCRAM-SHA-512");
    let mut run = secrets(support::shopstream());
    run.env("SHOPSTREAM_PROCESSING__STARTUP_TIMEOUT_MS", "5000");
    let (code, text) = run_for(run, &cfg, &["run"], 60, &sub.join("run.log"));
    assert_eq!(code, Some(false), "{}", log_tail(&sub.join("run.log"), 40));
    assert!(
        text.contains("no Kafka broker reachable"),
        "{}",
        log_tail(&sub.join("run.log"), 40)
    );
    assert_no_secret("SASL run", &text);

    // TLS with a client certificate whose key is encrypted with the key password.
    let sub = dir.path().join("tls");
    std::fs::create_dir_all(&sub).unwrap();
    let pki = make_pki(&["localhost"]);
    let (ca, cert, key) = (
        sub.join("ca.pem"),
        sub.join("client.pem"),
        sub.join("client.key"),
    );
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    std::fs::write(&cert, &pki.server_cert_pem).unwrap();
    encrypt_key(&pki.server_key_pem, &key, &sub);
    let cfg = config(
        &sub,
        &k.bootstrap(),
        pg.port(),
        &format!(
            "security_protocol = \"ssl\"\nssl_ca_location = \"{}\"\nssl_certificate_location = \"{}\"\nssl_key_location = \"{}\"\n",
            ca.display(),
            cert.display(),
            key.display()
        ),
        debug,
    );
    generate_logs(&cfg, &sub, "SSL handshake failed");

    // The same key with a wrong password: the client cannot be created.
    let mut cmd = secrets(support::shopstream());
    cmd.env("SHOPSTREAM_KAFKA_SSL_KEY_PASSWORD", "wrong-Secret-77aa");
    let (code, text) = run_for(cmd, &cfg, &["run"], 30, &sub.join("wrong.log"));
    assert_eq!(
        code,
        Some(false),
        "{}",
        log_tail(&sub.join("wrong.log"), 40)
    );
    assert!(
        text.contains("ssl.key") || text.contains("private key"),
        "the error names the key:\n{}",
        log_tail(&sub.join("wrong.log"), 40)
    );
    assert!(
        !text.contains("wrong-Secret-77aa"),
        "the wrong password is printed"
    );
    assert_no_secret("TLS run with a wrong key password", &text);
}

/// Runs `generate` with every secret set for 8 s: its debug log must show `expected` (the
/// client at work) and no secret.
fn generate_logs(cfg: &str, dir: &Path, expected: &str) {
    let log = dir.join("generate.log");
    let generate = ["generate", "--count", "100", "--rate", "0"];
    let (_, text) = run_for(secrets(support::shopstream()), cfg, &generate, 8, &log);
    assert!(
        text.contains(expected),
        "expected {expected:?} in the debug log:\n{}",
        log_tail(&log, 40)
    );
    assert_no_secret("generate", &text);
}

/// Writes `key_pem` to `out` as PKCS#8 encrypted with KEY_PASSWORD (openssl CLI).
fn encrypt_key(key_pem: &str, out: &Path, dir: &Path) {
    let plain = dir.join("plain.key");
    std::fs::write(&plain, key_pem).unwrap();
    let status = Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "env:KEYPW",
            "-in",
        ])
        .arg(&plain)
        .arg("-out")
        .arg(out)
        .env("KEYPW", KEY_PASSWORD)
        .status()
        .expect("the openssl command (Debian package openssl)");
    assert!(status.success());
    std::fs::remove_file(plain).unwrap();
}
