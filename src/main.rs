//! The `shopstream` command line: `run | demo | generate | replay | topics | schemas`.
//!
//! Parses arguments with clap, loads the layered configuration (defaults, TOML file,
//! `SHOPSTREAM_*` environment, secrets from the environment or `.env`), sets up logging and
//! dispatches to the component that implements each subcommand. Exit codes: 0 success,
//! 1 failure at run time, 2 bad usage or configuration, 3 a subcommand not built yet.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use shopstream::codec::admin;
use shopstream::config::{Config, LogFormat, Secrets};
use shopstream::generator::{self, GenerateArgs};
use shopstream::runtime::{client, topics};

/// The process allocator is mimalloc. With glibc's malloc, the few dozen small allocations
/// every decoded record is made of are paid for again when they are freed: the next large
/// allocation (a window's result table, a changelog value, an output buffer growing)
/// consolidates every chunk freed since, which took about a third of the engine's time
/// (load-tests/RESULTS.md, "Engine alone"). Build with `--features system-alloc` to
/// compare against the system allocator.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "shopstream",
    version,
    about = "Exactly-once, event-time e-commerce analytics on Kafka"
)]
struct Cli {
    /// TOML configuration file (see shopstream.example.toml).
    #[arg(long, short, global = true, env = "SHOPSTREAM_CONFIG")]
    config: Option<PathBuf>,
    /// Log format (overrides log.format); filter with RUST_LOG.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the stream processor (stage 1, stage 2 and the PostgreSQL sink).
    Run {
        /// Processing guarantee (overrides processing.guarantee).
        #[arg(long, value_enum)]
        guarantee: Option<shopstream::config::Guarantee>,
    },
    /// Run the whole pipeline on embedded defaults: in-process broker, throw-away PostgreSQL.
    Demo(shopstream::demo::DemoArgs),
    /// Produce a synthetic shop (catalog, sessions, transactions, faults) to Kafka.
    Generate(Box<GenerateArgs>),
    /// Reprocess a time range of the inputs under its own group and transactional id.
    Replay,
    /// Manage the topics defined in topics/topics.toml.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Manage the Avro schemas in schemas/avro/ in a Confluent schema registry.
    Schemas {
        #[command(subcommand)]
        action: SchemasAction,
    },
}

