//! A throw-away PostgreSQL cluster started from the system's binaries, for `demo` and tests.
//!
//! It runs `initdb` into a fresh temporary directory (trust authentication, superuser
//! `shop`), starts the server with `pg_ctl` on a free loopback port with its socket in that
//! directory, and on drop stops it (`-m immediate`) and deletes the directory. initdb
//! refuses to run as root, so when the process is root the commands run as the `postgres`
//! user through `runuser` and the directory is handed to that user. The binaries are found
//! under `/usr/lib/postgresql/<version>/bin` (newest first) or through `PG_BIN`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A running throw-away PostgreSQL server.
pub struct EmbeddedPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
    stopped: bool,
}

pub const USER: &str = "shop";
pub const DATABASE: &str = "postgres";

impl EmbeddedPostgres {
    /// Initialises and starts a new cluster; fails with a clear message when PostgreSQL is
    /// not installed.
    pub fn start() -> Result<EmbeddedPostgres> {
        let bin = find_bin_dir()?;
        let as_postgres_user = is_root();
        let dir = std::env::temp_dir().join(format!(
            "shopstream-pg-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut pg = EmbeddedPostgres {
            dir,
            bin,
            port: free_port()?,
            as_postgres_user,
            stopped: true,
        };
        if as_postgres_user {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(&pg.dir))?;
        }
        let data = pg.dir.join("data");
        pg.run_pg(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-A",
                "trust",
                "-U",
                USER,
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            pg.port,
            path_str(&pg.dir)?
        );
        let log = pg.dir.join("server.log");
        pg.run_pg(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        pg.stopped = false;
        pg.wait_ready(Duration::from_secs(30))?;
        Ok(pg)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A tokio-postgres / libpq connection string for database `db`.
    pub fn connection_string(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user={USER} dbname={db}", self.port)
    }

    /// Creates a database (no error if it exists).
    pub fn create_database(&self, name: &str) -> Result<()> {
        anyhow::ensure!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "database name {name:?} must be alphanumeric"
        );
        let psql = self.bin.join("psql");
        let out = Command::new(psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                DATABASE,
            ])
            .args([
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ])
            .output()
            .context("running psql")?;
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !err.contains("already exists") {
            bail!("CREATE DATABASE {name}: {err}");
        }
        Ok(())
    }

    /// Stops the server now (also done on drop).
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let data = self.dir.join("data");
        self.run_pg(
            "pg_ctl",
            &["-D", path_str(&data)?, "-m", "immediate", "-w", "stop"],
        )
    }

    /// Restarts a stopped server on the same port (for outage tests).
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            path_str(&self.dir)?
        );
        self.run_pg(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-o",
                &opts,
                "-w",
                "start",
            ],
        )?;
        self.stopped = false;
        self.wait_ready(Duration::from_secs(30))
    }

    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "PostgreSQL did not accept connections on port {} within {timeout:?}",
            self.port
        )
    }

    fn run_pg(&self, tool: &str, args: &[&str]) -> Result<()> {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).current_dir(&self.dir);
        run(&mut cmd).with_context(|| format!("{tool} failed"))
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} exited with {}: {}{}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn find_bin_dir() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(p));
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").exists().then_some((v, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().map(|(_, p)| p).ok_or_else(|| {
        anyhow::anyhow!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin \
             (install them with `apt-get install -y postgresql`, or set PG_BIN)"
        )
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (N.fetch_add(1, Ordering::Relaxed) << 32)
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| anyhow::anyhow!("path {} is not UTF-8", p.display()))
}
