//! Connecting to PostgreSQL: the one place shopstream opens a database connection (sink,
//! replay, `replay diff`, `migrate`, the demo's live view). A libpq-style connection string
//! (`key=value` pairs) carries the settings, including libpq's `sslmode` — disable, prefer,
//! require, verify-ca, verify-full — and `sslrootcert`, which tokio-postgres does not know:
//! [`connect`] takes them out, builds a rustls connector with libpq's meaning of the mode
//! (prefer/require encrypt without checking the certificate unless a CA file is given;
//! verify-ca checks the chain; verify-full also the host name; the CA file, or else the
//! system trust store, anchors the check) and hands the rest to tokio-postgres. The
//! password comes only from the environment ([`connection_string`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode as WireSslMode;
use tokio_postgres::Client;
use tracing::warn;

use crate::config::{PostgresConfig, Secrets, SslMode};

/// The libpq connection string of `pg`, with the password from the environment.
pub fn connection_string(pg: &PostgresConfig, secrets: &Secrets) -> String {
    let mut s = format!(
        "host={} port={} user={} dbname={} sslmode={}",
        quote(&pg.host),
        pg.port,
        quote(&pg.user),
        quote(&pg.dbname),
        pg.sslmode.as_libpq(),
    );
    if let Some(ca) = &pg.sslrootcert {
        s.push_str(&format!(" sslrootcert={}", quote(ca)));
    }
    if let Some(pw) = &secrets.postgres_password {
        s.push_str(&format!(" password={}", quote(pw)));
    }
    s
}

fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Opens a connection as `conn` says, TLS included, and drives it on a background task.
pub async fn connect(conn: &str) -> Result<Client> {
    let (config, tls) = parse(conn)?;
    let target = describe(&config, tls.mode);
    let connector = tokio_postgres_rustls::MakeRustlsConnect::new(tls.rustls_config()?);
    let (client, connection) = config
        .connect(connector)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {target}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

/// Host, port and sslmode, for error messages (never the password).
fn describe(config: &tokio_postgres::Config, mode: SslMode) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port} (sslmode {})", mode.as_libpq())
}

/// The TLS part of a connection string.
#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
}

/// Splits `conn` into tokio-postgres settings and the TLS settings.
pub fn parse(conn: &str) -> Result<(tokio_postgres::Config, Tls)> {
    let mut tls = Tls {
        mode: SslMode::Prefer,
        root_cert: None,
    };
    let mut rest = Vec::new();
    for (key, value) in conninfo_pairs(conn)? {
        match key.as_str() {
            "sslmode" => {
                tls.mode = match value.as_str() {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => bail!(
                        "sslmode {other:?}: expected disable, prefer, require, verify-ca or verify-full"
                    ),
                }
            }
            "sslrootcert" => tls.root_cert = Some(PathBuf::from(value)),
            _ => rest.push(format!("{key}={}", quote(&value))),
        }
    }
    let mut config = tokio_postgres::Config::from_str(&rest.join(" "))
        .context("invalid PostgreSQL connection settings")?;
    config.ssl_mode(match tls.mode {
        SslMode::Disable => WireSslMode::Disable,
        SslMode::Prefer => WireSslMode::Prefer,
        _ => WireSslMode::Require,
    });
    Ok((config, tls))
}

/// The `key=value` pairs of a libpq connection string (values bare or single-quoted, with
/// backslash escapes).
fn conninfo_pairs(conn: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = conn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            bail!("invalid PostgreSQL connection string: expected `=` after {key:?}");
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.next() {
                None if quoted => {
                    bail!("invalid PostgreSQL connection string: unterminated quote in {key}")
                }
                None => break,
                Some('\'') if quoted => break,
                Some(c) if c.is_whitespace() && !quoted => break,
                Some('\\') => value.extend(chars.next()),
                Some(c) => value.push(c),
            }
        }
        pairs.push((key, value));
    }
}

