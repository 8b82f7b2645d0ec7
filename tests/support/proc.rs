//! Running the real `shopstream run` binary as child processes against the test's mock
//! cluster and throw-away PostgreSQL: a config file per instance, a JSON log per test.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// Writes the config of instance `instance` and returns its path.
pub fn write_config(
    dir: &Path,
    bootstrap: &str,
    pg_port: u16,
    guarantee: &str,
    instance: u32,
) -> PathBuf {
    let path = dir.join(format!("shopstream-{instance}.toml"));
    let text = format!(
        "[kafka]\nbootstrap_servers = \"{bootstrap}\"\n[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\
         \"heartbeat.interval.ms\" = \"500\"\n[postgres]\nhost = \"127.0.0.1\"\nport = {pg_port}\nuser = \"shop\"\n\
         dbname = \"shop\"\nsslmode = \"disable\"\n[processing]\nguarantee = \"{guarantee}\"\ninstance_id = \"{instance}\"\n\
         [metrics]\nlisten = \"\"\n[engine.watermark]\nidle_timeout_ms = 2000\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `shopstream run` with `config`, appending its JSON log to `log`.
pub fn spawn_run(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    super::shopstream()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--log-format",
            "json",
            "run",
        ])
        .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Asks a child to stop (SIGTERM) and waits; true when it exited cleanly.
pub fn terminate(mut child: Child) -> bool {
    // SAFETY: signalling a child process we own.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().map(|s| s.success()).unwrap_or(false)
}
