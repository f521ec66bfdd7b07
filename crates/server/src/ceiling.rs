//! A process-wide memory ceiling: when the server's resident memory passes it, the
//! largest running statement is cancelled (SQLSTATE 53200), before the kernel's OOM
//! killer takes the whole server and every session with it.
//!
//! Each statement has its own memory pool (`--query-memory`), but not everything a
//! statement allocates goes through a pool: a projection's output, string functions'
//! results, Arrow buffers on their way to the client. Many statements at once, each
//! under its pool, can also add up to more than the machine has. So a watchdog reads
//! the process's resident set size (`VmRSS` of `/proc/self/status`) every 50 ms; above the
//! ceiling it picks one victim among the running statements and fires its stop:
//!
//! - the statement holding the most pool memory (`MemoryPool::reserved`), the best
//!   measure of "largest" there is;
//! - when none holds any (the memory is outside the pools), the one that started last,
//!   since the memory rose while it ran.
//!
//! A victim has two seconds to end and free its memory before another is chosen, so
//! one spike does not cancel every session. Freed memory often stays with the
//! allocator for a while, so the resident size may stay above the ceiling after the
//! victim is gone: another statement is chosen only when the resident size has grown
//! by [`MARGIN`] since the last choice (or after it has been below the ceiling once),
//! so that small statements reusing that memory are not cancelled for it. The victim's client gets 53200 ("out of
//! memory") with a message naming the ceiling; the event is logged at WARN.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use datafusion::execution::memory_pool::MemoryPool;
use tokio::sync::watch;

/// How often the resident set size is read.
const TICK: Duration = Duration::from_millis(50);

/// How long a victim has to end before another statement is chosen.
const GRACE: Duration = Duration::from_secs(2);

/// How much the resident size must grow after a victim was chosen before another is.
pub(crate) const MARGIN: usize = 64 << 20;

struct Entry {
    id: u64,
    pool: Arc<dyn MemoryPool>,
    started: Instant,
    stop: watch::Sender<bool>,
}

/// The running statements and the ceiling they share.
pub(crate) struct Ceiling {
    /// Bytes of resident memory beyond which a statement is cancelled; 0 turns the
    /// watchdog off.
    limit: usize,
    running: Mutex<Vec<Entry>>,
    next_id: AtomicU64,
    /// The last victim, when it was chosen, and the resident size then.
    last_victim: Mutex<Option<(u64, Instant, usize)>>,
}

/// A running statement's place in the ceiling's list; leaving it (drop) removes it.
pub(crate) struct Registration {
    ceiling: Weak<Ceiling>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(ceiling) = self.ceiling.upgrade()
            && let Ok(mut running) = ceiling.running.lock()
        {
            running.retain(|e| e.id != self.id);
        }
    }
}

impl Ceiling {
    /// A ceiling of `limit` bytes (0: none), with its watchdog running on the current
    /// tokio runtime (none outside one: then nothing is watched).
    pub(crate) fn start(limit: usize) -> Arc<Ceiling> {
        let ceiling = Arc::new(Ceiling {
            limit,
            running: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            last_victim: Mutex::new(None),
        });
        if limit > 0
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let weak = Arc::downgrade(&ceiling);
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(TICK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tick.tick().await;
                    let Some(ceiling) = weak.upgrade() else {
                        return;
                    };
                    if let Some(rss) = resident_bytes() {
                        ceiling.check(rss);
                    }
                }
            });
        }
        ceiling
    }

    /// Registers a statement with its memory pool; the receiver turns `true` when the
    /// statement is chosen to be cancelled.
    pub(crate) fn register(
        self: &Arc<Self>,
        pool: Arc<dyn MemoryPool>,
    ) -> (Registration, watch::Receiver<bool>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (stop, stopped) = watch::channel(false);
        if let Ok(mut running) = self.running.lock() {
            running.push(Entry {
                id,
                pool,
                started: Instant::now(),
                stop,
            });
        }
        (
            Registration {
                ceiling: Arc::downgrade(self),
                id,
            },
            stopped,
        )
    }

    /// The ceiling in bytes (0: none).
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// One look at the resident set size: above the ceiling, cancels a victim unless
    /// the last one is still within its grace period.
    fn check(&self, rss: usize) {
        let Ok(mut last) = self.last_victim.lock() else {
            return;
        };
        if self.limit == 0 || rss <= self.limit {
            // Below the ceiling: the next time it is passed is a new event.
            *last = None;
            return;
        }
        let Ok(running) = self.running.lock() else {
            return;
        };
        if let Some((id, at, rss_then)) = *last {
            let victim_running = running.iter().any(|e| e.id == id);
            if (victim_running && at.elapsed() < GRACE) || rss < rss_then + MARGIN {
                return;
            }
        }
        let Some(victim) = choose(&running) else {
            return;
        };
        tracing::warn!(
            resident_mib = rss >> 20,
            ceiling_mib = self.limit >> 20,
            statement_pool_mib = victim.pool.reserved() >> 20,
            running = running.len(),
            "memory ceiling reached: cancelling the largest statement"
        );
        let _ = victim.stop.send(true);
        *last = Some((victim.id, Instant::now(), rss));
    }
}

