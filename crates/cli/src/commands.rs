//! One function per command.

use std::io::{IsTerminal, Write};
use std::path::Path;

use chrono::NaiveDate;
use townstat_ingest::Pipeline;
use townstat_pipeline::{RunOptions, RunReport, RunStatus};
use townstat_query::output::{self, Format};
use townstat_warehouse::{RunSelector, Warehouse};

use crate::{Cli, Command, Failure};

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

/// Runs a command; returns the exit status.
pub async fn dispatch(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Demo { dir, data } => {
            let wh = cli.warehouse_given.then_some(cli.warehouse.as_str());
            crate::demo::demo(wh, dir.as_deref(), data.as_deref()).await
        }
        Command::Run {
            pipeline,
            as_of,
            force,
            cluster,
        } => {
            let report = run(
                &cli.warehouse,
                &pipeline,
                as_of.as_deref(),
                force,
                cluster.as_deref(),
            )
            .await?;
            print_report(&report, &mut std::io::stdout())?;
            Ok(exit_status(&report))
        }
        Command::Init { dir } => {
            let pipeline = crate::init::init(&dir)?;
            let root = pipeline
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("."))
                .display()
                .to_string();
            println!("wrote a townstat project to {root} (see {root}/README.txt)");
            println!("next: put the agencies' files under {root}/raw/<kind>/, then");
            println!("  townstat check {}", pipeline.display());
            println!(
                "  townstat --warehouse {root}/warehouse run {}",
                pipeline.display()
            );
            Ok(0)
        }
        Command::Check { pipeline, as_of } => {
            let as_of = match as_of.as_deref() {
                Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|_| usage(format!("--as-of {s:?} is not a date (YYYY-MM-DD)")))?,
                None => chrono::Local::now().date_naive(),
            };
            let problems = townstat_pipeline::check_file(&pipeline, as_of).await;
            if problems.is_empty() {
                println!("{}: ok", pipeline.display());
                return Ok(0);
            }
            for p in &problems {
                println!("{p}");
            }
            Err(usage(format!(
                "{} problem{} in {}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                pipeline.display()
            )))
        }
        Command::Sql {
            query,
            out,
            run,
            version,
            as_of,
            cluster,
        } => {
            let selector = selector(run, version, as_of.as_deref())?;
            let out = SqlOutput {
                format: out.format,
                path: out.output.as_deref(),
                bom: out.bom,
                labels: out.labels,
                table: None,
            };
            sql(&cli.warehouse, query, out, &selector, cluster.as_deref()).await
        }
        Command::Scheduler {
            listen,
            executor_timeout,
        } => {
            let executor_timeout = townstat_server::config::parse_duration(&executor_timeout)
                .ok_or_else(|| usage("--executor-timeout: expected e.g. 30s or 2min"))?;
            if !listen.ip().is_loopback() {
                tracing::warn!(%listen, "the scheduler has no authentication: keep it on a private network");
            }
            townstat_cluster::run_scheduler(townstat_cluster::SchedulerOptions {
                listen,
                executor_timeout,
            })
            .await
            .map_err(|e| Failure::from(e.to_string()))?;
            Ok(0)
        }
        Command::Executor {
            scheduler,
            listen,
            work_dir,
            tasks,
            memory,
        } => {
            let memory = townstat_query::session::parse_size(&memory)
                .ok_or_else(|| usage("--memory: expected e.g. 2GiB or 512MiB"))?;
            let work_dir = work_dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("townstat-executor-{}", listen.port()))
            });
            townstat_cluster::run_executor(townstat_cluster::ExecutorOptions {
                scheduler,
                listen,
                work_dir: work_dir.display().to_string(),
                tasks,
                memory: memory as u64,
            })
            .await
            .map_err(|e| Failure::from(e.to_string()))?;
            Ok(0)
        }
        Command::Generate { out, scale, seed } => {
            if !(scale > 0.0 && scale.is_finite()) {
                return Err(usage("--scale must be a positive number"));
            }
            let summary =
                townstat_generate::generate(&out, &townstat_generate::Options { scale, seed })?;
            let rows: u64 = summary.files.iter().map(|f| f.1).sum();
            println!(
                "wrote {} files ({} data rows, {} injected problems) to {}",
                summary.files.len(),
                rows,
                summary.injected,
                out.display()
            );
            Ok(0)
        }
        Command::Maintain { keep_runs } => {
            let warehouse = Warehouse::open(&cli.warehouse).map_err(|e| usage(e.to_string()))?;
            let report = townstat_pipeline::maintain::maintain(&warehouse, keep_runs).await?;
            println!(
                "{:<28} {:>9} {:>9} {:>9}",
                "table", "compacted", "into", "vacuumed"
            );
            for t in &report {
                println!(
                    "{:<28} {:>9} {:>9} {:>9}",
                    t.table, t.files_removed, t.files_added, t.files_deleted
                );
            }
            Ok(0)
        }
        Command::Serve {
            listen,
            users_file,
            auth,
            tls_cert,
            tls_key,
            max_connections,
            max_unauthenticated,
            auth_timeout,
            idle_session_timeout,
            auth_failure_delay,
            statement_timeout,
            query_memory,
            memory_ceiling,
            cluster,
            result_cache,
            warm_tables,
        } => {
            let duration = |flag: &str, text: &str| {
                townstat_server::config::parse_duration(text)
                    .ok_or_else(|| usage(format!("--{flag}: expected e.g. 10s, 1500ms or 5min")))
            };
            let auth_timeout = duration("auth-timeout", &auth_timeout)?;
            let idle_session_timeout =
                Some(duration("idle-session-timeout", &idle_session_timeout)?)
                    .filter(|d| !d.is_zero());
            let auth_failure_delay = duration("auth-failure-delay", &auth_failure_delay)?;
            if let Some(url) = &cluster {
                townstat_cluster::check_url(url).map_err(|e| usage(e.to_string()))?;
            }
            let statement_timeout = townstat_server::config::parse_duration(&statement_timeout)
                .ok_or_else(|| usage("--statement-timeout: expected e.g. 300s, 1500ms or 5min"))?;
            let query_memory = match query_memory {
                Some(text) => townstat_query::session::parse_size(&text)
                    .ok_or_else(|| usage("--query-memory: expected e.g. 1GiB or 512MiB"))?,
                None => std::env::var("TOWNSTAT_MEMORY_LIMIT")
                    .ok()
                    .and_then(|v| townstat_query::session::parse_size(&v))
                    .unwrap_or(1 << 30),
            };
            let memory_ceiling = match memory_ceiling.as_deref() {
                Some("0") => 0,
                Some(text) => townstat_query::session::parse_size(text)
                    .ok_or_else(|| usage("--memory-ceiling: expected e.g. 16GiB, or 0 for none"))?,
                None => townstat_server::ceiling::default_ceiling(),
            };
            let result_cache = match result_cache.as_str() {
                "0" => 0,
                text => townstat_query::session::parse_size(text)
                    .ok_or_else(|| usage("--result-cache: expected e.g. 256MiB, or 0 for none"))?,
            };
            let warm_tables = match warm_tables.as_str() {
                "0" => 0,
                text => townstat_query::session::parse_size(text)
                    .ok_or_else(|| usage("--warm-tables: expected e.g. 1GiB, or 0 for none"))?,
            };
            let config = townstat_server::ServeConfig {
                warehouse: cli.warehouse.clone(),
                listen,
                users: townstat_server::Users::load(users_file.as_deref())
                    .map_err(|e| usage(e.to_string()))?,
                auth: match auth {
                    crate::AuthArg::Scram => townstat_server::AuthMethod::ScramSha256,
                    crate::AuthArg::Md5 => townstat_server::AuthMethod::Md5,
                },
                tls: tls_cert
                    .zip(tls_key)
                    .map(|(cert, key)| townstat_server::TlsFiles { cert, key }),
                max_connections,
                max_unauthenticated,
                auth_timeout,
                idle_session_timeout,
                auth_failure_delay,
                statement_timeout,
                query_memory,
                memory_ceiling,
                cluster,
                result_cache,
                warm_tables,
            };
            let on_listening: townstat_server::OnListening = Box::new(|address, auth| {
                // Tests and scripts read the bound port from this line.
                println!("townstat serve: listening on {address} ({auth})");
                let _ = std::io::stdout().flush();
            });
            townstat_server::serve(config, on_listening)
                .await
                .map_err(|e| match e {
                    townstat_server::Error::Config(_) | townstat_server::Error::Tls(_) => {
                        usage(e.to_string())
                    }
                    other => Failure::from(other),
                })?;
            Ok(0)
        }
        Command::Report {
            year,
            run,
            as_of,
            out,
            format,
        } => {
            let selector = selector(run, None, as_of.as_deref())?;
            report(&cli.warehouse, &selector, year, &out, format).await
        }
        Command::Runs => {
            let q = "SELECT r.run_id, r.status, r.as_of, r.started_at, r.finished_at, \
                     count(i.source_file) AS files, sum(i.rows_read) AS rows_read, \
                     sum(i.rows_loaded) AS rows_loaded, sum(i.rows_duplicate) AS rows_duplicate, \
                     sum(i.rows_quarantined) AS rows_quarantined, \
                     sum(CASE WHEN i.status = 'rejected' THEN 1 ELSE 0 END) AS files_rejected \
                     FROM run r LEFT JOIN ingest_run i ON i.run_id = r.run_id \
                     GROUP BY r.run_id, r.status, r.as_of, r.started_at, r.finished_at \
                     ORDER BY r.started_at";
            let out = SqlOutput {
                format: Format::Table,
                path: None,
                bom: false,
                labels: crate::Labels::Names,
                table: None,
            };
            sql(
                &cli.warehouse,
                Some(q.into()),
                out,
                &RunSelector::Latest,
                None,
            )
            .await
        }
        Command::Explain {
            mart,
            column,
            key,
            run,
            format,
            pipeline,
        } => {
            explain(
                &cli.warehouse,
                (&mart, &column, &key),
                run.as_deref(),
                format,
                pipeline.as_deref(),
            )
            .await
        }
        Command::Docs { out, run, pipeline } => {
            docs(&cli.warehouse, &out, run.as_deref(), pipeline.as_deref()).await
        }
        Command::Test { run, pipeline } => {
            test(&cli.warehouse, run.as_deref(), pipeline.as_deref()).await
        }
        Command::Quarantine { run, out } => {
            let crate::FileOutput {
                format,
                bom,
                labels,
                output,
            } = out;
            let warehouse = Warehouse::open(&cli.warehouse)?;
            let session = townstat_query::open_session(&warehouse, None).await?;
            // By default the last run that read its files: a run stopped by its tests
            // (status `failed`) committed no quarantine of its own.
            let run_id = match run {
                Some(r) => r,
                None => warehouse
                    .runs()
                    .await?
                    .into_iter()
                    .rev()
                    .find(|r| r.status != "failed")
                    .map(|r| r.run_id)
                    .unwrap_or_else(|| session.run.run_id.clone()),
            };
            // A file for the agency carries the row's own cells too (`raw`, the
            // original cells keyed by their header), so it can be corrected and sent
            // back; the table on a terminal stays narrow.
            let raw = if format == Format::Table { "" } else { ", raw" };
            let q = format!(
                "SELECT source_file, row_number, kind, array_to_string(reasons, ',') AS reasons, \
                 array_to_string(messages, ' | ') AS messages{raw} FROM quarantine \
                 WHERE run_id = '{}' ORDER BY source_file, row_number",
                run_id.replace('\'', "''")
            );
            let out = SqlOutput {
                format,
                path: output.as_deref(),
                bom,
                labels,
                table: Some("quarantine"),
            };
            sql(&cli.warehouse, Some(q), out, &RunSelector::Latest, None).await
        }
    }
}

