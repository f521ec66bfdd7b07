//! The `townstat` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

use townstat_pipeline::run::Phase;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    townstat_pipeline::run::on_phase(purge_for);
    townstat_cli::main()
}

/// Keeps this process's memory in 4 KiB pages. With transparent huge pages, the
/// kernel zeroes a whole 2 MiB page on its first touch, and the mart steps touch many
/// pages sparsely, again after mimalloc has returned them: on the scale-100 marts
/// rebuild, 30 % of all `perf` samples were in the kernel's `clear_page_erms`, and the
/// 13 steps took 6.4–6.6 s instead of 3.9–4.3 s (bench/RESULTS.md, "1. Transparent
/// huge pages off"). This is what mimalloc's `MIMALLOC_ALLOW_THP=0` does
/// at its start; setting `MIMALLOC_ALLOW_THP` in the environment leaves the choice to
/// mimalloc (which allows them by default), so the two compare without a rebuild.
#[allow(unsafe_code)]
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments and changes only whether
        // this process's memory may be backed by huge pages; no memory is touched.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

/// mimalloc's `purge_delay` option: its index in `mi_option_t` of the vendored
/// mimalloc v3 (`libmimalloc-sys` 0.1.49, which exports no constant for it). A test
/// below checks the index against the option's default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// mimalloc v3's default purge delay, in milliseconds.
#[cfg(test)]
const DEFAULT_PURGE_DELAY_MS: std::os::raw::c_long = 1000;
/// The purge delay while a run ingests and builds its marts.
const RUN_PURGE_DELAY_MS: std::os::raw::c_long = 100;

/// How long mimalloc keeps memory a thread has freed before returning it to the
/// system, during a run (bench/RESULTS.md, "3. mimalloc's purge delay by phase", and
/// "Marts streamed to scratch files"). Ingest frees memory continuously, and with the
/// default of a second about 500 MiB of it was still held at the scale-100 peak (4,000
/// MiB against 3,497 MiB with 100 ms, no slower). The mart steps free large buffers
/// and allocate them again in the next step: with a second, the scale-100 marts took
/// 9.7–9.9 s and peaked at 1,858–1,923 MiB, with 100 ms 10.9–11.4 s and 1,527–1,568
/// MiB. A nightly run has to fit its server more than it has to save a second, so the
/// marts get 100 ms too. Other commands keep mimalloc's default. `MIMALLOC_PURGE_DELAY`
/// in the environment wins over both.
#[allow(unsafe_code)]
fn purge_for(phase: Phase) {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    let delay = match phase {
        Phase::Ingest | Phase::Marts => RUN_PURGE_DELAY_MS,
    };
    // SAFETY: stores an integer option, which mimalloc reads each time it considers a
    // purge. mimalloc documents mi_option_set as not thread-safe: other threads may
    // read the option while it is stored. The store is one aligned machine word, so a
    // reader sees the old delay or the new one, and either is a valid delay.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn purge_delay_index_names_the_purge_delay_option() {
        // SAFETY: reads an integer option.
        let delay = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        // Only purge_delay defaults to 1,000 in mimalloc v3 (src/options.c); a wrong
        // index, or MIMALLOC_PURGE_DELAY in the test's environment, fails here.
        assert_eq!(delay, DEFAULT_PURGE_DELAY_MS);
    }
}
