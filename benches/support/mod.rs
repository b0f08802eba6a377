//! What the gateway benches share: child processes that stop when dropped, the banner
//! line they print, and the CPU time and memory of a process read from `/proc`.
//!
//! Included by `#[path = "support/mod.rs"] mod support;`: a bench is its own crate, so
//! not every bench uses every item.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A number from the environment, or `default`.
pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The value at quantile `p` of sorted durations (zero for none).
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // In 0..len: the product of len - 1 and a quantile in [0, 1], rounded.
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

// ===== impl ChildProcess =====

/// A child process killed (and reaped) when dropped, so a failed bench leaves nothing
/// running.
pub(crate) struct ChildProcess(pub(crate) Child);

impl ChildProcess {
    /// Starts `command` with stdout piped and stderr discarded.
    pub(crate) fn spawn(command: &mut Command) -> ChildProcess {
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        ChildProcess(child)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Reads stdout lines (at most `max`) until one has a word starting with `prefix`
    /// and ending with `suffix`; that word.
    pub(crate) fn word_in_banner(&mut self, prefix: &str, suffix: &str, max: usize) -> String {
        let stdout = self.0.stdout.take().expect("stdout piped");
        let mut lines = BufReader::new(stdout).lines();
        for _ in 0..max {
            let line = lines.next().expect("banner line").expect("banner");
            if let Some(word) = line
                .split_whitespace()
                .find(|w| w.starts_with(prefix) && w.ends_with(suffix))
            {
                let word = word.to_owned();
                // Keep draining stdout so the child never blocks on a full pipe.
                std::thread::spawn(move || lines.take(10_000).for_each(drop));
                return word;
            }
        }
        panic!("no word {prefix}...{suffix} in the first {max} lines");
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bedrock-converse proxy --config <config>` with `envs` (and
/// `--worker-threads $BENCH_GATEWAY_THREADS` when that is set, for A/B runs); the
/// process and its `http://` base URL (`.../model/`).
pub(crate) fn start_gateway(binary: &str, config: &Path, envs: &[(&str, &str)]) -> (ChildProcess, String) {
    let mut command = Command::new(binary);
    command.args(["proxy", "--config"]).arg(config);
    if let Ok(threads) = std::env::var("BENCH_GATEWAY_THREADS") {
        command.args(["--worker-threads", &threads]);
    }
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut proxy = ChildProcess::spawn(&mut command);
    let base = proxy.word_in_banner("http://", "/model/", 5);
    (proxy, base)
}

// ===== CPU and memory from /proc =====

/// CPU time (user + system) of the processes `pids`, all their threads: the sum of
/// the first field of `/proc/<pid>/task/<tid>/schedstat` (nanoseconds on the CPU),
/// and, for threads that ended, `utime + stime` of the process (clock ticks) when it is
/// larger.
pub(crate) fn cpu_time(pids: &[u32]) -> Duration {
    pids.iter().map(|&pid| process_cpu(pid)).sum()
}

fn process_cpu(pid: u32) -> Duration {
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let path = task.path().join("schedstat");
            let on_cpu = std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
            ns += on_cpu;
        }
    }
    let by_threads = Duration::from_nanos(ns);
    let by_ticks = Duration::from_secs_f64(cpu_ticks(pid) as f64 / ticks_per_second());
    // Ticks are 10 ms coarse; they win only when threads that ended took CPU.
    if by_ticks > by_threads + Duration::from_millis(20) {
        by_ticks
    } else {
        by_threads
    }
}

/// `rounds` rounds of `run(route)` for each of `routes` routes in turn (0, 1, ...,
/// then again), so that the machine's load falls on every route alike; per route, the
/// CPU time of the processes `pids` while it ran and the sum of what `run` returned
/// (bytes received, as a rule).
pub(crate) fn alternating_cpu(
    pids: &[u32],
    routes: usize,
    rounds: usize,
    mut run: impl FnMut(usize) -> u64,
) -> Vec<(Duration, u64)> {
    let mut totals = vec![(Duration::ZERO, 0u64); routes];
    for _ in 0..rounds {
        for (route, total) in totals.iter_mut().enumerate() {
            let before = cpu_time(pids);
            let got = run(route);
            total.0 += cpu_time(pids).saturating_sub(before);
            total.1 += got;
        }
    }
    totals
}

/// The process's CPU time so far (user + system), in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the `(comm)`: state is field 3; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
pub(crate) fn ticks_per_second() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`), in KiB.
pub(crate) fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The children of `parent` (its `ppid`), from `/proc`.
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Field 4 (the second after the `(comm)`) is the parent's pid.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        if rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            out.push(pid);
        }
    }
    out
}
