//! PostgreSQL TLS through shopstream's one connect function (`sink::postgres::connect`),
//! against the throw-away server: first without TLS (disable and prefer connect in the
//! clear, require fails clearly), then with TLS switched on and a certificate from a test
//! CA naming only `localhost` (require and prefer encrypt; verify-ca checks the chain;
//! verify-full also the name; a wrong CA or a wrong name fails clearly; disable stays in
//! the clear).

mod support;

use shopstream::sink::postgres::connect;
use support::db::{start_pg, Db};
use support::pg_security::{enable_tls, is_tls, make_pki};

fn conn(port: u16, host: &str, mode: &str, ca: Option<&std::path::Path>) -> String {
    let mut s = format!("host={host} port={port} user=shop dbname=shop sslmode={mode}");
    if let Some(ca) = ca {
        s.push_str(&format!(" sslrootcert='{}'", ca.display()));
    }
    s
}

async fn connect_err(conn: &str) -> String {
    match connect(conn).await {
        Ok(_) => panic!("{conn}: connected, expected a failure"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sslmodes_against_a_server_without_and_with_tls() {
    let pg = start_pg();
    let port = pg.port();
    let admin = Db::connect(&pg).await;

    // Without TLS on the server.
    for mode in ["disable", "prefer"] {
        let c = connect(&conn(port, "127.0.0.1", mode, None))
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e:#}"));
        assert!(!is_tls(&c).await, "{mode}");
    }
    let e = connect_err(&conn(port, "127.0.0.1", "require", None)).await;
    assert!(
        e.contains("sslmode require") && e.contains("TLS"),
        "require against a server without TLS: {e}"
    );

    // TLS on, with a certificate for `localhost` only.
    let pki = make_pki(&["localhost"]);
    enable_tls(&admin.client, &pki).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let wrong_ca = dir.path().join("other-ca.pem");
    std::fs::write(&wrong_ca, make_pki(&["localhost"]).ca_pem).unwrap();

    for (host, mode, ca) in [
        ("127.0.0.1", "prefer", None),
        ("127.0.0.1", "require", None),
        ("127.0.0.1", "verify-ca", Some(ca.as_path())),
        ("localhost", "verify-full", Some(ca.as_path())),
    ] {
        let c = connect(&conn(port, host, mode, ca))
            .await
            .unwrap_or_else(|e| panic!("{mode} to {host}: {e:#}"));
        assert!(is_tls(&c).await, "{mode} to {host} is not encrypted");
    }
    let c = connect(&conn(port, "127.0.0.1", "disable", None))
        .await
        .unwrap();
    assert!(!is_tls(&c).await, "disable must not encrypt");

    // A CA that did not sign the server's certificate.
    for mode in ["verify-full", "verify-ca", "require"] {
        let e = connect_err(&conn(port, "localhost", mode, Some(&wrong_ca))).await;
        assert!(
            e.contains(&format!("sslmode {mode}")) && e.contains("UnknownIssuer"),
            "{mode} with the wrong CA: {e}"
        );
    }
    // The right CA, but the certificate does not name 127.0.0.1.
    let e = connect_err(&conn(port, "127.0.0.1", "verify-full", Some(&ca))).await;
    assert!(
        e.contains("sslmode verify-full")
            && (e.contains("NotValidForName") || e.contains("not valid for name")),
        "verify-full to a name the certificate lacks: {e}"
    );
}
