//! One run at a time. A run holds an exclusive advisory lock (`flock`) on
//! `<warehouse>/_run.lock`; a second run fails at once with a message naming the
//! holder. The operating system releases the lock when the holding process dies, even
//! by SIGKILL, so a stale lock from a dead run is simply taken over by the next one.
//! (Local warehouses; object stores rely on Delta's own commit conflict checks.)

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use fs2::FileExt;

use crate::error::{Error, Result};

/// The held lock; dropping it releases the lock.
pub struct RunLock {
    file: File,
}

impl RunLock {
    /// Takes the lock or fails naming the run that holds it.
    pub fn acquire(root: &Path, run_id: &str) -> Result<RunLock> {
        let path = root.join("_run.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
        if file.try_lock_exclusive().is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(Error::Locked(format!(
                "another townstat run holds {} ({}); not starting a second one",
                path.display(),
                holder.trim()
            )));
        }
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(
            file,
            "run {run_id}, pid {}, started {}",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        );
        let _ = file.flush();
        Ok(RunLock { file })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

/// Fault injection for the crash tests: when `TOWNSTAT_PAUSE_AT` names this commit
/// point, the run writes `<warehouse>/_paused_at_<point>` and sleeps, so that a test
/// can kill it (SIGKILL) exactly there. Unset in production; it changes nothing else.
pub fn pause_point(root: Option<&Path>, point: &str) {
    if std::env::var("TOWNSTAT_PAUSE_AT").ok().as_deref() != Some(point) {
        return;
    }
    if let Some(root) = root {
        let _ = std::fs::write(root.join(format!("_paused_at_{point}")), b"");
    }
    tracing::warn!(point, "paused for fault injection (TOWNSTAT_PAUSE_AT)");
    std::thread::sleep(std::time::Duration::from_secs(120));
}
