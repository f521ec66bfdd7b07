//! The SQL shell of `townstat sql` without a query: statements end with `;` and may
//! span lines; backslash commands describe the warehouse. On a terminal it keeps a
//! line-editing history in `~/.townstat_history`; from a pipe it reads the same
//! syntax, so a script of statements and `\d` commands runs unchanged.
//!
//! `\d` lists tables with their Chinese labels, `\d TABLE` its columns with their SQL
//! types (`text`, `numeric(20,2)`, `date`) and labels, `\x` toggles expanded display
//! (one line per column, for wide rows), `\timing` the elapsed time after each result,
//! `\q` quits.
//!
//! The shell never loses work: no error of a statement or a backslash command ends
//! it (from a pipe, every statement still runs and the exit status is 1 if one
//! failed); Ctrl-C cancels the running statement — its plan is dropped, which stops
//! every operator — and returns to the prompt; the history is saved after every
//! statement. A mistyped table or column name gets the closest names
//! ("did you mean"), not the whole list. On a terminal, a result taller or wider than
//! the screen goes through a pager: `$PAGER` run by `sh -c` (as psql does; set it
//! empty for none), else `less -SFX`.

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
    /// `\x`: one line per column.
    expanded: bool,
    /// Ctrl-C cancels the running statement (interactive only).
    cancellable: bool,
    /// Output taller or wider than the terminal goes through the pager.
    paged: bool,
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
                let df = match ctx.table(t).await {
                    Ok(df) => df,
                    Err(_) => {
                        return Err(Failure::from(format!(
                            "no table named {t}{}",
                            did_you_mean(t, &self.table_names())
                        )));
                    }
                };
                let rows = df
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| {
                        let mut row = vec![
                            f.name().clone(),
                            output::sql_type(f.data_type()),
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

    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .session
            .ctx
            .catalog("townstat")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// An error message with the closest names where a table or column was not found.
    fn explained(&self, message: String) -> String {
        explain_names(&message, &self.table_names())
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
                    let mut text = Vec::new();
                    self.describe(t.map(|t| t.trim_end_matches(';')), d == "d+", &mut text)
                        .await?;
                    self.emit(&text, out)?;
                }
                (Some("timing"), _) => {
                    self.timing = !self.timing;
                    writeln!(out, "Timing is {}.", if self.timing { "on" } else { "off" })?;
                }
                (Some("x"), _) => {
                    self.expanded = !self.expanded;
                    writeln!(
                        out,
                        "Expanded display is {}.",
                        if self.expanded { "on" } else { "off" }
                    )?;
                }
                _ => writeln!(
                    out,
                    "commands: \\d [TABLE]  tables or a table's columns, with labels; \\d+ TABLE  with definitions; \\x  expanded display; \\timing; \\q"
                )?,
            }
            return Ok(true);
        }
        let sql = input.trim_end_matches(';').trim();
        if sql.is_empty() {
            return Ok(true);
        }
        let started = Instant::now();
        let batches = if self.cancellable {
            // Dropping the query's future drops its plan and streams: every operator
            // (and the threads it spawned) stops.
            tokio::select! {
                r = self.session.query(sql) => r?,
                _ = tokio::signal::ctrl_c() => {
                    return Err(Failure::from("canceling statement due to user request (Ctrl-C)"));
                }
            }
        } else {
            self.session.query(sql).await?
        };
        let mut text: Vec<u8> = Vec::new();
        if self.expanded && self.format == Format::Table {
            expanded(&batches, &mut text)?;
        } else {
            output::write(&batches, self.format, &mut text)?;
        }
        if self.timing {
            writeln!(
                text,
                "Time: {:.3} ms",
                started.elapsed().as_secs_f64() * 1000.0
            )?;
        }
        self.emit(&text, out)?;
        Ok(true)
    }

    /// Writes a result, through the pager when it does not fit the screen.
    fn emit(&self, text: &[u8], out: &mut (dyn Write + Send)) -> Result<(), Failure> {
        if self.paged && !fits_screen(text) {
            page(text, out)
        } else {
            out.write_all(text)?;
            Ok(())
        }
    }
}