/// Exit status of a finished run.
pub fn exit_status(report: &RunReport) -> u8 {
    match report.status {
        RunStatus::Succeeded => 0,
        RunStatus::Partial => 3,
    }
}

/// Runs a pipeline file.
pub async fn run(
    warehouse: &str,
    pipeline: &Path,
    as_of: Option<&str>,
    force: bool,
    cluster: Option<&str>,
) -> Result<RunReport, Failure> {
    let as_of = match as_of {
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| usage(format!("--as-of {s:?} is not a date (YYYY-MM-DD)")))?,
        None => chrono::Local::now().date_naive(),
    };
    let pipeline = Pipeline::load(pipeline).map_err(|e| usage(e.to_string()))?;
    // Everything the configuration references is checked before the first write:
    // opening a local warehouse creates its folder.
    let checked = townstat_pipeline::precheck(&pipeline, as_of)
        .await
        .map_err(|e| usage(e.to_string()))?;
    let warehouse = Warehouse::open(warehouse).map_err(|e| usage(e.to_string()))?;
    let cluster = match cluster {
        Some(url) => Some(remote(url).await?),
        None => None,
    };
    // A spinner on a terminal; nothing for the nightly job's logs.
    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let progress: Option<townstat_pipeline::run::Progress> = spinner.clone().map(|bar| {
        std::sync::Arc::new(move |m: &str| bar.set_message(m.to_string()))
            as townstat_pipeline::run::Progress
    });
    let result = townstat_pipeline::run_checked(
        &warehouse,
        &pipeline,
        &checked,
        &RunOptions {
            as_of,
            force,
            progress,
            cluster,
            scratch_min: None,
        },
    )
    .await;
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    let report = result.map_err(|e| match e {
        townstat_pipeline::Error::Ingest(townstat_ingest::Error::Pipeline { .. })
        | townstat_pipeline::Error::Ingest(townstat_ingest::Error::Domain(_))
        | townstat_pipeline::Error::Domain(_)
        | townstat_pipeline::Error::Config(_) => usage(e.to_string()),
        other => Failure::from(other),
    })?;
    Ok(report)
}

