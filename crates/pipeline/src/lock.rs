//! One run at a time.
//!
//! - **Local warehouses**: a run holds an exclusive advisory lock (`flock`) on
//!   `<warehouse>/_run.lock`; a second run fails at once with a message naming the
//!   holder. The operating system releases the lock when the holding process dies, even
//!   by SIGKILL, so a stale lock from a dead run is simply taken over by the next one.
//! - **Object stores** (`s3://`): there is no `flock`. The lock is the object
//!   `<warehouse>/_run.lock`, created with a conditional put (`If-None-Match: *`), which
//!   the store grants to exactly one writer. The holder deletes it when it ends. A run
//!   killed before it could delete it leaves the object behind; the lock is then stale
//!   once it is older than `TOWNSTAT_LOCK_TTL` (default 6 h, longer than any nightly
//!   run), and the next run takes it over with a put conditional on the stale object's
//!   ETag (`If-Match`), so two runs that both find it stale cannot both win.
//!   Delta's own commit checks stay the last line of defence either way.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use fs2::FileExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
use townstat_warehouse::Warehouse;

use crate::error::{Error, Result};

/// How old an object-store lock must be before it is taken as left by a dead run.
const DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// The held lock. A local lock is released when dropped; an object-store lock by
/// [`RunLock::release`] (or, if the process dies, by expiry).
pub enum RunLock {
    /// `flock` on a local file.
    Local(File),
    /// A lock object in an object store.
    Object {
        /// The store.
        store: Arc<dyn ObjectStore>,
        /// The lock object.
        path: ObjectPath,
    },
}

fn holder_text(run_id: &str) -> String {
    format!(
        "run {run_id}, pid {}, host {}, started {}",
        std::process::id(),
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "?".into()),
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    )
}

fn ttl() -> std::time::Duration {
    std::env::var("TOWNSTAT_LOCK_TTL")
        .ok()
        .and_then(|v| v.trim().trim_end_matches('s').parse::<u64>().ok())
        .map(std::time::Duration::from_secs)
        .unwrap_or(DEFAULT_TTL)
}

impl RunLock {
    /// Takes the warehouse's lock or fails naming the run that holds it.
    pub async fn take(warehouse: &Warehouse, run_id: &str) -> Result<RunLock> {
        match warehouse.local_root() {
            Some(root) => RunLock::acquire(&root, run_id),
            None => RunLock::acquire_object(warehouse, run_id).await,
        }
    }

    /// Takes the lock of a local warehouse or fails naming the run that holds it.
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
        let _ = write!(file, "{}", holder_text(run_id));
        let _ = file.flush();
        Ok(RunLock::Local(file))
    }

    async fn acquire_object(warehouse: &Warehouse, run_id: &str) -> Result<RunLock> {
        let (store, prefix) = warehouse
            .root_store()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let path = prefix.clone().join("_run.lock");
        let shown = format!("{}_run.lock", warehouse.root());
        let fail = |e: object_store::Error| Error::Internal(format!("{shown}: {e}"));
        let create = PutOptions::from(PutMode::Create);
        match store
            .put_opts(&path, holder_text(run_id).into(), create)
            .await
        {
            Ok(_) => return Ok(RunLock::Object { store, path }),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {}
            Err(e) => return Err(fail(e)),
        }
        // Held, or left by a dead run: read who and how old.
        let found = match store.get(&path).await {
            Ok(found) => found,
            // Released between the two calls: the next run simply tries again.
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::Locked(format!(
                    "{shown} was released while this run tried to take it; try again"
                )));
            }
            Err(e) => return Err(fail(e)),
        };
        let meta = found.meta.clone();
        let holder = found.bytes().await.map_err(fail)?;
        let holder = String::from_utf8_lossy(&holder).trim().to_string();
        let age = (chrono::Utc::now() - meta.last_modified)
            .to_std()
            .unwrap_or_default();
        if age < ttl() {
            return Err(Error::Locked(format!(
                "another townstat run holds {shown} ({holder}, {} s old); not starting a \
                 second one",
                age.as_secs()
            )));
        }
        let replace = PutOptions::from(PutMode::Update(UpdateVersion {
            e_tag: meta.e_tag.clone(),
            version: meta.version.clone(),
        }));
        match store
            .put_opts(&path, holder_text(run_id).into(), replace)
            .await
        {
            Ok(_) => {
                tracing::warn!(lock = %shown, stale = %holder, age_s = age.as_secs(), "took over a stale run lock");
                Ok(RunLock::Object { store, path })
            }
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. }) => Err(Error::Locked(format!(
                "another townstat run took over the stale lock {shown} first"
            ))),
            Err(e) => Err(fail(e)),
        }
    }

    /// Releases the lock: deletes an object-store lock; a local lock is released by
    /// dropping it.
    pub async fn release(self) {
        if let RunLock::Object { store, path } = &self
            && let Err(e) = store.delete(path).await
        {
            tracing::warn!(lock = %path, error = %e, "could not delete the run lock; it expires after TOWNSTAT_LOCK_TTL");
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let RunLock::Local(file) = self {
            let _ = FileExt::unlock(file);
        }
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

/// Fault injection for the error path: when `TOWNSTAT_FAIL_AT` names this commit
/// point, the run fails there with an error, as a failed commit or a bad mart would.
/// Unset in production; it changes nothing else.
pub fn fail_point(point: &str) -> Result<()> {
    if std::env::var("TOWNSTAT_FAIL_AT").ok().as_deref() == Some(point) {
        return Err(Error::Injected(point.to_string()));
    }
    Ok(())
}
