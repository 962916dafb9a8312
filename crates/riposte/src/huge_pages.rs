//! Transparent huge pages, chosen per command at run time (the one place that decides).
//!
//! mimalloc advises the kernel to back its arenas with huge pages (`MADV_HUGEPAGE`, which is
//! what a kernel in THP `madvise` mode waits for). Whether the kernel follows that advice is
//! set here, once, for the whole process: `prctl(PR_SET_THP_DISABLE)` overrides the advice
//! of every mapping, at fault time, so it takes effect even for arenas reserved before
//! `main` (only what was touched before `main`, two huge pages, stays huge).
//!
//! - **Off** from the first line of `main` and for every short command, the one-shot Sigma
//!   scan above all: a huge page is zeroed whole on first touch, and a process that lives
//!   under a second uses little of each. The cold scan's peak RSS was ~150 MiB with huge pages
//!   and ~100 MiB without (BENCHMARKS.md, "Detection").
//! - **On** for the long-lived holders of large, randomly touched state: `serve` and
//!   `bench cases` (open cases, entity index, enrichment). With 4 KiB pages each look-up is a
//!   likely TLB miss; huge pages made the passes on reused memory 15 – 25 % faster
//!   (BENCHMARKS.md, "Cases"). `replay` stays off: with rules it is the one-shot scan.
//!
//! `PR_SET_THP_DISABLE` is inherited across `fork` and `execve`; every riposte process makes
//! its own choice, so a child `riposte serve` (as `bench http` starts) still gets huge pages.

/// Allows (`true`) or refuses (`false`) transparent huge pages for this process from now on.
/// Pages already faulted in stay as they are. Elsewhere than Linux this does nothing; on a
/// kernel without the call it changes nothing and reports nothing (huge pages are a speed
/// and memory trade, never a matter of correctness).
pub fn allow(on: bool) {
    #[cfg(target_os = "linux")]
    {
        let disable = libc::c_ulong::from(!on);
        // SAFETY: PR_SET_THP_DISABLE takes one integer argument (the rest must be zero) and
        // touches no memory of ours; a failure leaves the process as it was.
        unsafe {
            libc::prctl(
                libc::PR_SET_THP_DISABLE,
                disable,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = on;
}

/// Whether this process may have transparent huge pages (Linux; `None` elsewhere or when the
/// kernel does not say).
#[cfg_attr(not(test), allow(dead_code))]
pub fn allowed() -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_GET_THP_DISABLE takes no argument and returns the flag (or -1).
        let r = unsafe {
            libc::prctl(
                libc::PR_GET_THP_DISABLE,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        match r {
            0 => Some(true),
            1 => Some(false),
            _ => None,
        }
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Huge-page-backed anonymous memory of this process, in KiB (`AnonHugePages` of
/// `/proc/self/smaps_rollup`), for the benchmarks to show what the switch did.
pub fn anon_huge_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = text.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_switch_reaches_the_kernel_both_ways() {
        allow(false);
        assert_eq!(allowed(), Some(false));
        allow(true);
        assert_eq!(allowed(), Some(true));
    }
}
