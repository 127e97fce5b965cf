//! Measurement helpers of the benchmark commands: peak resident memory of this process (from
//! `/proc/self/status`, Linux), medians, and the numbers a child process printed as JSON.

/// `VmHWM` in bytes, or `None` where the kernel does not report it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The median (upper median for an even count).
///
/// # Panics
/// On an empty list.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Number `k` of a flat JSON object line a benchmark child printed; NaN if absent.
pub fn json_field(line: &str, k: &str) -> f64 {
    line.split(&format!("\"{k}\":"))
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The median of `runs` timings, in milliseconds, of `f` on a rayon pool of `threads` threads
/// (0: one per core; 1: what a single core costs).
///
/// # Errors
/// `f`'s first error, or a pool that cannot be built.
pub fn median_ms_on(
    threads: usize,
    runs: usize,
    f: impl Fn() -> Result<(), String> + Sync,
) -> Result<f64, String> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;
    let times = (0..runs)
        .map(|_| {
            pool.install(|| {
                let t = std::time::Instant::now();
                f().map(|()| t.elapsed().as_secs_f64() * 1e3)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(median(times))
}