/// Prints what a run did, file by file.
pub fn print_report(report: &RunReport, out: &mut impl Write) -> Result<(), Failure> {
    writeln!(out, "run {} {}", report.run_id, report.status.as_str())?;
    let w = report
        .files
        .iter()
        .map(|f| f.source_file.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:<w$} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "file", "status", "read", "loaded", "dup", "quar"
    )?;
    for f in &report.files {
        let pad = w + f.source_file.len() - f.source_file.chars().count();
        writeln!(
            out,
            "{:<pad$} {:>8} {:>8} {:>8} {:>8} {:>8}",
            f.source_file,
            f.status.as_str(),
            f.rows_read,
            f.rows_loaded,
            f.rows_duplicate,
            f.rows_quarantined
        )?;
        if let Some(m) = &f.message
            && f.status == townstat_ingest::FileStatus::Rejected
        {
            writeln!(out, "  rejected: {m}")?;
        }
    }
    if !report.reasons.is_empty() {
        let reasons: Vec<String> = report
            .reasons
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        writeln!(out, "quarantined rows by reason: {}", reasons.join(", "))?;
    }
    if let Some(r) = &report.report {
        writeln!(out, "{r}")?;
    }
    if !report.tests.is_empty() {
        use townstat_query::mart_tests;
        writeln!(
            out,
            "tests of the marts: {}",
            mart_tests::summary(&report.tests)
        )?;
        write!(out, "{}", mart_tests::describe_failures(&report.tests, 3))?;
    }
    Ok(())
}

