//! PostgreSQL security set-ups for the security tests, on the throw-away server: a test CA
//! and server certificate made with rcgen, TLS switched on by `ALTER SYSTEM` and a reload,
//! password (SCRAM) authentication required for one role through pg_hba.conf, and the
//! least-privilege sink role of schemas/postgres/sink_role.sql.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio_postgres::Client;

/// A CA and a server certificate it signed.
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

/// A new CA and a server certificate for `names` (DNS names).
pub fn make_pki(names: &[&str]) -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A name of its own per CA: two CAs of one name would look like the same issuer.
    static CAS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = CAS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("shopstream test CA {} {n}", std::process::id()),
    );
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        server_cert_pem: cert.pem(),
        server_key_pem: key.serialize_pem(),
    }
}

/// The server's data directory.
async fn data_dir(admin: &Client) -> PathBuf {
    let row = admin.query_one("SHOW data_directory", &[]).await.unwrap();
    PathBuf::from(row.get::<_, String>(0))
}

/// Writes a file the server process can read (and only it, for keys).
fn write_for_server(path: &Path, contents: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let ok = std::process::Command::new("chown")
            .arg("postgres:")
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown postgres {}", path.display());
    }
}

/// Switches TLS on with `pki`'s server certificate; new connections may use it.
pub async fn enable_tls(admin: &Client, pki: &TestPki) {
    let dir = data_dir(admin).await;
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    write_for_server(&cert, &pki.server_cert_pem);
    write_for_server(&key, &pki.server_key_pem);
    // ALTER SYSTEM takes no bind parameters; the paths are our own temporary directory.
    for (name, value) in [
        ("ssl_cert_file", cert.display().to_string()),
        ("ssl_key_file", key.display().to_string()),
        ("ssl", "on".to_string()),
    ] {
        assert!(!value.contains('\''), "{value}");
        admin
            .batch_execute(&format!("ALTER SYSTEM SET {name} = '{value}'"))
            .await
            .unwrap();
    }
    reload(admin).await;
}

/// Makes `role` authenticate by password (SCRAM) over TCP; other roles keep trust.
pub async fn require_password(admin: &Client, role: &str) {
    let hba: String = admin.query_one("SHOW hba_file", &[]).await.unwrap().get(0);
    let old = std::fs::read_to_string(&hba).unwrap();
    let text = format!(
        "host all {role} 127.0.0.1/32 scram-sha-256\nhost all {role} ::1/128 scram-sha-256\n{old}"
    );
    write_for_server(Path::new(&hba), &text);
    reload(admin).await;
}

async fn reload(admin: &Client) {
    let ok: bool = admin
        .query_one("SELECT pg_reload_conf()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(ok);
    // The postmaster applies the reload asynchronously.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let errors: Vec<String> = admin
        .query(
            // Only what these set-ups change (max_connections differs from the command
            // line, which the server reports as "could not be applied").
            "SELECT coalesce(name, '') || ': ' || error FROM pg_file_settings
             WHERE error IS NOT NULL AND (name IS NULL OR name LIKE 'ssl%')
             UNION ALL
             SELECT 'pg_hba.conf line ' || line_number || ': ' || error FROM pg_hba_file_rules
             WHERE error IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        errors.is_empty(),
        "the server's configuration has errors: {errors:?}"
    );
}

/// Creates the sink role with schemas/postgres/sink_role.sql (run by `admin`, the tables'
/// owner) and gives it `password`.
pub async fn create_sink_role(admin: &Client, password: &str) {
    admin
        .batch_execute(include_str!("../../schemas/postgres/sink_role.sql"))
        .await
        .unwrap();
    // The password goes in as a literal (ALTER ROLE takes no parameters): quote it.
    let literal: String = admin
        .query_one("SELECT quote_literal($1)", &[&password])
        .await
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!("ALTER ROLE shopstream_sink PASSWORD {literal}"))
        .await
        .unwrap();
}

/// Whether the connection of `client` is encrypted.
pub async fn is_tls(client: &Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}
