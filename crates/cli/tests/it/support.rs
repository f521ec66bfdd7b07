//! Running the binary and comparing its output with snapshots.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// What a run of the binary did.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `townstat` with arguments in the repository root against a warehouse.
pub fn townstat(warehouse: &Path, args: &[&str]) -> Output {
    townstat_env(warehouse, &[], args)
}

/// [`townstat`] with environment variables set (fault switches, say).
pub fn townstat_env(warehouse: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_townstat"))
        .current_dir(repo())
        .env("TOWNSTAT_WAREHOUSE", warehouse)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .expect("townstat runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a query and returns its CSV output.
pub fn sql_csv(warehouse: &Path, query: &str) -> String {
    let out = townstat(warehouse, &["sql", query, "--format", "csv"]);
    assert_eq!(out.code, 0, "query {query} failed: {}", out.stderr);
    out.stdout
}

/// Compares text with `tests/snapshots/NAME`; `UPDATE_SNAPSHOTS=1` rewrites it.
pub fn snapshot(name: &str, actual: &str) {
    let path = repo().join("tests/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}; run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "snapshot {name} differs (UPDATE_SNAPSHOTS=1 to accept an intended change)"
    );
}

/// Replaces run ids (`20261126T183000Z-ab12cd`) with `<RUN>`.
pub fn mask_run_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..chars.len().min(i + 24)].iter().collect();
        let is_id = rest.len() >= 24
            && rest.chars().take(8).all(|c| c.is_ascii_digit())
            && rest.chars().nth(8) == Some('T')
            && rest.chars().nth(15) == Some('Z')
            && rest.chars().nth(16) == Some('-');
        if is_id {
            out.push_str("<RUN>");
            i += 24;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}
