//! The `townstat` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    townstat_cli::main()
}

/// Keeps this process's memory in 4 KiB pages. With transparent huge pages, the
/// kernel zeroes a whole 2 MiB page on its first touch, and the mart steps touch many
/// pages sparsely, again after mimalloc has returned them: on the scale-100 marts
/// rebuild, 30 % of all `perf` samples were in the kernel's `clear_page_erms`, and the
/// 13 steps took 6.4–6.6 s instead of 3.9–4.3 s (bench/RESULTS.md, "What changed, and
/// why: transparent huge pages"). This is what mimalloc's `MIMALLOC_ALLOW_THP=0` does
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
