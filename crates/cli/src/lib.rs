//! The townstat command line. Thin by design: every command parses its arguments and
//! calls the libraries (`townstat-pipeline`, `townstat-query`, `townstat-generate`).
//! Exit status: 0 all good; 1 failed with nothing committed; 2 bad usage or config;
//! 3 finished, but some files were rejected whole.

mod commands;
mod demo;
mod init;
mod shell;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The statistics warehouse of Datong's specialized towns (专业镇).
#[derive(Debug, Parser)]
#[command(name = "townstat", version, about)]
pub struct Cli {
    /// Warehouse location: a path, file:// or s3:// URL.
    #[arg(
        long,
        global = true,
        env = "TOWNSTAT_WAREHOUSE",
        default_value = "./warehouse"
    )]
    pub warehouse: String,
    /// Log format on stderr: text or json (for the nightly job).
    #[arg(long, global = true, default_value = "text")]
    pub log_format: LogFormat,
    /// Whether the warehouse was given (flag or environment), not the default.
    #[arg(skip)]
    pub warehouse_given: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (warnings and errors only, unless RUST_LOG says more).
    Text,
    /// One JSON object per event: townstat's own at info and up, its dependencies'
    /// warnings and errors (RUST_LOG overrides), and the failure that ends a command.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job on sample data: writes a runnable example project (pipeline, alias
    /// tables, evaluation, targets, town registry, generated raw files) into
    /// ./townstat-demo/ or --dir, runs it into its warehouse and prints the town table.
    /// In the repository (a ./pipelines/nightly.toml), without --dir or --data: runs
    /// the repository's pipeline on the bundled sample into ./warehouse.
    Demo {
        /// The project folder (default ./townstat-demo, or . in the repository).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Read the raw files from here instead of generating the sample (a folder
        /// with towns.csv and one subfolder per source kind, as the sample's).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// One nightly run of a pipeline file.
    Run {
        /// The pipeline file (e.g. pipelines/nightly.toml).
        pipeline: PathBuf,
        /// The run date (YYYY-MM-DD): "now" for every future-date check.
        #[arg(long)]
        as_of: Option<String>,
        /// Re-read files an earlier run already loaded.
        #[arg(long)]
        force: bool,
        /// Build the marts on a Ballista cluster (`df://HOST:PORT`, the scheduler).
        #[arg(long, env = "TOWNSTAT_CLUSTER")]
        cluster: Option<String>,
    },
    /// Write a starter project for a real deployment into DIR (new or empty): the
    /// pipeline with one source per agency, alias tables, evaluation and targets, the
    /// town registry of the plan's ten towns, raw/<kind>/ folders, a systemd unit.
    Init {
        /// The project folder.
        dir: PathBuf,
    },
    /// Check a pipeline file and everything it names without running it: every
    /// problem is listed at once, with its file and line (exit 2 when there is any).
    Check {
        /// The pipeline file.
        pipeline: PathBuf,
        /// The run date the check assumes (YYYY-MM-DD; default today).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Run one SQL query, or the SQL shell (statements and \\d commands) without one.
    Sql {
        /// The query; without it, the interactive shell (or a script on standard input).
        query: Option<String>,
        #[command(flatten)]
        out: FileOutput,
        /// Query the warehouse exactly as this run left it.
        #[arg(long, conflicts_with_all = ["version", "as_of"])]
        run: Option<String>,
        /// Query the warehouse as the N-th committed run left it (1 is the first).
        #[arg(long, conflicts_with = "as_of")]
        version: Option<usize>,
        /// Query the warehouse as it was at a time (RFC 3339, or YYYY-MM-DD for the end
        /// of that day, UTC): the last run committed by then.
        #[arg(long)]
        as_of: Option<String>,
        /// Run the query on a Ballista cluster (`df://HOST:PORT`, the scheduler).
        #[arg(long, env = "TOWNSTAT_CLUSTER")]
        cluster: Option<String>,
    },
    /// A Ballista scheduler: the coordinator of `--cluster df://HOST:PORT`. It has no
    /// authentication of its own; keep it and the executors on a private network.
    Scheduler {
        /// Address to listen on for clients and executors.
        #[arg(long, default_value = "127.0.0.1:50050")]
        listen: std::net::SocketAddr,
        /// An executor silent for this long is taken as lost; its tasks run elsewhere.
        #[arg(long, default_value = "30s")]
        executor_timeout: String,
    },
    /// A Ballista executor: runs the tasks a scheduler hands out. Reads the
    /// warehouse's object store with the same environment as the other commands.
    Executor {
        /// The scheduler.
        #[arg(long, default_value = "127.0.0.1:50050")]
        scheduler: std::net::SocketAddr,
        /// Address of this executor's Arrow Flight service (shuffle and results).
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: std::net::SocketAddr,
        /// Shuffle files and spills (default: a folder under the OS temporary folder).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Tasks at once (0: one per core).
        #[arg(long, default_value_t = 0)]
        tasks: usize,
        /// The executor's memory pool, shared by its tasks; beyond it they spill.
        #[arg(long, default_value = "2GiB")]
        memory: String,
    },
    /// Synthetic raw source files, deterministic for a seed.
    Generate {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Scale: 1 is about 3,000 enterprises (fractions allowed).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Compact, checkpoint and vacuum every table, keeping every recorded vintage
    /// (or the last N runs' with --keep-runs).
    Maintain {
        /// Keep only the last N runs queryable (default: all).
        #[arg(long)]
        keep_runs: Option<usize>,
    },
    /// Serve the warehouse over the PostgreSQL protocol (psql, DBeaver, BI tools),
    /// read-only. Users and passwords come from --users-file or from
    /// TOWNSTAT_PG_USER / TOWNSTAT_PG_PASSWORD, never from flags; without them the
    /// server accepts loopback clients only.
    Serve {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:5433")]
        listen: std::net::SocketAddr,
        /// A file of `user:password` lines, readable by its owner only.
        #[arg(long, env = "TOWNSTAT_PG_USERS_FILE")]
        users_file: Option<PathBuf>,
        /// Password authentication: scram-sha-256, or md5 for old clients.
        #[arg(long, default_value = "scram-sha-256")]
        auth: AuthArg,
        /// TLS certificate chain (PEM); with --tls-key.
        #[arg(long, env = "TOWNSTAT_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM, PKCS#8 or RSA); with --tls-cert.
        #[arg(long, env = "TOWNSTAT_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Most authenticated sessions at once; more are refused with SQLSTATE 53300.
        #[arg(long, default_value_t = 64)]
        max_connections: usize,
        /// Most connections still authenticating at once (a pool of their own);
        /// beyond it new sockets are closed at once.
        #[arg(long, default_value_t = 64)]
        max_unauthenticated: usize,
        /// Close a connection that has not authenticated within this time.
        #[arg(long, default_value = "10s")]
        auth_timeout: String,
        /// Close a session with no statement running for this long; 0 keeps idle
        /// sessions open.
        #[arg(long, default_value = "10min")]
        idle_session_timeout: String,
        /// Wait this long before answering a failed login, doubled for each further
        /// failure from the same address in ten minutes (up to 16 times).
        #[arg(long, default_value = "200ms")]
        auth_failure_delay: String,
        /// Longest statement, rows sent included (e.g. 300s, 1500ms, 5min).
        #[arg(long, default_value = "300s")]
        statement_timeout: String,
        /// Memory per statement before it spills (e.g. 1GiB); default
        /// TOWNSTAT_MEMORY_LIMIT, else 1GiB.
        #[arg(long)]
        query_memory: Option<String>,
        /// The server's resident memory beyond which the largest running statement is
        /// cancelled (SQLSTATE 53200) instead of the kernel killing the server (e.g.
        /// 16GiB); default three quarters of the machine's memory, 0 for none.
        #[arg(long)]
        memory_ceiling: Option<String>,
        /// Run queries of warehouse tables on a Ballista cluster (`df://HOST:PORT`).
        #[arg(long, env = "TOWNSTAT_CLUSTER")]
        cluster: Option<String>,
        /// Memory for the answers of repeated statements (a dashboard's charts) on
        /// the current run, sent again without executing until the next run commits
        /// (e.g. 256MiB; 0 turns it off).
        #[arg(long, default_value = "256MiB")]
        result_cache: String,
        /// Memory for the columns statements read, kept decoded until the next run
        /// commits, so that ad-hoc statements do not decode the same Parquet again
        /// (e.g. 1GiB; 0 turns it off).
        #[arg(long, default_value = "1GiB")]
        warm_tables: String,
    },
    /// The yearly report (专业镇年度评估与进展报告): an Excel workbook and a
    /// self-contained HTML page with charts, read only from one committed run's marts.
    Report {
        /// The report year (default: the latest year with annual returns).
        #[arg(long)]
        year: Option<i32>,
        /// Report on the warehouse exactly as this run left it (default: the last run).
        #[arg(long, conflicts_with = "as_of")]
        run: Option<String>,
        /// Report on the last run committed by this time (RFC 3339, or YYYY-MM-DD for
        /// the end of that day, UTC).
        #[arg(long)]
        as_of: Option<String>,
        /// Output folder (created if absent).
        #[arg(long, default_value = "report")]
        out: PathBuf,
        /// xlsx, html or both.
        #[arg(long, default_value = "both")]
        format: townstat_report::Formats,
    },
    /// What each run did.
    Runs,
    /// Where one published figure comes from: its definition, the SQL steps it passed
    /// through, the members behind it and their raw records down to source_file and
    /// source_row (e.g. `townstat explain town_year revenue pingcheng_rail 2025`).
    Explain {
        /// The mart (town_year, town_year_structure, …).
        mart: String,
        /// The column.
        column: String,
        /// The row's key, in the order of the mart's key (town_id year for town_year).
        #[arg(required = true, num_args = 1..)]
        key: Vec<String>,
        /// Explain the figure as this run published it (default: the last run).
        #[arg(long)]
        run: Option<String>,
        /// table (everything, for a person) or csv (the raw records alone, one per
        /// line: source_table, source_file, source_row, uscc, detail).
        #[arg(long, default_value = "table")]
        format: ExplainFormat,
        /// The pipeline whose evaluation.toml and targets.toml expand the SQL (default:
        /// the bundled ones).
        #[arg(long)]
        pipeline: Option<PathBuf>,
    },
    /// Write the data catalog: one self-contained HTML page (DIR/index.html) with
    /// every table and mart, its columns, labels, definitions, declared tests with the
    /// last result, row counts of a committed run, and the lineage from the raw files
    /// to each mart, derived from the SQL.
    Docs {
        /// Output folder (created if absent).
        #[arg(long, default_value = "townstat-docs")]
        out: PathBuf,
        /// Report row counts and test results of this run (default: the last one; a
        /// warehouse without runs gives a catalog without them).
        #[arg(long)]
        run: Option<String>,
        /// The pipeline whose evaluation.toml and targets.toml expand the SQL (default:
        /// the bundled ones).
        #[arg(long)]
        pipeline: Option<PathBuf>,
    },
    /// Run the marts' declared tests (schemas/marts.toml) on a committed run, the last
    /// by default: every test with its result, then the failing rows of each failure.
    /// Exit 1 when an error-level test fails.
    Test {
        /// The run id.
        #[arg(long)]
        run: Option<String>,
        /// The pipeline whose evaluation.toml names the grades (default: the grades of
        /// the bundled evaluation.toml).
        #[arg(long)]
        pipeline: Option<PathBuf>,
    },
    /// Rows rejected by a run (the last one by default): a table on the terminal, or a
    /// file to send back to the agency (`--format xlsx --labels zh -o FILE`; every
    /// format but table adds `raw`, each row's original cells).
    Quarantine {
        /// The run id.
        #[arg(long)]
        run: Option<String>,
        #[command(flatten)]
        out: FileOutput,
    },
}

/// How `townstat sql` and `townstat quarantine` write a result.
#[derive(Debug, clap::Args)]
pub struct FileOutput {
    /// Output format: table, csv (text cells that Excel would run as formulas get a
    /// leading '), csv-raw (every cell unchanged), json, parquet or xlsx (an Excel
    /// workbook with typed cells; needs -o).
    #[arg(long, default_value = "table")]
    pub format: townstat_query::output::Format,
    /// Start CSV with a UTF-8 byte order mark, so Excel on Chinese Windows opens it
    /// as UTF-8 rather than GBK.
    #[arg(long)]
    pub bom: bool,
    /// Column headers: names (as in SQL) or zh (the Chinese labels of schemas/).
    #[arg(long, default_value = "names")]
    pub labels: Labels,
    /// Write the output to a file instead of standard output.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

/// Output of `townstat explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExplainFormat {
    /// Definition, steps, members and raw records, for a person.
    Table,
    /// The raw records alone, as CSV.
    Csv,
}

/// Column headers of `townstat sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Labels {
    /// Column names, as the SQL gives them.
    Names,
    /// Chinese labels from the schema files (names without a label stay as they are).
    Zh,
}

/// Password authentication methods of `townstat serve`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AuthArg {
    /// SCRAM-SHA-256 (PostgreSQL's default).
    #[value(name = "scram-sha-256")]
    Scram,
    /// MD5, for clients too old for SCRAM.
    Md5,
}

