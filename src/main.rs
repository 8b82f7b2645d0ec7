//! The `shopstream` command line: `run | demo | generate | replay | dlq | topics | schemas`.
//!
//! Parses arguments with clap, loads the layered configuration (defaults, TOML file,
//! `SHOPSTREAM_*` environment, secrets from the environment or `.env`), sets up logging and
//! dispatches to the component that implements each subcommand. Exit codes: 0 success,
//! 1 failure at run time (or differences found by `replay diff`), 2 bad usage or
//! configuration.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use shopstream::codec::admin;
use shopstream::config::{Config, LogFormat, Secrets};
use shopstream::generator::args::parse_start;
use shopstream::generator::{self, GenerateArgs};
use shopstream::runtime::{client, topics};
use shopstream::{dlq, replay};

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
    /// Reprocess a time range of the inputs under its own groups, transactional ids and
    /// output topics (`shop.replay.<run>.*`), into the live tables (idempotently) or into
    /// a shadow schema; `replay diff` compares shadow with live.
    Replay(Box<ReplayCmd>),
    /// Operate on the dead-letter queue (shop.dlq).
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
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
    /// Apply the sink's PostgreSQL migrations and exit; run it as the tables' owner role
    /// when `run` connects as a least-privilege role (README, "Security").
    Migrate,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct ReplayCmd {
    #[command(subcommand)]
    action: Option<ReplayAction>,
    /// Start: each input partition starts at its first record at or after this time
    /// (RFC 3339 or epoch milliseconds; looked up like offsetsForTimes).
    #[arg(long, required = true, value_parser = parse_start)]
    from: Option<i64>,
    /// End: each partition stops before its first record at or after this time
    /// (default: the end of the partitions when the replay starts).
    #[arg(long, value_parser = parse_start)]
    to: Option<i64>,
    /// Where the replay's sink writes.
    #[arg(long, value_enum, default_value_t = replay::Target::Shadow)]
    target: replay::Target,
    /// PostgreSQL schema of the shadow tables.
    #[arg(long, default_value = "shadow")]
    schema: String,
    /// Run id (names groups, transactional ids and `shop.replay.<run>.*` topics); reuse
    /// it to resume an interrupted replay. Default: `r<epoch ms>`.
    #[arg(long)]
    run: Option<String>,
    /// How times become offsets: the broker's time index, or scanning record timestamps.
    #[arg(long, value_enum, default_value_t = replay::TimeLookup::Broker)]
    time_index: replay::TimeLookup,
    /// Do not create the replay's topics (they exist already).
    #[arg(long)]
    no_create_topics: bool,
}