/// The evaluation and targets a pipeline names, or the bundled ones without a
/// pipeline.
fn mart_settings(
    pipeline: Option<&Path>,
) -> Result<townstat_pipeline::docs::MartSettings, Failure> {
    use townstat_query::marts;
    let bad = |e: townstat_query::Error| usage(e.to_string());
    let (evaluation, targets) = match pipeline {
        Some(p) => {
            let pipeline = Pipeline::load(p).map_err(|e| usage(e.to_string()))?;
            let evaluation = match &pipeline.file.evaluation {
                Some(e) => marts::load_evaluation(&pipeline.resolve(e)).map_err(bad)?,
                None => Default::default(),
            };
            let targets = match &pipeline.file.targets {
                Some(t) => marts::load_targets(&pipeline.resolve(t)).map_err(bad)?,
                None => Default::default(),
            };
            (evaluation, targets)
        }
        None => (
            marts::parse_evaluation(
                crate::demo::EVALUATION,
                Path::new("evaluation.toml (bundled)"),
            )
            .map_err(bad)?,
            marts::parse_targets(crate::demo::TARGETS, Path::new("targets.toml (bundled)"))
                .map_err(bad)?,
        ),
    };
    let (components, grading, cluster) = evaluation;
    Ok(townstat_pipeline::docs::MartSettings {
        components,
        grading,
        cluster,
        targets,
    })
}

