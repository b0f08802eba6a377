//! Log lines written off the request path: a thread that formats a line (tracing's
//! formatter, into its own thread-local buffer) appends it to a bounded in-memory
//! batch under an uncontended lock, and a writer thread of its own writes the batch
//! out, one `write(2)` for every line of the last [`GATHER`] instead of one per line.
//!
//! ```text
//! request thread ── format ──► lock, append (no syscall; the first line of a batch
//!                              │              wakes the writer: one futex wake a batch)
//!                              ▼
//!                   batch (at most MAX_BATCHED bytes; past that lines are dropped and
//!                          counted, and the count is logged with the next batch)
//!                              ▼
//! writer thread ── waits GATHER, swaps the batch for its spare buffer ──► write(2)
//! ```
//!
//! Nothing is lost on a clean exit: dropping the [`Flush`] guard writes what is left
//! and joins the writer thread. A writer stuck in `write(2)` (a pipe nobody reads) does
//! not hold the exit up for more than [`EXIT_WAIT`].

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the writer waits after the first line of a batch for more lines to join it.
const GATHER: Duration = Duration::from_millis(20);

/// The most bytes held for the writer (a line is dropped, and counted, past it).
const MAX_BATCHED: usize = 1 << 20;

/// How long a dropped [`Flush`] waits for the writer to write what is left: ample for
/// a megabyte to any file, pipe or terminal that is read, and well inside a service
/// manager's stop timeout when the reader is gone.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// What the request threads and the writer thread share.
struct Shared {
    state: Mutex<Batch>,
    /// Signalled when a batch gets its first line, and on close.
    wake: Condvar,
    /// Signalled when the writer thread has ended.
    ended: Condvar,
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Lines dropped since the last write because the batch was full.
    dropped: u64,
    closed: bool,
    /// The writer thread has returned (or panicked).
    ended: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Batch> {
        // A thread that panicked while appending left whole lines or none behind.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `MakeWriter` of the batched log: each line is appended to the batch. Cheap to
/// clone.
#[derive(Clone)]
pub(crate) struct BatchedLog {
    shared: Arc<Shared>,
}

/// Writes out what is left, and stops the writer thread, when dropped.
pub(crate) struct Flush {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    /// At most this long (see [`EXIT_WAIT`]).
    exit_wait: Duration,
}

impl BatchedLog {
    /// A batched log written to `out` by a thread of its own, and the guard that
    /// flushes it.
    ///
    /// # Errors
    ///
    /// The thread could not be started.
    pub(crate) fn start<W: Write + Send + 'static>(out: W) -> io::Result<(BatchedLog, Flush)> {
        Self::start_waiting(out, EXIT_WAIT)
    }

    /// [`BatchedLog::start`] with a guard that waits at most `exit_wait`.
    fn start_waiting<W: Write + Send + 'static>(
        out: W,
        exit_wait: Duration,
    ) -> io::Result<(BatchedLog, Flush)> {
        let log = BatchedLog {
            shared: Arc::new(Shared {
                state: Mutex::new(Batch::default()),
                wake: Condvar::new(),
                ended: Condvar::new(),
            }),
        };
        let writer = {
            let shared = log.shared.clone();
            std::thread::Builder::new()
                .name("log-writer".to_owned())
                .spawn(move || {
                    let _ended = Ended(&shared);
                    write_batches(&shared, out);
                })?
        };
        let flush = Flush {
            shared: log.shared.clone(),
            writer: Some(writer),
            exit_wait,
        };
        Ok((log, flush))
    }

    /// Appends one line (tracing's formatter hands over a whole line at a time).
    fn append(&self, line: &[u8]) {
        let mut batch = self.shared.lock();
        if batch.bytes.len().saturating_add(line.len()) > MAX_BATCHED {
            batch.dropped = batch.dropped.saturating_add(1);
            return;
        }
        let first = batch.bytes.is_empty();
        batch.bytes.extend_from_slice(line);
        drop(batch);
        if first {
            self.shared.wake.notify_one();
        }
    }
}