/// Rows as psql's expanded display shows them: a `-[ RECORD n ]-` line, then one
/// `column | value` line per column.
fn expanded(batches: &[RecordBatch], out: &mut Vec<u8>) -> Result<(), Failure> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default().with_null("");
    let mut n = 0;
    for batch in batches {
        let schema = batch.schema();
        let width = schema
            .fields()
            .iter()
            .map(|f| text_width(f.name()))
            .max()
            .unwrap_or(0);
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            n += 1;
            writeln!(
                out,
                "-[ RECORD {n} ]{}",
                "-".repeat(width.saturating_sub(8) + 4)
            )?;
            for (f, formatter) in schema.fields().iter().zip(&formatters) {
                let pad = width - text_width(f.name());
                writeln!(
                    out,
                    "{}{} | {}",
                    f.name(),
                    " ".repeat(pad),
                    formatter.value(row)
                )?;
            }
        }
    }
    if n == 0 {
        writeln!(out, "(0 rows)")?;
    }
    Ok(())
}

/// Columns a text takes on a terminal (a CJK character takes two).
fn text_width(text: &str) -> usize {
    townstat_query::xlsx::width(text)
}

/// The terminal's rows and columns, when standard output is one.
#[allow(unsafe_code)]
fn terminal_size() -> Option<(usize, usize)> {
    #[cfg(unix)]
    {
        // SAFETY: TIOCGWINSZ fills the winsize struct passed by pointer; nothing else
        // is read or written.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
        if ok && size.ws_row > 0 && size.ws_col > 0 {
            return Some((usize::from(size.ws_row), usize::from(size.ws_col)));
        }
    }
    None
}

/// Whether a text fits the terminal (a line for the prompt kept free).
fn fits_screen(text: &[u8]) -> bool {
    let Some((rows, cols)) = terminal_size() else {
        return true;
    };
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().collect();
    lines.len() < rows && lines.iter().all(|l| text_width(l) <= cols)
}

/// Shows a text through the pager (`$PAGER` by `sh -c`, else `less -SFX`); writes it
/// as it is when `PAGER` is set empty or the pager cannot start.
fn page(text: &[u8], out: &mut (dyn Write + Send)) -> Result<(), Failure> {
    let pager = match std::env::var("PAGER") {
        Ok(p) if p.trim().is_empty() => {
            out.write_all(text)?;
            return Ok(());
        }
        Ok(p) => p,
        Err(_) => "less -SFX".to_string(),
    };
    out.flush()?;
    let child = std::process::Command::new("sh")
        .args(["-c", &pager])
        .stdin(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        out.write_all(text)?;
        return Ok(());
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A pager quit early closes its end: that is not an error.
        let _ = stdin.write_all(text);
    }
    let _ = child.wait();
    Ok(())
}

/// Edit distance (Levenshtein) between two names.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// The few names closest to a mistyped one (at most three, none far off).
fn closest<'a>(name: &str, candidates: &'a [String]) -> Vec<&'a str> {
    let name = name.to_lowercase();
    let limit = (name.chars().count() / 2).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .iter()
        .map(|c| {
            let short = c.rsplit('.').next().unwrap_or(c).to_lowercase();
            (distance(&name, &short), c.as_str())
        })
        .filter(|(d, _)| *d <= limit)
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// "; did you mean x, y?" or nothing.
fn did_you_mean(name: &str, candidates: &[String]) -> String {
    let close = closest(name, candidates);
    if close.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", close.join(", "))
    }
}

