//! The `townstat` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    townstat_cli::main(tune_allocator)
}

/// mimalloc's `purge_delay` option (its index in `mi_option_t` of the vendored
/// mimalloc v3, `libmimalloc-sys` 0.1.49; the crate exports no constant for it). The
/// test below checks the index against the option's default of 1,000 ms.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Two allocator settings, measured on the scale-100 marts rebuild (docs/measurements.md,
/// "Allocator settings"): with both, the 13 mart steps took 3.9–4.0 s instead of
/// 6.1–7.9 s, and the process's system time fell from 5.4–8.0 s to 1.4 s. The time went
/// to the kernel zeroing pages (`clear_page_erms`, 30 % of all samples under `perf`):
/// - transparent huge pages: each first touch of a 2 MiB page zeroes all of it, and
///   the steps touch many of them sparsely. Disabled for the process (`prctl`), which
///   is what mimalloc's own `MIMALLOC_ALLOW_THP=0` does at its start.
/// - purging: mimalloc gives memory freed by one step back to the system after a
///   second, and the next step's first touch of it is zeroed again. A job that exits
///   soon keeps it (`purge_delay = -1`); a server, which lives on after a large query,
///   keeps mimalloc's default and returns memory.
///
/// `MIMALLOC_ALLOW_THP` or `MIMALLOC_PURGE_DELAY` in the environment win over these,
/// so either can be compared without a rebuild.
#[allow(unsafe_code)]
fn tune_allocator(command: &townstat_cli::Command) {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and changes only
        // whether this process's memory may be backed by huge pages.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
    if !command.is_long_running() && std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads it when it next purges. Called
        // before the runtime starts its threads (the function is not thread-safe).
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        }
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
        // Only purge_delay defaults to 1,000 in mimalloc v3 (options.c); a different
        // index, or MIMALLOC_PURGE_DELAY in the test's environment, fails here.
        assert_eq!(delay, 1000);
    }
}