/// `townstat explain`: one figure, down to the raw records.
async fn explain(
    warehouse: &str,
    (mart, column, key): (&str, &str, &[String]),
    run: Option<&str>,
    format: crate::ExplainFormat,
    pipeline: Option<&Path>,
) -> Result<u8, Failure> {
    let settings = mart_settings(pipeline)?;
    let warehouse = Warehouse::open(warehouse).map_err(|e| usage(e.to_string()))?;
    let session = townstat_query::open_session(&warehouse, run).await?;
    let as_of = chrono::DateTime::from_timestamp_micros(session.run.finished_at_micros)
        .map(|t| t.date_naive())
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let (steps, _) = townstat_pipeline::docs::lineage(&settings, as_of).await?;
    let explained = townstat_pipeline::explain::explain(&session, &steps, mart, column, key)
        .await
        .map_err(|e| match e {
            townstat_pipeline::Error::Config(m) => usage(m),
            other => Failure::from(other),
        })?;
    let mut out = std::io::stdout();
    if format == crate::ExplainFormat::Csv {
        if explained.sources.is_empty() {
            writeln!(out, "source_table,source_file,source_row,uscc,detail")?;
        } else {
            output::write(&explained.sources, Format::CsvRaw, &mut out)?;
        }
        return Ok(0);
    }
    writeln!(out, "{} = {}", explained.title, explained.value)?;
    writeln!(out, "run {}", session.run.run_id)?;
    for line in &explained.definition {
        writeln!(out, "  {line}")?;
    }
    writeln!(out, "\nSQL steps (pipelines/marts/, in build order):")?;
    for (layer, name, summary) in &explained.steps {
        writeln!(out, "  {layer}/{name}.sql  {summary}")?;
    }
    let (title, members) = &explained.members;
    let n: usize = members.iter().map(|b| b.num_rows()).sum();
    writeln!(out, "\n{title}: {n}")?;
    if n > 0 {
        output::write(members, Format::Table, &mut out)?;
    }
    let n: usize = explained.sources.iter().map(|b| b.num_rows()).sum();
    writeln!(out, "\nraw records of those members ({n}):")?;
    if n > 0 {
        output::write(&explained.sources, Format::Table, &mut out)?;
    }
    Ok(0)
}

/// `townstat docs`: the data catalog page.
async fn docs(
    warehouse: &str,
    out: &Path,
    run: Option<&str>,
    pipeline: Option<&Path>,
) -> Result<u8, Failure> {
    let settings = mart_settings(pipeline)?;
    let warehouse = Warehouse::open(warehouse).map_err(|e| usage(e.to_string()))?;
    let session = match townstat_query::open_session(&warehouse, run).await {
        Ok(s) => Some(s),
        Err(townstat_query::Error::NoRun(_)) if run.is_none() => None,
        Err(e) => return Err(e.into()),
    };
    let as_of = session
        .as_ref()
        .and_then(|s| chrono::DateTime::from_timestamp_micros(s.run.finished_at_micros))
        .map(|t| t.date_naive())
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let page = townstat_pipeline::docs::site(
        &settings,
        as_of,
        session
            .as_ref()
            .map(|s| townstat_pipeline::docs::RunView { session: s }),
    )
    .await?;
    // Whole or not at all, as the report's files: a reader never opens half a page.
    townstat_report::prepare_out(out).map_err(|e| usage(e.to_string()))?;
    let path = out.join("index.html");
    townstat_report::publish(&[(path.clone(), page.into_bytes())])?;
    println!("wrote {}", path.display());
    Ok(0)
}

