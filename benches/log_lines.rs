//! The gateway's log writer (`src/bin/bedrock-converse/log_lines.rs`: each line appended
//! to a bounded batch, one writer thread writing the batch every 20 ms) beside
//! `tracing-appender`'s `non_blocking` (a crossbeam channel of one `Vec` per line to a
//! worker thread that writes each line), under the gateway's pattern: the same
//! `tracing_subscriber::fmt` line as the gateway's `stream forwarded`, logged from one
//! thread one line at a time at 1,000 and 10,000 lines/s and in bursts of 100 lines every
//! 10 ms, to stderr redirected to a file and to a pipe.
//!
//! | writer | what it is |
//! | --- | --- |
//! | `format-only` | the formatter writing into `io::sink()` (the floor: formatting and pacing) |
//! | `ours` | `log_lines::BatchedLog` over stderr |
//! | `appender` | `tracing_appender::non_blocking(stderr)`: lossy, 128,000 lines |
//! | `appender-blocking` | the same, `.lossy(false)` (a full channel blocks the logger) |
//! | `appender-bufwriter` | `non_blocking(BufWriter::new(stderr))`, 64 KiB (its worker flushes after each drain of the channel) |
//! | `appender-periodic` | `non_blocking` over a 64 KiB `BufWriter` whose `flush` writes only when 20 ms have passed since the last (nothing lost on exit: the worker drops the writer; but a line can wait for the next one indefinitely) |
//!
//! Each run is a child process (this bench, re-run with `LOG_LINES_CHILD` set). Figures:
//! CPU of the logging thread and of the whole process while the lines were logged (the
//! first field of `/proc/.../schedstat`, nanoseconds on the CPU), per line, and the
//! process's over `format-only`'s (what the writer costs; the pacing's sleeps and
//! wake-ups are in every row); `write(2)` calls per 1,000 lines (counted in the
//! process), `futex(2)` and `sched_yield(2)` calls (crossbeam's back-off before it parks
//! a thread) per 1,000 lines (`perf stat` tracepoints, when `perf` can count them);
//! lines missing from the output.
//! Figures are the median of `LOG_LINES_ROUNDS` (3) rounds, the writers taking turns.
//!
//! `cargo bench --bench log_lines`. One run alone, for callgrind (instructions on each
//! thread; compare two line counts to leave out start-up):
//! `LOG_LINES_CHILD="ours bursts 2000" valgrind --tool=callgrind --separate-threads=yes
//! target/release/deps/log_lines-* 2>/dev/null`.

// A bench is built with `cfg(test)` but without the test harness: the module's unit
// tests are compiled, not run, and their helpers look unused.
#[allow(dead_code)]
#[path = "../src/bin/bedrock-converse/log_lines.rs"]
mod log_lines;
#[path = "support/mod.rs"]
mod support;

use std::io::{self, BufWriter, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::env_usize;

/// Set in a child run: `WRITER PATTERN [LINES]`.
const CHILD: &str = "LOG_LINES_CHILD";

/// The writers compared (`format-only`: the formatter into `io::sink()`, the cost of a
/// line before any writer).
const WRITERS: [&str; 6] = [
    "format-only",
    "ours",
    "appender",
    "appender-blocking",
    "appender-bufwriter",
    "appender-periodic",
];

/// How lines arrive: name, lines, lines per arrival, time between arrivals.
const PATTERNS: [(&str, usize, usize, Duration); 3] = [
    ("1k/s", 2_000, 1, Duration::from_millis(1)),
    ("10k/s", 10_000, 1, Duration::from_micros(100)),
    ("bursts", 10_000, 100, Duration::from_millis(10)),
];

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let rounds = env_usize("LOG_LINES_ROUNDS", 3).max(1);
    let perf = perf_counts_syscalls();
    if !perf {
        println!("(`perf stat` cannot count syscall tracepoints here: futex and yield columns left out)");
    }
    println!(
        "{:<5} {:<7} {:<19} {:>12} {:>12} {:>12} {:>11} {:>11} {:>11} {:>5}",
        "sink",
        "lines",
        "writer",
        "log ns/line",
        "all ns/line",
        "over format",
        "write/1000",
        "futex/1000",
        "yield/1000",
        "lost"
    );
    for sink in [Sink::File, Sink::Pipe] {
        for (pattern, ..) in PATTERNS {
            let mut runs: Vec<Vec<Run>> = vec![Vec::new(); WRITERS.len()];
            for _ in 0..rounds {
                for (writer, runs) in WRITERS.iter().zip(&mut runs) {
                    runs.push(run(writer, pattern, sink, perf));
                }
            }
            // The first writer, `format-only`, is the floor the others are shown over.
            let floor = median(&runs[0], &|r| per_line(r.all_ns, r));
            for (writer, runs) in WRITERS.iter().zip(&runs) {
                print_row(sink, pattern, writer, runs, perf, floor);
            }
        }
    }
}