/// The statement to cancel: the most pool memory, else the newest.
fn choose(running: &[Entry]) -> Option<&Entry> {
    running
        .iter()
        .filter(|e| !*e.stop.borrow())
        .max_by_key(|e| (e.pool.reserved(), e.started))
}

/// The process's resident set size in bytes, from `VmRSS` in `/proc/self/status`.
/// `None` where there is no such file.
pub(crate) fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The default ceiling: three quarters of the machine's memory (`MemTotal`), or of a
/// cgroup's limit when that is lower; 0 (none) when neither can be read.
pub fn default_ceiling() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
            .map(|kb| kb * 1024)
    });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => t.min(c) / 4 * 3,
        (Some(t), None) => t / 4 * 3,
        (None, Some(c)) => c / 4 * 3,
        (None, None) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryConsumer};

    /// A ceiling of 1 MiB with no watchdog: the tests call `check` themselves.
    fn one_mib_ceiling() -> Arc<Ceiling> {
        Arc::new(Ceiling {
            limit: 1 << 20,
            running: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            last_victim: Mutex::new(None),
        })
    }

    #[test]
    fn resident_memory_is_read() {
        let rss = resident_bytes().expect("/proc/self/status");
        assert!(rss > 1 << 20 && rss < 1 << 40, "{rss}");
        assert!(default_ceiling() > 0);
    }

    #[test]
    fn the_largest_pool_is_cancelled_once_within_the_grace() {
        let ceiling = one_mib_ceiling();
        let small: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 30));
        let large: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 30));
        let newest: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 30));
        let a = MemoryConsumer::new("a").register(&small);
        a.grow(1000);
        let b = MemoryConsumer::new("b").register(&large);
        b.grow(5000);
        let (_ra, sa) = ceiling.register(small);
        let (rb, sb) = ceiling.register(large);
        let (_rc, sc) = ceiling.register(newest);
        // Under the ceiling: nothing.
        ceiling.check(1 << 19);
        assert!(!*sa.borrow() && !*sb.borrow() && !*sc.borrow());
        // Over it: the largest pool.
        ceiling.check(2 << 20);
        assert!(*sb.borrow() && !*sa.borrow() && !*sc.borrow());
        // Still over, within the grace, the victim still running: no second victim.
        ceiling.check(2 << 20);
        assert!(!*sa.borrow() && !*sc.borrow());
        // The victim ended, but the memory has not grown since (the allocator keeps
        // what it freed): nobody else is cancelled for it.
        drop(rb);
        ceiling.check(2 << 20);
        assert!(!*sa.borrow() && !*sc.borrow());
        // It grows again by the margin: the next largest goes.
        ceiling.check((2 << 20) + MARGIN);
        assert!(*sa.borrow() && !*sc.borrow());
    }

    #[test]
    fn below_the_ceiling_once_the_next_passing_is_a_new_event() {
        let ceiling = one_mib_ceiling();
        let (r1, s1) = ceiling.register(Arc::new(GreedyMemoryPool::new(1 << 30)));
        ceiling.check(2 << 20);
        assert!(*s1.borrow());
        drop(r1);
        let (_r2, s2) = ceiling.register(Arc::new(GreedyMemoryPool::new(1 << 30)));
        ceiling.check(2 << 20);
        assert!(!*s2.borrow(), "the memory of the first is still held");
        ceiling.check(1 << 19);
        ceiling.check(2 << 20);
        assert!(*s2.borrow(), "passed again after falling below");
    }

    #[test]
    fn with_no_pool_memory_the_newest_statement_is_cancelled() {
        let ceiling = one_mib_ceiling();
        let (_r1, s1) = ceiling.register(Arc::new(GreedyMemoryPool::new(1 << 30)));
        std::thread::sleep(Duration::from_millis(5));
        let (_r2, s2) = ceiling.register(Arc::new(GreedyMemoryPool::new(1 << 30)));
        ceiling.check(2 << 20);
        assert!(*s2.borrow() && !*s1.borrow());
    }
}