/// `townstat test`: the declared tests of the marts on a committed run.
async fn test(warehouse: &str, run: Option<&str>, pipeline: Option<&Path>) -> Result<u8, Failure> {
    use townstat_query::mart_tests::{self, Status};
    let grading = mart_settings(pipeline)?.grading;
    let settings = mart_tests::Settings {
        grades: grading.grades.iter().map(|g| g.name.clone()).collect(),
    };
    let warehouse = Warehouse::open(warehouse).map_err(|e| usage(e.to_string()))?;
    let session = townstat_query::open_session(&warehouse, run).await?;
    let outcomes = mart_tests::run_all(&session.ctx, &settings).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "run {} ({})", session.run.run_id, session.run.status)?;
    let w = outcomes
        .iter()
        .map(|o| o.case.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:<w$} {:>8} {:>8} {:>12}",
        "test", "severity", "result", "failing rows"
    )?;
    for o in &outcomes {
        let pad = w + o.case.name.len() - o.case.name.chars().count();
        writeln!(
            out,
            "{:<pad$} {:>8} {:>8} {:>12}",
            o.case.name,
            o.case.severity.as_str(),
            o.status.as_str(),
            o.failing_rows
        )?;
    }
    write!(out, "{}", mart_tests::describe_failures(&outcomes, 5))?;
    writeln!(out, "{}", mart_tests::summary(&outcomes))?;
    if outcomes.iter().any(|o| o.status == Status::Fail) {
        return Err(Failure::from("an error-level test failed".to_string()));
    }
    Ok(0)
}

/// A session on a cluster; a malformed URL is bad usage.
async fn remote(url: &str) -> Result<datafusion::prelude::SessionContext, Failure> {
    townstat_cluster::check_url(url).map_err(|e| usage(e.to_string()))?;
    townstat_cluster::remote_context(url)
        .await
        .map_err(|e| Failure::from(e.to_string()))
}

/// Where `townstat sql` writes, and how.
struct SqlOutput<'a> {
    format: Format,
    path: Option<&'a Path>,
    bom: bool,
    labels: crate::Labels,
    /// The table whose columns the result is, when it is one table's: its labels win.
    table: Option<&'static str>,
}

async fn sql(
    warehouse: &str,
    query: Option<String>,
    out: SqlOutput<'_>,
    selector: &RunSelector,
    cluster: Option<&str>,
) -> Result<u8, Failure> {
    let SqlOutput {
        format,
        path: output_path,
        bom,
        labels,
        table: out_table,
    } = out;
    if bom && !matches!(format, Format::Csv | Format::CsvRaw) {
        return Err(usage("--bom is for --format csv or csv-raw"));
    }
    if output_path.is_none() && matches!(format, Format::Parquet | Format::Xlsx) {
        return Err(usage("--format parquet and xlsx need -o FILE"));
    }
    if query.is_none() && (format == Format::Xlsx || bom || labels == crate::Labels::Zh) {
        return Err(usage(
            "--format xlsx, --bom and --labels zh need a query (they are not for the shell)",
        ));
    }
    let warehouse = Warehouse::open(warehouse).map_err(|e| usage(e.to_string()))?;
    let session = match cluster {
        None => townstat_query::open_session_at(&warehouse, selector).await?,
        Some(url) => {
            let ctx = remote(url).await?;
            townstat_query::open_session_in(ctx, &warehouse.with_file_tables(), selector).await?
        }
    };
    let Some(q) = query else {
        // The shell answers many statements from one run: the columns they read stay
        // decoded (townstat_query::warm).
        let limit = townstat_query::session::warm_tables_limit();
        if cluster.is_none() && limit > 0 {
            session.warm(&townstat_query::warm::Budget::new(limit))?;
        }
        let mut sink: Box<dyn Write + Send> = match output_path {
            Some(p) => Box::new(
                std::fs::File::create(p)
                    .map_err(|e| Failure::from(format!("{}: {e}", p.display())))?,
            ),
            None => Box::new(std::io::stdout()),
        };
        let paged = output_path.is_none() && std::io::stdout().is_terminal();
        let code = crate::shell::run(&session, format, paged, &mut sink).await?;
        sink.flush()?;
        return Ok(code);
    };
    let mut batches = session.query(&q).await?;
    if labels == crate::Labels::Zh {
        let read = match out_table {
            Some(t) => Some(t.to_string()),
            None => session.single_table(&q).await,
        };
        batches = output::with_labels_of(&batches, read.as_deref())?;
    }
    let mut bytes: Vec<u8> = vec![];
    if bom {
        bytes.extend_from_slice("\u{feff}".as_bytes());
    }
    output::write(&batches, format, &mut bytes)?;
    match output_path {
        // The file appears whole under its name, or not at all: a query that fails
        // leaves no empty or partial file behind.
        Some(p) => {
            townstat_report::publish(&[(p.to_path_buf(), bytes)])
                .map_err(|e| Failure::from(e.to_string()))?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
                // The reader closed the pipe (`| head`): it has what it wanted.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other?,
            }
        }
    }
    Ok(0)
}