#[derive(Subcommand)]
enum TopicsAction {
    /// Create missing topics and check existing ones (idempotent).
    Create {
        /// Topic definitions file (default: the built-in copy of topics/topics.toml).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Override the default partition count of the file.
        #[arg(long)]
        partitions: Option<i32>,
        /// Seconds to wait for the broker.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Print the topic definitions.
    List {
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SchemasAction {
    /// Register every topic's value schema under its TopicNameStrategy subject
    /// (`<topic>-value`), checking compatibility first; nothing is registered unless all pass.
    Register {
        /// Directory of .avsc files (default: the schemas compiled into the binary).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Registry URL (overrides registry.url).
        #[arg(long)]
        registry: Option<String>,
    },
}

enum Failure {
    Usage(String),
    NotBuilt(&'static str),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

fn main() -> ExitCode {
    // Behave like other Unix tools when piped into `head`: exit quietly on a closed pipe.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let _ = dotenvy::dotenv();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(cli.log_format.unwrap_or(config.log.format));
    let secrets = Secrets::from_env();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(dispatch(cli.command, config, secrets)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::NotBuilt(what)) => {
            eprintln!("error: `shopstream {what}` is not built yet");
            ExitCode::from(3)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

async fn dispatch(cmd: Command, config: Config, secrets: Secrets) -> Result<(), Failure> {
    match cmd {
        Command::Run { guarantee } => {
            let mut config = config;
            if let Some(g) = guarantee {
                config.processing.guarantee = g;
            }
            run_cmd(&config, &secrets).await
        }
        Command::Demo(args) => Ok(shopstream::demo::run(args, config).await?),
        Command::Generate(args) => generate_cmd(*args, &config).await,
        Command::Replay => Err(Failure::NotBuilt("replay")),
        Command::Schemas { action } => schemas_cmd(action, &config).await,
        Command::Topics { action } => topics_cmd(action, &config, &secrets).await,
    }
}

fn load_topic_defs(
    file: Option<PathBuf>,
    partitions: Option<i32>,
) -> Result<Vec<topics::TopicDef>, Failure> {
    let text = match &file {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", p.display())))?,
        None => topics::BUILTIN.to_string(),
    };
    topics::parse(&text, partitions).map_err(|e| Failure::Usage(format!("{e:#}")))
}

async fn topics_cmd(
    action: TopicsAction,
    config: &Config,
    secrets: &Secrets,
) -> Result<(), Failure> {
    match action {
        TopicsAction::List { file } => {
            for d in load_topic_defs(file, None)? {
                let retention = d.retention_ms.map_or("-".to_string(), |r| r.to_string());
                println!(
                    "{:<34} partitions={:<3} rf={:<3} cleanup={:<15} retention_ms={}",
                    d.name, d.partitions, d.replication_factor, d.cleanup_policy, retention
                );
            }
            Ok(())
        }
        TopicsAction::Create {
            file,
            partitions,
            timeout,
        } => {
            let defs = load_topic_defs(file, partitions)?;
            let admin = client::base_config(&config.kafka, secrets)
                .create()
                .map_err(|e| Failure::Runtime(anyhow::anyhow!("admin client: {e}")))?;
            let outcomes = topics::apply(&admin, &defs, Duration::from_secs(timeout)).await?;
            let mut failed = 0;
            for (name, o) in &outcomes {
                match o {
                    topics::Outcome::Created => println!("created  {name}"),
                    topics::Outcome::Exists => println!("exists   {name}"),
                    topics::Outcome::PartitionMismatch { actual, defined } => {
                        failed += 1;
                        println!("MISMATCH {name}: has {actual} partitions, defined {defined}")
                    }
                    topics::Outcome::Failed(why) => {
                        failed += 1;
                        println!("FAILED   {name}: {why}")
                    }
                }
            }
            if failed > 0 {
                return Err(Failure::Runtime(anyhow::anyhow!(
                    "{failed} of {} topics are not as defined",
                    outcomes.len()
                )));
            }
            Ok(())
        }
    }
}

async fn schemas_cmd(action: SchemasAction, config: &Config) -> Result<(), Failure> {
    let SchemasAction::Register { dir, registry } = action;
    let url = registry.unwrap_or_else(|| config.registry.url.clone());
    let registered = match &dir {
        Some(d) => admin::register_defaults(&url, d).await,
        None => admin::register_builtin(&url).await,
    }
    .map_err(|e| Failure::Runtime(anyhow::anyhow!("schema registry {url}: {e}")))?;
    for r in registered {
        let version = r.version.map_or("-".to_string(), |v| v.to_string());
        println!(
            "registered {:<32} id={:<4} version={version}",
            r.subject, r.id
        );
    }
    Ok(())
}

async fn generate_cmd(mut args: GenerateArgs, config: &Config) -> Result<(), Failure> {
    if args.bootstrap_servers.is_none() && args.out.is_none() {
        args.bootstrap_servers = Some(config.kafka.bootstrap_servers.clone());
    }
    let encoder: Box<dyn generator::PayloadEncoder> = match args.format {
        generator::Format::Json => Box::new(generator::JsonEncoder),
        generator::Format::Avro => Box::new(
            generator::avro::AvroPayloadEncoder::register(
                &config.registry.url,
                [
                    &args.topic_transactions,
                    &args.topic_events,
                    &args.topic_products,
                ],
            )
            .await?,
        ),
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let summary =
        tokio::task::spawn_blocking(move || generator::run_encoded(&args, encoder, &stop))
            .await
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("generator thread: {e}")))??;
    println!("{summary}");
    Ok(())
}

async fn run_cmd(config: &Config, secrets: &Secrets) -> Result<(), Failure> {
    use shopstream::runtime::app;
    if let Some(addr) = shopstream::runtime::telemetry::install(&config.metrics.listen)? {
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
    }
    let pipeline = app::start(
        config,
        secrets,
        app::PipelineOptions {
            sink_pg: Some(app::pg_connection_string(config, secrets)),
            engine: config.engine.clone(),
        },
    )
    .await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::Runtime(e.into()))?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if pipeline.processor_finished() { break; }
            }
        }
    }
    let (stage1, sink) = pipeline.stop().await?;
    eprintln!(
        "stage 1: {} consumed, {} commits, {} aborts",
        stage1.consumed, stage1.commits, stage1.aborts
    );
    if let Some(s) = sink {
        eprintln!("sink: {} records, {} rows", s.records, s.rows);
    }
    Ok(())
}