/// An error with the exit status it deserves.
#[derive(Debug)]
pub struct Failure {
    /// 1 (failed) or 2 (usage or config).
    pub code: u8,
    /// What to tell the user.
    pub message: String,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 1,
            message: e.to_string(),
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match format {
        // delta-rs warns on every MERGE about a metric it derives, and on every vacuum
        // that keeps vintages about an experimental API; neither is news to an operator.
        LogFormat::Text => {
            "warn,deltalake_core::operations::merge=error,deltalake_core::operations::vacuum=error"
        }
        // townstat's own events at INFO (the run's account); every dependency's below
        // WARN filtered (delta-kernel alone wrote 224 of a run's 287 lines).
        LogFormat::Json => {
            "warn,townstat=info,townstat_cli=info,townstat_pipeline=info,\
             townstat_ingest=info,townstat_warehouse=info,townstat_query=info,\
             townstat_server=info,townstat_report=info,townstat_cluster=info,\
             townstat_generate=info,townstat_domain=info,\
             deltalake_core::operations::merge=error,deltalake_core::operations::vacuum=error"
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Parses arguments, runs the command, maps the outcome to an exit status.
pub fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    cli.warehouse_given =
        matches.value_source("warehouse") != Some(clap::parser::ValueSource::DefaultValue);
    init_logging(cli.log_format);
    let cli_format = cli.log_format;
    // Planning and (de)serializing the marts' plans recurses deeply: the Ballista
    // scheduler overflowed tokio's default 2 MiB worker stack on them (debug build).
    // Stack is reserved address space, used only as deep as the recursion goes.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 << 20)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let f = Failure {
                code: 1,
                message: format!("cannot start the runtime: {e}"),
            };
            report_failure(cli.log_format, &f);
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(commands::dispatch(cli));
    // Once the command is done, work still on blocking threads (a statement of
    // `townstat serve` still being planned at shutdown, say) is not waited for long.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            report_failure(cli_format, &f);
            ExitCode::from(f.code)
        }
    }
}

/// The failure that ends a command, on stderr: `Error: …` for a person, one JSON line
/// (the shape of the other log lines) with `--log-format json`, so that a log
/// collector sees the lock and configuration errors like every other event. Written
/// directly, not through the log filter: `RUST_LOG=off` must not hide why a run
/// failed.
fn report_failure(format: LogFormat, f: &Failure) {
    match format {
        LogFormat::Text => eprintln!("Error: {}", f.message),
        LogFormat::Json => {
            let line = serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "ERROR",
                "fields": {"message": f.message, "exit_code": f.code},
                "target": "townstat",
            });
            eprintln!("{line}");
        }
    }
}
