//! The SQL shell of `townstat sql` without a query: statements end with `;` and may
//! span lines; backslash commands describe the warehouse. On a terminal it keeps a
//! line-editing history in `~/.townstat_history`; from a pipe it reads the same
//! syntax, so a script of statements and `\d` commands runs unchanged.
//!
//! `\d` lists tables with their Chinese labels, `\d TABLE` its columns with types and
//! labels, `\timing` toggles the elapsed time after each result, `\q` quits.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use townstat_domain::schema::{column_label, definition, table_label};
use townstat_query::Session;
use townstat_query::output::{self, Format};

use crate::Failure;

struct Shell<'a> {
    session: &'a Session,
    format: Format,
    timing: bool,
}

fn text_batch(columns: &[&str], rows: Vec<Vec<String>>) -> Result<RecordBatch, Failure> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|i| {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r[i].clone()),
            )) as ArrayRef
        })
        .collect();
    Ok(RecordBatch::try_new(schema, arrays)?)
}

impl Shell<'_> {
    async fn describe(
        &self,
        table: Option<&str>,
        verbose: bool,
        out: &mut (dyn Write + Send),
    ) -> Result<(), Failure> {
        let ctx = &self.session.ctx;
        let batch = match table {
            None => {
                let mut names: Vec<String> = ctx
                    .catalog("townstat")
                    .and_then(|c| c.schema("public"))
                    .map(|s| s.table_names())
                    .unwrap_or_default();
                names.sort();
                let rows = names
                    .into_iter()
                    .map(|n| {
                        let label = table_label(&n).unwrap_or("").to_string();
                        vec![n, label]
                    })
                    .collect();
                text_batch(&["table", "label"], rows)?
            }
            Some(t) => {
                let df = ctx.table(t).await?;
                let rows = df
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| {
                        let mut row = vec![
                            f.name().clone(),
                            f.data_type().to_string(),
                            if f.is_nullable() { "yes" } else { "no" }.to_string(),
                            column_label(t, f.name()).unwrap_or("").to_string(),
                        ];
                        if verbose {
                            row.push(
                                definition(f.name())
                                    .map(|d| d.definition.clone())
                                    .unwrap_or_default(),
                            );
                        }
                        row
                    })
                    .collect();
                if verbose {
                    text_batch(&["column", "type", "nullable", "label", "definition"], rows)?
                } else {
                    text_batch(&["column", "type", "nullable", "label"], rows)?
                }
            }
        };
        output::write(&[batch], Format::Table, &mut *out)?;
        Ok(())
    }

    /// Runs one input unit: a backslash command or a statement. Returns false to quit.
    async fn execute(
        &mut self,
        input: &str,
        out: &mut (dyn Write + Send),
    ) -> Result<bool, Failure> {
        let input = input.trim();
        if let Some(cmd) = input.strip_prefix('\\') {
            let mut parts = cmd.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some("q"), _) => return Ok(false),
                (Some(d @ ("d" | "d+")), t) => {
                    self.describe(t.map(|t| t.trim_end_matches(';')), d == "d+", out)
                        .await?
                }
                (Some("timing"), _) => {
                    self.timing = !self.timing;
                    writeln!(out, "Timing is {}.", if self.timing { "on" } else { "off" })?;
                }
                _ => writeln!(
                    out,
                    "commands: \\d [TABLE]  tables or a table's columns, with labels; \\d+ TABLE  with definitions; \\timing; \\q"
                )?,
            }
            return Ok(true);
        }
        let sql = input.trim_end_matches(';').trim();
        if sql.is_empty() {
            return Ok(true);
        }
        let started = Instant::now();
        let batches = self.session.query(sql).await?;
        output::write(&batches, self.format, &mut *out)?;
        if self.timing {
            writeln!(
                out,
                "Time: {:.3} ms",
                started.elapsed().as_secs_f64() * 1000.0
            )?;
        }
        Ok(true)
    }
}

/// Runs the shell on standard input.
pub async fn run(
    session: &Session,
    format: Format,
    out: &mut (dyn Write + Send),
) -> Result<u8, Failure> {
    let mut shell = Shell {
        session,
        format,
        timing: false,
    };
    if std::io::stdin().is_terminal() {
        interactive(&mut shell, out).await
    } else {
        let stdin = std::io::stdin();
        let mut buffer = String::new();
        for line in stdin.lock().lines() {
            let line = line?;
            if buffer.trim().is_empty() && line.trim_start().starts_with('\\') {
                if !shell.execute(&line, out).await? {
                    return Ok(0);
                }
                continue;
            }
            buffer.push_str(&line);
            buffer.push('\n');
            if line.trim_end().ends_with(';') {
                let statement = std::mem::take(&mut buffer);
                shell.execute(&statement, out).await?;
            }
        }
        shell.execute(&buffer, out).await?;
        Ok(0)
    }
}

async fn interactive(shell: &mut Shell<'_>, out: &mut (dyn Write + Send)) -> Result<u8, Failure> {
    let mut editor = rustyline::DefaultEditor::new()?;
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".townstat_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    writeln!(
        out,
        "townstat SQL shell on run {} — statements end with ';', \\d lists tables, \\q quits",
        shell.session.run.run_id
    )?;
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "townstat> "
        } else {
            "      -> "
        };
        let line = match editor.readline(prompt) {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if buffer.is_empty() && line.trim_start().starts_with('\\') {
            let _ = editor.add_history_entry(line.as_str());
            if !shell.execute(&line, out).await? {
                break;
            }
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if line.trim_end().ends_with(';') {
            let statement = std::mem::take(&mut buffer);
            let _ = editor.add_history_entry(statement.trim());
            // A failed statement is reported and the shell goes on.
            if let Err(f) = shell.execute(&statement, out).await {
                writeln!(out, "Error: {}", f.message)?;
            }
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(0)
}