/// DataFusion's "table 'townstat.public.twn_year' not found" gets the closest table
/// names; its "No field named x … Valid fields are <every column>." keeps the closest
/// few columns instead of the whole list.
fn explain_names(message: &str, tables: &[String]) -> String {
    if let Some(start) = message.find("table '")
        && let Some(len) = message[start + 7..].find("' not found")
    {
        let full = &message[start + 7..start + 7 + len];
        let name = full.rsplit('.').next().unwrap_or(full);
        return format!("{message}{}", did_you_mean(name, tables));
    }
    if let Some(at) = message.find("\nValid fields are ")
        && let Some(named) = message.find("No field named ")
    {
        let fields: Vec<String> = message[at + 19..]
            .trim_end_matches('.')
            .split(", ")
            .map(|f| f.trim_matches('"').to_string())
            .collect();
        let rest = &message[named + 15..];
        let end = rest.find(['.', ' ', '\n']).unwrap_or(rest.len());
        let missing = rest[..end].trim_matches('"');
        let missing = missing.rsplit('.').next().unwrap_or(missing);
        let head = &message[..at];
        let close = closest(missing, &fields);
        return if close.is_empty() || head.contains("Did you mean") {
            head.to_string()
        } else {
            format!("{head}\nClosest columns: {}.", close.join(", "))
        };
    }
    message.to_string()
}

/// Runs the shell on standard input; `paged`: output may go through a pager (standard
/// output is the terminal).
pub async fn run(
    session: &Session,
    format: Format,
    paged: bool,
    out: &mut (dyn Write + Send),
) -> Result<u8, Failure> {
    let interactive_input = std::io::stdin().is_terminal();
    let mut shell = Shell {
        session,
        format,
        timing: false,
        expanded: false,
        cancellable: interactive_input,
        paged: paged && interactive_input,
    };
    if interactive_input {
        return interactive(&mut shell, out).await;
    }
    // From a pipe: every statement runs; an error is reported on stderr, and the
    // exit status says whether any failed.
    let stdin = std::io::stdin();
    let mut buffer = String::new();
    let mut failed = false;
    let mut report = |shell: &Shell<'_>, r: Result<bool, Failure>| -> bool {
        match r {
            Ok(go_on) => go_on,
            Err(f) => {
                eprintln!("Error: {}", shell.explained(f.message));
                failed = true;
                true
            }
        }
    };
    for line in stdin.lock().lines() {
        let line = line?;
        if buffer.trim().is_empty() && line.trim_start().starts_with('\\') {
            let r = shell.execute(&line, out).await;
            if !report(&shell, r) {
                return Ok(u8::from(failed));
            }
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if line.trim_end().ends_with(';') {
            let statement = std::mem::take(&mut buffer);
            let r = shell.execute(&statement, out).await;
            report(&shell, r);
        }
    }
    let r = shell.execute(&buffer, out).await;
    report(&shell, r);
    Ok(u8::from(failed))
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
        "townstat SQL shell on run {} — statements end with ';', \\d lists tables, \\x expanded display, \\q quits",
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
        let unit = if buffer.is_empty() && line.trim_start().starts_with('\\') {
            line
        } else {
            buffer.push_str(&line);
            buffer.push('\n');
            if !line.trim_end().ends_with(';') {
                continue;
            }
            std::mem::take(&mut buffer)
        };
        let _ = editor.add_history_entry(unit.trim());
        // Saved now, not at exit: a shell killed or closed keeps what was typed.
        if let Some(h) = &history {
            let _ = editor.save_history(h);
        }
        // No error ends the shell: it is reported and the prompt comes back.
        match shell.execute(&unit, out).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(f) => writeln!(out, "Error: {}", shell.explained(f.message))?,
        }
        out.flush()?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistyped_names_get_the_closest_few() {
        let tables: Vec<String> = ["town", "town_year", "county_year", "enterprise"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            explain_names(
                "Error during planning: table 'townstat.public.twn_year' not found",
                &tables
            ),
            "Error during planning: table 'townstat.public.twn_year' not found; did you mean \
             town_year?"
        );
        assert_eq!(
            explain_names("table 'townstat.public.zzzzzz' not found", &tables),
            "table 'townstat.public.zzzzzz' not found"
        );
        let columns = "Schema error: No field named revenu.\nValid fields are town_year.town_id, \
                       town_year.year, town_year.revenue, town_year.revenue_yoy, \
                       town_year.enterprises.";
        assert_eq!(
            explain_names(columns, &tables),
            "Schema error: No field named revenu.\nClosest columns: town_year.revenue."
        );
    }
}