#[derive(Subcommand)]
enum ReplayAction {
    /// Compare every result table of the shadow schema with the live one; exits 1 when
    /// any row is only on one side or differs.
    Diff {
        /// Schema of the shadow tables.
        #[arg(long, default_value = "shadow")]
        schema: String,
        /// Schema of the live tables.
        #[arg(long, default_value = "public")]
        live_schema: String,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// Re-submit DLQ records to their source topic and partition, exactly once per record
    /// (transactions with the DLQ offsets under group shopstream-dlq-redrive[.<reason>]).
    Redrive {
        /// Only records with this reason (e.g. future_timestamp); each filter keeps its
        /// own cursor.
        #[arg(long)]
        reason: Option<String>,
        /// Report what would be re-submitted; produce and commit nothing.
        #[arg(long)]
        dry_run: bool,
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
    /// The command ran and found differences (`replay diff`): exit 1 with this message.
    Different(String),
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
    // The demo uses its own embedded broker and database, so needs none of the secrets.
    if !matches!(cli.command, Command::Demo(_)) {
        if let Err(e) = config.check_secrets(&secrets) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(dispatch(cli.command, config, secrets));
    // Do not wait on threads still blocked (e.g. after a shutdown timeout).
    rt.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Different(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(1)
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
        Command::Generate(args) => generate_cmd(*args, &config, &secrets).await,
        Command::Replay(cmd) => replay_cmd(*cmd, &config, &secrets).await,
        Command::Dlq { action } => dlq_cmd(action, &config, &secrets).await,
        Command::Schemas { action } => schemas_cmd(action, &config).await,
        Command::Topics { action } => topics_cmd(action, &config, &secrets).await,
        Command::Migrate => {
            let conn = shopstream::runtime::app::pg_connection_string(&config, &secrets);
            let mut client = shopstream::sink::postgres::connect(&conn).await?;
            let applied = shopstream::sink::migrate::migrate(&mut client).await?;
            println!("applied {applied} migrations");
            Ok(())
        }
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

async fn generate_cmd(
    mut args: GenerateArgs,
    config: &Config,
    secrets: &Secrets,
) -> Result<(), Failure> {
    if args.bootstrap_servers.is_none() && args.out.is_none() {
        args.bootstrap_servers = Some(config.kafka.bootstrap_servers.clone());
    }
    args.security = client::KafkaSecurity {
        kafka: config.kafka.clone(),
        secrets: secrets.clone(),
    };
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

/// SIGTERM and SIGINT, as one stream of stop requests.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<StopSignals, Failure> {
        use tokio::signal::unix::{signal, SignalKind};
        let install = |kind| signal(kind).map_err(|e| Failure::Runtime(e.into()));
        Ok(StopSignals {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

async fn run_cmd(config: &Config, secrets: &Secrets) -> Result<(), Failure> {
    use shopstream::runtime::app;
    if let Some(addr) = shopstream::runtime::telemetry::install(&config.metrics.listen)? {
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
    }
    let mut signals = StopSignals::install()?;
    let start = app::start(
        config,
        secrets,
        app::PipelineOptions {
            sink_pg: Some(app::pg_connection_string(config, secrets)),
            engine: config.engine.clone(),
        },
    );
    let pipeline = tokio::select! {
        p = start => p?,
        signal = signals.recv() => {
            tracing::info!(signal, "stop requested during start-up: nothing was processed");
            return Ok(());
        }
    };
    let signal = loop {
        tokio::select! {
            signal = signals.recv() => break signal,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if pipeline.processor_finished() { break "processor stopped"; }
            }
        }
    };
    let timeout = Duration::from_millis(config.processing.shutdown_timeout_ms);
    tracing::info!(
        signal,
        timeout_ms = config.processing.shutdown_timeout_ms,
        "shutting down: committing the open transactions, then stopping"
    );
    let started = std::time::Instant::now();
    let stopped = tokio::select! {
        r = tokio::time::timeout(timeout, pipeline.stop()) => r,
        again = signals.recv() => {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "{again} during shutdown: exiting at once; an open transaction is aborted \
                 by the broker and its input read again on the next start"
            )));
        }
    };
    let (stage1, sink) = stopped.map_err(|_| {
        Failure::Runtime(anyhow::anyhow!(
            "shutdown did not finish within {timeout:?} (processing.shutdown_timeout_ms); \
             exiting: an open transaction is aborted by the broker and its input read \
             again on the next start"
        ))
    })??;
    tracing::info!(
        shutdown_ms = started.elapsed().as_millis() as u64,
        "shutdown complete"
    );
    eprintln!(
        "stage 1: {} consumed, {} commits, {} aborts",
        stage1.consumed, stage1.commits, stage1.aborts
    );
    if let Some(s) = sink {
        eprintln!("sink: {} records, {} rows", s.records, s.rows);
    }
    Ok(())
}

async fn replay_cmd(cmd: ReplayCmd, config: &Config, secrets: &Secrets) -> Result<(), Failure> {
    if let Some(ReplayAction::Diff {
        schema,
        live_schema,
    }) = cmd.action
    {
        return replay_diff(&schema, &live_schema, config, secrets).await;
    }
    let usage = |e: anyhow::Error| Failure::Usage(format!("{e:#}"));
    let plan = replay::Plan {
        run: cmd.run.unwrap_or_else(replay::default_run_id),
        from: cmd
            .from
            .ok_or_else(|| Failure::Usage("--from is required".into()))?,
        to: cmd.to,
        target: cmd.target,
        schema: cmd.schema,
        pg_conn: shopstream::runtime::app::pg_connection_string(config, secrets),
        create_topics: !cmd.no_create_topics,
    };
    shopstream::runtime::topology::Topology::replay(&plan.run).map_err(usage)?;
    shopstream::sink::schema::validate(&plan.schema).map_err(usage)?;
    if plan.target == replay::Target::Shadow && plan.schema == shopstream::sink::schema::LIVE {
        return Err(Failure::Usage(format!(
            "--schema {} is the live schema: pick another for a shadow replay",
            plan.schema
        )));
    }
    if plan.to.is_some_and(|to| to <= plan.from) {
        return Err(Failure::Usage("--to must be after --from".into()));
    }
    let base = client::base_config(&config.kafka, secrets);
    let index: Box<dyn replay::time_index::TimeIndex> = match cmd.time_index {
        replay::TimeLookup::Broker => Box::new(replay::time_index::BrokerTimeIndex { base }),
        replay::TimeLookup::Scan => Box::new(replay::time_index::ScanTimeIndex { base }),
    };
    let summary = replay::run(config, secrets, &plan, index).await?;
    for (topic, p, start, end) in &summary.ranges {
        println!("{topic}/{p}: offsets {start}..{end}");
    }
    println!(
        "replay {}: {} records consumed, {} rows written ({:?} target)",
        plan.run, summary.consumed, summary.sink_rows, plan.target
    );
    Ok(())
}

async fn replay_diff(
    schema: &str,
    live_schema: &str,
    config: &Config,
    secrets: &Secrets,
) -> Result<(), Failure> {
    for s in [schema, live_schema] {
        shopstream::sink::schema::validate(s).map_err(|e| Failure::Usage(format!("{e:#}")))?;
    }
    let conn = shopstream::runtime::app::pg_connection_string(config, secrets);
    let client = shopstream::sink::consumer::connect_plain(&conn).await?;
    let tables = replay::diff::diff(&client, live_schema, schema).await?;
    let mut differences = 0;
    for t in &tables {
        println!("{t}");
        differences += t.differences();
    }
    if differences > 0 {
        return Err(Failure::Different(format!(
            "{differences} rows differ between {live_schema} and {schema}"
        )));
    }
    println!("no differences between {live_schema} and {schema}");
    Ok(())
}

async fn dlq_cmd(action: DlqAction, config: &Config, secrets: &Secrets) -> Result<(), Failure> {
    let DlqAction::Redrive { reason, dry_run } = action;
    if let Some(r) = &reason {
        dlq::redrive::validate_reason(r).map_err(|e| Failure::Usage(format!("{e:#}")))?;
    }
    let plan = dlq::redrive::Plan { reason, dry_run };
    let s = dlq::redrive::run(config, secrets, &plan).await?;
    let verb = if dry_run {
        "would re-submit"
    } else {
        "re-submitted"
    };
    println!(
        "read {} DLQ records; {verb} {} ({} other reason, {} not re-drivable)",
        s.read,
        s.submitted_total(),
        s.other_reason,
        s.not_redrivable
    );
    for (reason, n) in &s.submitted {
        println!("  {reason:<20} {n}");
    }
    Ok(())
}
