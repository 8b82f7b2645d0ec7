//! Running the real `shopstream run` binary as child processes against the test's mock
//! cluster and throw-away PostgreSQL: a config file per instance, a JSON log per test.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

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
pub fn spawn_run(config: &Path, log: &Path) -> Running {
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
        .map(Running::new)
        .unwrap()
}

/// Starts `cmd` with stdout and stderr both written to `log` (a pipe nobody reads would
/// stall a chatty debug log).
pub fn spawn_logged(mut cmd: std::process::Command, log: &Path) -> Running {
    let file = std::fs::File::create(log).unwrap();
    cmd.stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .map(Running::new)
        .unwrap()
}

/// Asks a child to stop (SIGTERM) and waits at most 60 s; true when it exited cleanly in
/// time. A child that does not stop is killed (SIGKILL) so a test never hangs on it.
pub fn terminate(mut child: Child) -> bool {
    // SAFETY: signalling a child process we own.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                eprintln!(
                    "child {} did not stop within 60 s of SIGTERM; killing it",
                    child.id()
                );
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// A running child that is killed when dropped, so a failing test leaves no process behind.
pub struct Running(Option<Child>);

impl Running {
    pub fn new(child: Child) -> Running {
        Running(Some(child))
    }

    /// Stops it with SIGTERM (see [`terminate`]).
    pub fn terminate(mut self) -> bool {
        terminate(self.0.take().expect("running child"))
    }

    /// True when it has exited already.
    pub fn exited(&mut self) -> bool {
        self.0
            .as_mut()
            .map_or(true, |c| !matches!(c.try_wait(), Ok(None)))
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) and waits at most `limit` for the exit: the
    /// exit code (None: killed after the limit) and how long it took.
    pub fn signal_and_wait(&mut self, signal: i32, limit: Duration) -> (Option<i32>, Duration) {
        if let Some(c) = &self.0 {
            // SAFETY: signalling a child process we own.
            unsafe {
                libc::kill(c.id() as i32, signal);
            }
        }
        let started = Instant::now();
        (self.wait_exit(limit), started.elapsed())
    }

    /// Waits at most `limit` for it to exit by itself: its exit code, or None when it had
    /// to be killed after the limit (or ended by a signal).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let mut c = self.0.take()?;
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(s)) = c.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// Stops it with SIGKILL.
    pub fn kill(mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The last `n` lines of a test's log, for failure messages.
pub fn log_tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The log's warnings and errors plus its last `n` lines, for failure messages.
pub fn log_report(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let notable: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\""))
        .take(40)
        .collect();
    format!(
        "warnings and errors:\n{}\nlast lines:\n{}",
        notable.join("\n"),
        log_tail(log, n)
    )
}