/// `townstat report`: checks the output folder first, then reads the chosen run and
/// writes the files. A missing run, a year without data or a bad folder is exit 2 with
/// nothing written.
async fn report(
    warehouse: &str,
    selector: &RunSelector,
    year: Option<i32>,
    out: &Path,
    formats: townstat_report::Formats,
) -> Result<u8, Failure> {
    let report_err = |e: townstat_report::Error| match e {
        townstat_report::Error::Usage(m) => usage(m),
        townstat_report::Error::Failed(m) => Failure::from(m),
    };
    if out.exists() && !out.is_dir() {
        return Err(usage(format!(
            "--out {}: is a file, not a folder",
            out.display()
        )));
    }
    let started = std::time::Instant::now();
    let session = open_committed(warehouse, selector).await?;
    let year = townstat_report::choose_year(&session, year)
        .await
        .map_err(report_err)?;
    let built = townstat_report::build(&session, year)
        .await
        .map_err(report_err)?;
    let files = townstat_report::write(&built, out, formats).map_err(report_err)?;
    println!(
        "report {year} of run {} ({:.1} s):",
        session.run.run_id,
        started.elapsed().as_secs_f64()
    );
    for f in files {
        println!("  {}", f.display());
    }
    Ok(0)
}

/// A session on a committed run of an existing warehouse; no run, or no such run, is
/// bad usage (exit 2), and nothing is created where the warehouse should be.
async fn open_committed(
    warehouse: &str,
    selector: &RunSelector,
) -> Result<townstat_query::Session, Failure> {
    let local = !warehouse.contains("://") || warehouse.starts_with("file://");
    if local && !Path::new(warehouse.trim_start_matches("file://")).exists() {
        return Err(usage(format!(
            "no warehouse at {warehouse}: run `townstat run PIPELINE.toml` (or `townstat demo`) first, or pass --warehouse"
        )));
    }
    let wh = Warehouse::open(warehouse).map_err(|e| usage(e.to_string()))?;
    townstat_query::open_session_at(&wh, selector)
        .await
        .map_err(|e| match &e {
            townstat_query::Error::NoRun(_) => usage(e.to_string()),
            _ => Failure::from(e),
        })
}

/// Which run `townstat sql` reads: `--run ID`, `--version N` or `--as-of TIME`.
fn selector(
    run: Option<String>,
    version: Option<usize>,
    as_of: Option<&str>,
) -> Result<RunSelector, Failure> {
    if let Some(id) = run {
        return Ok(RunSelector::Id(id));
    }
    if let Some(n) = version {
        return Ok(RunSelector::Sequence(n));
    }
    let Some(t) = as_of else {
        return Ok(RunSelector::Latest);
    };
    let micros = if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        dt.timestamp_micros()
    } else if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        d.and_hms_micro_opt(23, 59, 59, 999_999)
            .map(|x| x.and_utc().timestamp_micros())
            .unwrap_or(i64::MAX)
    } else {
        return Err(usage(format!(
            "--as-of {t:?} is not a time (RFC 3339, e.g. 2026-01-15T02:30:00Z, or YYYY-MM-DD)"
        )));
    };
    Ok(RunSelector::AsOf(micros))
}
