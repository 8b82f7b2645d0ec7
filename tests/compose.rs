//! docker-compose.yml is a valid Compose file: `docker compose config` (the v2 plugin) or
//! `docker-compose config` (v1) parses it, resolves every interpolation with the secrets
//! set, and refuses to resolve it when the PostgreSQL password is missing. Where neither
//! client exists the test says so and checks nothing (no Docker engine is needed, only
//! the client).

use std::process::{Command, Output};

fn compose(args: &[&str], with_secrets: bool) -> Option<Output> {
    let root = env!("CARGO_MANIFEST_DIR");
    let run = |program: &str, prefix: &[&str]| {
        let mut cmd = Command::new(program);
        cmd.args(prefix)
            .args(["--project-directory", root, "-f"])
            .arg(format!("{root}/docker-compose.yml"))
            .args(args)
            .env_remove("SHOPSTREAM_POSTGRES_PASSWORD")
            .env_remove("GRAFANA_ADMIN_PASSWORD")
            .env("COMPOSE_PROJECT_NAME", "shopstream");
        if with_secrets {
            cmd.env("SHOPSTREAM_POSTGRES_PASSWORD", "test-only")
                .env("GRAFANA_ADMIN_PASSWORD", "test-only");
        }
        cmd.output().ok()
    };
    // The v2 plugin first (a docker client without it fails `docker compose version`).
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if plugin {
        run("docker", &["compose"])
    } else {
        run("docker-compose", &[])
    }
}

#[test]
fn compose_file_validates_and_requires_its_secrets() {
    let Some(ok) = compose(&["config", "--services"], true) else {
        eprintln!("SKIPPED: neither `docker compose` nor `docker-compose` is installed");
        return;
    };
    assert!(
        ok.status.success(),
        "compose config failed:\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let services = String::from_utf8_lossy(&ok.stdout);
    for s in [
        "kafka",
        "schema-registry",
        "postgres",
        "init",
        "shopstream",
        "generator",
        "prometheus",
        "grafana",
    ] {
        assert!(
            services.lines().any(|l| l.trim() == s),
            "service {s} missing from {services}"
        );
    }
    let missing = compose(&["config", "--services"], false).unwrap();
    assert!(
        !missing.status.success(),
        "compose config must refuse to run without SHOPSTREAM_POSTGRES_PASSWORD"
    );
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("SHOPSTREAM_POSTGRES_PASSWORD"),
        "the error names the missing secret: {}",
        String::from_utf8_lossy(&missing.stderr)
    );
}