// ===== the parent: runs and figures =====

/// Where the child's stderr goes.
#[derive(Clone, Copy, Debug)]
enum Sink {
    File,
    Pipe,
}

/// What one child run measured.
#[derive(Clone, Debug, Default)]
struct Run {
    lines: u64,
    log_ns: u64,
    all_ns: u64,
    writes: u64,
    futexes: u64,
    yields: u64,
    /// Lines logged that are not in the output, dropped or lost.
    lost: u64,
}

/// One child run of `writer` with `pattern`, its stderr to `sink`.
fn run(writer: &str, pattern: &str, sink: Sink, perf: bool) -> Run {
    let exe = std::env::current_exe().expect("this bench's path");
    let dir = std::env::temp_dir();
    let perf_out = dir.join(format!("log_lines-perf-{}.txt", std::process::id()));
    let mut command = if perf {
        let mut c = Command::new("perf");
        c.args([
            "stat",
            "-x,",
            "-e",
            "syscalls:sys_enter_futex,syscalls:sys_enter_sched_yield",
            "-o",
        ])
        .arg(&perf_out)
        .arg("--")
        .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    command
        .env(CHILD, format!("{writer} {pattern}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let file = dir.join(format!("log_lines-out-{}.txt", std::process::id()));
    match sink {
        Sink::File => command.stderr(std::fs::File::create(&file).expect("output file")),
        Sink::Pipe => command.stderr(Stdio::piped()),
    };
    let mut child = command.spawn().expect("start the child run");
    let reader = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut lines = 0u64;
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
            }
            lines
        })
    });
    let output = child.wait_with_output().expect("child run");
    assert!(output.status.success(), "{writer} {pattern}: {:?}", output.status);
    let written = match reader {
        Some(reader) => reader.join().expect("pipe reader"),
        None => {
            let bytes = std::fs::read(&file).expect("output file");
            memchr::memchr_iter(b'\n', &bytes).count() as u64
        }
    };
    let mut run = parse_child(&String::from_utf8_lossy(&output.stdout));
    run.lost = (run.lines + WARM_UP as u64).saturating_sub(written);
    if perf {
        let counts = std::fs::read_to_string(&perf_out).unwrap_or_default();
        run.futexes = perf_count(&counts, "syscalls:sys_enter_futex");
        run.yields = perf_count(&counts, "syscalls:sys_enter_sched_yield");
    }
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&perf_out);
    run
}

/// The child's `lines log_ns all_ns writes` line.
fn parse_child(stdout: &str) -> Run {
    let numbers: Vec<u64> = stdout
        .split_whitespace()
        .map(|w| w.parse().expect("a number"))
        .collect();
    let [lines, log_ns, all_ns, writes] = numbers[..] else {
        panic!("child printed {stdout:?}");
    };
    Run {
        lines,
        log_ns,
        all_ns,
        writes,
        ..Run::default()
    }
}