/// The writer thread: waits for a first line, gathers for [`GATHER`] (or until
/// closed), writes the batch; until closed with nothing left.
fn write_batches<W: Write>(shared: &Shared, mut out: W) {
    let mut spare = Vec::new();
    loop {
        let mut batch = shared.lock();
        while batch.bytes.is_empty() && batch.dropped == 0 && !batch.closed {
            batch = shared.wake.wait(batch).unwrap_or_else(|p| p.into_inner());
        }
        if !batch.closed {
            batch = shared
                .wake
                .wait_timeout_while(batch, GATHER, |b| !b.closed)
                .map_or_else(|p| p.into_inner().0, |(b, _)| b);
        }
        std::mem::swap(&mut batch.bytes, &mut spare);
        let dropped = std::mem::take(&mut batch.dropped);
        let closed = batch.closed;
        drop(batch);
        if dropped > 0 {
            let _ = writeln!(
                out,
                "{dropped} log lines dropped: more than {MAX_BATCHED} bytes waited to be written"
            );
        }
        // A log that cannot be written (a closed stderr) is not worth stopping for.
        let _ = out.write_all(&spare);
        let _ = out.flush();
        spare.clear();
        if closed && shared.lock().bytes.is_empty() {
            return;
        }
    }
}

/// Marks the writer thread ended when dropped, however it ends.
struct Ended<'a>(&'a Shared);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.0.lock().ended = true;
        self.0.ended.notify_all();
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        let mut batch = self.shared.lock();
        batch.closed = true;
        self.shared.wake.notify_one();
        let (batch, _) = self
            .shared
            .ended
            .wait_timeout_while(batch, self.exit_wait, |b| !b.ended)
            .unwrap_or_else(|p| p.into_inner());
        let ended = batch.ended;
        drop(batch);
        // A writer still blocked in `write(2)` is left behind: the process is exiting.
        if let (true, Some(writer)) = (ended, self.writer.take()) {
            let _ = writer.join();
        }
    }
}

/// One line's writer (see [`BatchedLog::append`]).
pub(crate) struct Line<'a>(&'a BatchedLog);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.append(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedLog {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test reads back, counting the writes it took.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut s = self.0.lock().unwrap();
            s.0.extend_from_slice(buf);
            s.1 += 1;
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A log whose writer is not started: the test runs it, on its own thread.
    fn unstarted() -> BatchedLog {
        BatchedLog {
            shared: Arc::new(Shared {
                state: Mutex::new(Batch::default()),
                wake: Condvar::new(),
                ended: Condvar::new(),
            }),
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (log, flush) = BatchedLog::start(sink.clone()).unwrap();
        let mut expected = Vec::new();
        for i in 0..1000 {
            let line = format!("line {i}\n");
            tracing_subscriber::fmt::MakeWriter::make_writer(&log)
                .write_all(line.as_bytes())
                .unwrap();
            expected.extend_from_slice(line.as_bytes());
        }
        drop(flush);
        assert_eq!(sink.0.lock().unwrap().0, expected);
    }

    #[test]
    fn lines_waiting_together_go_out_in_one_write() {
        let sink = Sink::default();
        let log = unstarted();
        for i in 0..100 {
            log.append(format!("line {i}\n").as_bytes());
        }
        log.shared.lock().closed = true;
        write_batches(&log.shared, sink.clone());
        let (written, writes) = sink.0.lock().unwrap().clone();
        assert_eq!(writes, 1);
        assert!(written.ends_with(b"line 99\n"));
    }

    /// A sink whose first write never returns (a pipe nobody reads).
    struct Stuck;

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            loop {
                std::thread::park();
            }
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_writer_stuck_in_write_does_not_hold_the_exit_up() {
        let (log, flush) = BatchedLog::start_waiting(Stuck, Duration::from_millis(50)).unwrap();
        log.append(b"never written\n");
        // Returns (with the writer left behind) instead of joining it forever.
        drop(flush);
        assert!(!log.shared.lock().ended);
    }

    #[test]
    fn a_full_batch_drops_lines_and_says_how_many() {
        let sink = Sink::default();
        let log = unstarted();
        let big = vec![b'x'; MAX_BATCHED - 1];
        log.append(&big);
        log.append(b"does not fit\n");
        log.append(b"nor this\n");
        log.shared.lock().closed = true;
        write_batches(&log.shared, sink.clone());
        let written = String::from_utf8(sink.0.lock().unwrap().0.clone()).unwrap();
        let (first, rest) = written.split_once('\n').unwrap();
        assert!(first.starts_with("2 log lines dropped"), "{first}");
        assert_eq!(rest.as_bytes(), big.as_slice());
    }
}
