//! Log lines written out in batches by a thread of their own.
//!
//! A request formats its line and appends it to a shared buffer; the log
//! thread writes the buffer out once it holds [`BATCH_BYTES`] or [`LINGER`]
//! after its first line came in, whichever is first. So under load the
//! thread wakes about a hundred times a second, not once per line (which
//! tracing-appender's channel does: measured, that wake-up per request line
//! cost a 32-connection `GET /user` a quarter of its CPU). Nothing is dropped:
//! once [`MAX_BYTES`] wait to be written, writers wait for the thread. The
//! guard writes everything out when dropped.

use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Bytes that make the log thread write out at once.
pub const BATCH_BYTES: usize = 64 << 10;
/// How long the first line of a batch waits for others at most.
pub const LINGER: Duration = Duration::from_millis(10);
/// Bytes waiting to be written beyond which writers wait.
pub const MAX_BYTES: usize = 4 << 20;

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// The log thread waits here: for a first line, or for a full batch.
    more: Condvar,
    /// Writers wait here while [`MAX_BYTES`] are waiting.
    room: Condvar,
}

/// The writer the log subscriber writes each line to (cheap to clone).
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Writes out what is left and stops the log thread when dropped.
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A writer whose lines `sink` receives in batches, from a thread named
/// `ozmint-log`.
pub fn batched<W: Write + Send + 'static>(sink: W) -> std::io::Result<(LogWriter, Guard)> {
    let shared = Arc::<Shared>::default();
    let thread = std::thread::Builder::new()
        .name("ozmint-log".into())
        .spawn({
            let shared = shared.clone();
            move || run(&shared, sink)
        })?;
    Ok((
        LogWriter {
            shared: shared.clone(),
        },
        Guard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn run<W: Write>(shared: &Shared, mut sink: W) {
    let mut spare = Vec::new();
    loop {
        let mut st = shared.state.lock();
        while st.buf.is_empty() && !st.closed {
            shared.more.wait(&mut st);
        }
        if st.buf.len() < BATCH_BYTES && !st.closed {
            shared.more.wait_for(&mut st, LINGER);
        }
        let closed = st.closed;
        std::mem::swap(&mut st.buf, &mut spare);
        shared.room.notify_all();
        drop(st);
        // Nowhere to report a failing log sink: the lines are lost, the
        // server goes on.
        let _ = sink.write_all(&spare).and_then(|()| sink.flush());
        spare.clear();
        if spare.capacity() > 2 * BATCH_BYTES {
            spare.shrink_to(BATCH_BYTES);
        }
        if closed && shared.state.lock().buf.is_empty() {
            return;
        }
    }
}

impl Write for &LogWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut st = self.shared.state.lock();
        while st.buf.len() >= MAX_BYTES {
            if st.closed {
                // The log thread has stopped: nothing will write this out.
                return Ok(line.len());
            }
            self.shared.room.wait(&mut st);
        }
        let before = st.buf.len();
        st.buf.extend_from_slice(line);
        if before == 0 || (before < BATCH_BYTES && st.buf.len() >= BATCH_BYTES) {
            self.shared.more.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lends itself: no reference count is touched per line (an `Arc` clone
/// and drop per line would be two atomic writes on a cache line every
/// worker thread shares).
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = &'a LogWriter;

    fn make_writer(&'a self) -> &'a LogWriter {
        self
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.state.lock().closed = true;
        self.shared.more.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A sink that records what it got, optionally slowly.
    #[derive(Clone, Default)]
    struct Sink {
        got: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
        delay: Duration,
    }

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(self.delay);
            self.got.lock().extend_from_slice(b);
            *self.writes.lock() += 1;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("line {i:06} of the log\n"))
            .collect()
    }

    #[test]
    fn every_line_arrives_in_order_from_several_threads_and_in_batches() {
        let sink = Sink::default();
        let (w, guard) = batched(sink.clone()).unwrap();
        let all: Vec<Vec<String>> = (0..4).map(|_| lines(20_000)).collect();
        std::thread::scope(|s| {
            for (t, ls) in all.iter().enumerate() {
                let w = w.clone();
                s.spawn(move || {
                    for l in ls {
                        (&w).write_all(format!("{t} {l}").as_bytes()).unwrap();
                    }
                });
            }
        });
        drop(guard);
        let got = String::from_utf8(sink.got.lock().clone()).unwrap();
        for (t, want) in all.iter().enumerate() {
            let mine: Vec<&str> = got
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t} ")))
                .collect();
            let want: Vec<&str> = want.iter().map(|l| l.trim_end()).collect();
            assert_eq!(mine, want, "thread {t}'s lines, all and in order");
        }
        let writes = *sink.writes.lock();
        assert!(writes < 8_000, "80 000 lines in {writes} writes");
    }

    #[test]
    fn a_lone_line_is_written_without_more_coming() {
        let sink = Sink::default();
        let (w, _guard) = batched(sink.clone()).unwrap();
        (&w).write_all(b"one\n").unwrap();
        let t = Instant::now();
        while sink.got.lock().is_empty() {
            assert!(t.elapsed() < Duration::from_secs(5), "never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(*sink.got.lock(), b"one\n");
    }

    #[test]
    fn a_slow_sink_makes_writers_wait_and_loses_nothing() {
        let sink = Sink {
            delay: Duration::from_millis(20),
            ..Sink::default()
        };
        let (w, guard) = batched(sink.clone()).unwrap();
        let line = vec![b'x'; 1000];
        let n = 3 * MAX_BYTES / line.len();
        for _ in 0..n {
            (&w).write_all(&line).unwrap();
            assert!(
                w.shared.state.lock().buf.len() <= MAX_BYTES + line.len(),
                "bounded"
            );
        }
        drop(guard);
        assert_eq!(sink.got.lock().len(), n * line.len());
    }
}
