//! Plain Parquet exports of the marts for BI tools that read files and know nothing of
//! Delta: `<warehouse>/export/<mart>/<mart>.parquet`.
//!
//! `export` is a symbolic link to `exports/<run_id>/`. A run writes its files into a
//! fresh folder and then swaps the link with one `rename`, which is atomic: a reader
//! opens either the previous run's files or this run's, never a mix. The previous
//! run's folder is kept (a reader may still be in it); older ones are removed.
//! The marts are small (towns × years), so each is one file, not year partitions.

use std::path::Path;

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("export {}: {e}", path.display()))
}

/// Writes the marts of a run and publishes them. Only for local warehouses.
pub fn publish(
    root: &Path,
    run_id: &str,
    marts: &[(String, RecordBatch)],
    before_swap: impl FnOnce(),
) -> Result<()> {
    let runs = root.join("exports");
    let dir = runs.join(run_id);
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    for (name, batch) in marts {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).map_err(|e| io(&folder, e))?;
        let path = folder.join(format!("{name}.parquet"));
        let file = std::fs::File::create(&path).map_err(|e| io(&path, e))?;
        let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props.clone()))
            .map_err(|e| io(&path, e))?;
        w.write(batch).map_err(|e| io(&path, e))?;
        let file = w.into_inner().map_err(|e| io(&path, e))?;
        file.sync_all().map_err(|e| io(&path, e))?;
    }
    before_swap();
    // Swap the link: create it under a temporary name, then rename over `export`.
    let link = root.join("export");
    let tmp = root.join(format!(".export-{run_id}"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new("exports").join(run_id), &tmp).map_err(|e| io(&tmp, e))?;
    let previous = std::fs::read_link(&link).ok();
    std::fs::rename(&tmp, &link).map_err(|e| io(&link, e))?;
    // Keep this run's folder and the previous one; remove the rest.
    let keep: Vec<std::ffi::OsString> = [Some(std::path::PathBuf::from(run_id)), previous]
        .into_iter()
        .flatten()
        .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
        .collect();
    if let Ok(entries) = std::fs::read_dir(&runs) {
        for entry in entries.flatten() {
            if !keep.contains(&entry.file_name()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(())
}