impl Tls {
    /// The rustls configuration for this mode (also built for `disable`, which never uses it).
    pub fn rustls_config(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        // libpq: with a CA file, `prefer` and `require` verify the chain like verify-ca.
        let mode = match (self.mode, &self.root_cert) {
            (SslMode::Prefer | SslMode::Require, Some(_)) => SslMode::VerifyCa,
            (mode, _) => mode,
        };
        let verifier: Arc<dyn ServerCertVerifier> = match mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(LibpqVerifier {
                chain: None,
                provider,
            }),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(self.roots()?),
                    provider.clone(),
                )
                .build()
                .context("building the PostgreSQL certificate verifier")?;
                if mode == SslMode::VerifyCa {
                    Arc::new(LibpqVerifier {
                        chain: Some(webpki),
                        provider,
                    })
                } else {
                    webpki
                }
            }
        };
        Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth())
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &self.root_cert {
            Some(path) => {
                let certs = read_certs(path)?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    bail!("sslrootcert {}: no usable CA certificate", path.display());
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    bail!("sslmode verify-ca/verify-full: no sslrootcert set and no system CA certificates found");
                }
            }
        }
        Ok(roots)
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading sslrootcert {}", path.display()))
}

/// The modes webpki has no verifier for: `prefer`/`require` without a CA file (encrypt,
/// accept any certificate: libpq's meaning) and `verify-ca` (the chain must lead to the
/// CA; the host name is not checked). Both still check the handshake's signatures.
#[derive(Debug)]
struct LibpqVerifier {
    /// The chain check of `verify-ca`; None accepts any certificate.
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the name only after the chain, so a name error means a good chain.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_keys_are_taken_out_and_the_rest_parses() {
        let (c, tls) = parse(
            "host='db.example' port=6432 user=sink dbname=shop sslmode=verify-full \
             sslrootcert='/etc/ssl/pg ca.pem' password='p\\'w' options='-c search_path=shadow'",
        )
        .unwrap();
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/etc/ssl/pg ca.pem")));
        assert_eq!(c.get_ssl_mode(), WireSslMode::Require);
        assert_eq!(c.get_user(), Some("sink"));
        assert_eq!(c.get_password(), Some(&b"p'w"[..]));
        assert_eq!(c.get_options(), Some("-c search_path=shadow"));
        assert_eq!(c.get_ports(), &[6432]);
    }

    #[test]
    fn modes_map_to_the_wire_and_default_to_prefer() {
        for (mode, wire) in [
            ("disable", WireSslMode::Disable),
            ("prefer", WireSslMode::Prefer),
            ("require", WireSslMode::Require),
            ("verify-ca", WireSslMode::Require),
        ] {
            let (c, _) = parse(&format!("host=h sslmode={mode}")).unwrap();
            assert_eq!(c.get_ssl_mode(), wire, "{mode}");
        }
        assert_eq!(parse("host=h").unwrap().1.mode, SslMode::Prefer);
        let e = parse("host=h sslmode=allow").unwrap_err().to_string();
        assert!(e.contains("sslmode"), "{e}");
        assert!(parse("host='h").is_err());
    }

    #[test]
    fn the_connection_string_round_trips_through_parse() {
        let pg = PostgresConfig {
            host: "db host".into(),
            sslmode: SslMode::VerifyCa,
            sslrootcert: Some("/ca.pem".into()),
            ..PostgresConfig::default()
        };
        let secrets = Secrets {
            postgres_password: Some("it's \\ secret".into()),
            ..Secrets::default()
        };
        let (c, tls) = parse(&connection_string(&pg, &secrets)).unwrap();
        assert_eq!(c.get_password(), Some("it's \\ secret".as_bytes()));
        assert_eq!(tls.mode, SslMode::VerifyCa);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/ca.pem")));
        assert!(!format!("{c:?}").contains("secret"), "{c:?}");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let tls = Tls {
            mode: SslMode::VerifyFull,
            root_cert: Some("/nonexistent/ca.pem".into()),
        };
        let e = format!("{:#}", tls.rustls_config().unwrap_err());
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let tls = Tls {
            mode: SslMode::VerifyFull,
            root_cert: Some(empty),
        };
        let e = format!("{:#}", tls.rustls_config().unwrap_err());
        assert!(e.contains("no usable CA certificate"), "{e}");
    }
}