/// The count of `event` in `perf stat -x,` output.
fn perf_count(counts: &str, event: &str) -> u64 {
    counts
        .lines()
        .find(|l| l.split(',').nth(2) == Some(event))
        .and_then(|l| l.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Whether `perf stat` counts syscall tracepoints here.
fn perf_counts_syscalls() -> bool {
    Command::new("perf")
        .args(["stat", "-x,", "-e", "syscalls:sys_enter_write", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The median of `f` over `runs`.
fn median(runs: &[Run], f: &dyn Fn(&Run) -> f64) -> f64 {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `n` per line logged in `run`.
fn per_line(n: u64, run: &Run) -> f64 {
    n as f64 / run.lines.max(1) as f64
}

/// One row of the table: the median of each figure over `runs`, the process's CPU
/// also over `floor` (the formatter's alone).
fn print_row(sink: Sink, pattern: &str, writer: &str, runs: &[Run], perf: bool, floor: f64) {
    let log_ns = median(runs, &|r| per_line(r.log_ns, r));
    let all_ns = median(runs, &|r| per_line(r.all_ns, r));
    let over = all_ns - floor;
    let writes = median(runs, &|r| per_line(r.writes, r) * 1000.0);
    let per_1000 = |count: fn(&Run) -> u64| match perf {
        true => format!("{:.0}", median(runs, &|r| per_line(count(r), r) * 1000.0)),
        false => "-".to_owned(),
    };
    let (futex, yields) = (per_1000(|r| r.futexes), per_1000(|r| r.yields));
    let lost = match writer {
        "format-only" => "-".to_owned(),
        _ => runs.iter().map(|r| r.lost).max().unwrap_or(0).to_string(),
    };
    let sink = format!("{sink:?}").to_lowercase();
    println!(
        "{sink:<5} {pattern:<7} {writer:<19} {log_ns:>12.0} {all_ns:>12.0} {over:>12.0} {writes:>11.1} {futex:>11} {yields:>11} {lost:>5}"
    );
}

// ===== the child: one writer, one pattern =====

/// Logs the lines of `spec` (`WRITER PATTERN [LINES]`) through the writer and prints
/// `lines log_ns all_ns writes` on stdout.
fn child(spec: &str) {
    let mut words = spec.split_whitespace();
    let writer = words.next().unwrap_or("ours");
    let pattern = words.next().unwrap_or("bursts");
    let &(_, mut lines, per_arrival, gap) = PATTERNS
        .iter()
        .find(|p| p.0 == pattern)
        .expect("a pattern of PATTERNS");
    if let Some(n) = words.next() {
        lines = n.parse().expect("a line count");
    }
    let writes = Arc::new(AtomicU64::new(0));
    let out = Counted {
        out: io::stderr(),
        writes: writes.clone(),
    };
    let guard = install(writer, out);
    // First lines register the callsite and grow buffers: not measured, but written.
    log_lines(WARM_UP, 1, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(50));
    let (log_before, all_before) = (thread_cpu_ns(), process_cpu_ns());
    log_lines(lines, per_arrival, gap);
    let log_ns = thread_cpu_ns() - log_before;
    // Let the writer thread catch up (ours gathers for 20 ms) before the count.
    std::thread::sleep(Duration::from_millis(100));
    let all_ns = process_cpu_ns() - all_before;
    drop(guard);
    let writes = writes.load(Ordering::Relaxed);
    println!("{lines} {log_ns} {all_ns} {writes}");
}

/// Lines logged before the measured ones.
const WARM_UP: usize = 16;

/// Installs `writer` over `out` as the global subscriber's writer (the gateway's
/// formatter: `info`, no colours); the guard that flushes it.
fn install(writer: &str, out: Counted) -> Box<dyn Send> {
    let fmt = || {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_ansi(false)
    };
    let appender = || tracing_appender::non_blocking::NonBlockingBuilder::default();
    match writer {
        "format-only" => {
            fmt().with_writer(io::sink).init();
            Box::new(())
        }
        "ours" => {
            let (log, flush) = log_lines::BatchedLog::start(out).expect("writer thread");
            fmt().with_writer(log).init();
            Box::new(flush)
        }
        "appender" | "appender-blocking" => {
            let lossy = writer == "appender";
            let (log, guard) = appender().lossy(lossy).finish(out);
            fmt().with_writer(log).init();
            Box::new(guard)
        }
        "appender-bufwriter" => {
            let (log, guard) = appender().finish(BufWriter::with_capacity(1 << 16, out));
            fmt().with_writer(log).init();
            Box::new(guard)
        }
        "appender-periodic" => {
            let (log, guard) = appender().finish(Periodic {
                out: BufWriter::with_capacity(1 << 16, out),
                last: Instant::now(),
            });
            fmt().with_writer(log).init();
            Box::new(guard)
        }
        other => panic!("no writer {other:?}"),
    }
}

/// How a stream ended (the gateway logs it with `?`).
#[derive(Debug)]
enum End {
    Complete,
}

/// `lines` lines, `per_arrival` at a time, arrivals `gap` apart.
fn log_lines(lines: usize, per_arrival: usize, gap: Duration) {
    let start = Instant::now();
    let mut due = start;
    for i in 0..lines as u64 {
        if i % per_arrival as u64 == 0 {
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            due += gap;
        }
        // The gateway's `stream forwarded` line (`src/proxy/log.rs`).
        tracing::info!(
            key_id = "team-a",
            model_id = "us.anthropic.claude-sonnet-4-20250514-v1:0",
            operation = "converse-stream",
            frames = i,
            bytes = 18_432u64,
            input_tokens = Some(1_204u64),
            output_tokens = Some(388u64),
            latency_ms = 812u64,
            end = ?End::Complete,
            "stream forwarded"
        );
    }
}

/// Nanoseconds on the CPU of the calling thread.
fn thread_cpu_ns() -> u64 {
    // The kernel brings a running thread's figure up to date when it is scheduled.
    std::thread::yield_now();
    schedstat_ns("/proc/thread-self/schedstat")
}

/// Nanoseconds on the CPU of every thread of this process.
fn process_cpu_ns() -> u64 {
    std::thread::yield_now();
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .map(|task| schedstat_ns(task.path().join("schedstat")))
        .sum()
}

fn schedstat_ns(path: impl AsRef<std::path::Path>) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Stderr, counting the `write` calls (each one `write(2)`).
struct Counted {
    out: io::Stderr,
    writes: Arc<AtomicU64>,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A `BufWriter` flushed at most every 20 ms (what is left is written when it drops).
struct Periodic {
    out: BufWriter<Counted>,
    last: Instant,
}

impl Write for Periodic {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.last.elapsed() < Duration::from_millis(20) {
            return Ok(());
        }
        self.last = Instant::now();
        self.out.flush()
    }
}
