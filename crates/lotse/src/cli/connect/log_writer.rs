//! The proxy's log sink: lines go to a queue and a thread of their own writes them, so a slow
//! reader of stderr (a full pipe, a stalled log shipper) never stalls the runtime that
//! forwards requests. A sidecar runs one worker thread: a blocking `write` there would stop
//! every connection it serves, for the sake of a log line.
//!
//! The queue is bounded by bytes ([`QUEUE_BYTES`]) and takes memory only for what it holds.
//! When it is full a line is dropped, not waited for; the writer thread reports how many were
//! dropped before it writes on, and whenever it catches up. [`LogGuard`] writes what is queued
//! when the proxy exits, waiting at most [`EXIT_WAIT`] for a reader that has stopped reading.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::writer::EitherWriter;
use tracing_subscriber::fmt::MakeWriter;

/// Bytes of log lines queued before new lines are dropped.
pub const QUEUE_BYTES: usize = 4 << 20;
/// How long an exiting proxy waits for its queued lines to be written.
pub const EXIT_WAIT: Duration = Duration::from_secs(2);

enum Msg {
    Line(Vec<u8>),
    /// Write what came before, then stop (the subscriber, being global, never lets go of its
    /// sender, so the queue never closes by itself).
    Stop,
}

/// The queue's sending side, given to the subscriber (see [`ProxyLog`]).
pub struct QueueWriter {
    tx: Sender<Msg>,
    /// Bytes sent and not yet written.
    queued: Arc<AtomicUsize>,
    limit: usize,
    dropped: Arc<AtomicU64>,
}

/// Writes what is still queued, then stops the writer thread, when dropped.
pub struct LogGuard {
    tx: Sender<Msg>,
    /// Told when the writer thread has written everything and stopped.
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

/// A writer in front of `sink` holding at most `limit` bytes, with its writer thread and the
/// guard that flushes it; an error if the thread cannot be started.
pub fn spawn<W: Write + Send + 'static>(
    sink: W,
    limit: usize,
) -> io::Result<(QueueWriter, LogGuard)> {
    let (tx, rx) = mpsc::channel();
    let (done_tx, done) = mpsc::sync_channel(1);
    let queued = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let (q, d) = (queued.clone(), dropped.clone());
    let thread = std::thread::Builder::new()
        .name("lotse-log".into())
        .spawn(move || {
            drain(rx, sink, &q, &d);
            let _ = done_tx.send(());
        })?;
    let writer = QueueWriter {
        tx: tx.clone(),
        queued,
        limit,
        dropped,
    };
    let guard = LogGuard {
        tx,
        done,
        thread: Some(thread),
    };
    Ok((writer, guard))
}

fn drain<W: Write>(rx: Receiver<Msg>, sink: W, queued: &AtomicUsize, dropped: &AtomicU64) {
    let mut out = io::BufWriter::new(sink);
    loop {
        // Bursts go out in large writes; the buffer is written out whenever the queue runs
        // dry, so a quiet proxy's lines are not held back.
        let msg = match rx.try_recv() {
            Ok(m) => m,
            Err(TryRecvError::Empty) => {
                report_drops(&mut out, dropped);
                let _ = out.flush();
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        let Msg::Line(line) = msg else { break };
        report_drops(&mut out, dropped);
        let _ = out.write_all(&line);
        queued.fetch_sub(line.len(), Relaxed);
    }
    report_drops(&mut out, dropped);
    let _ = out.flush();
}

/// One JSON line, in the subscriber's shape, saying how many lines were lost since the last.
fn report_drops<W: Write>(out: &mut W, dropped: &AtomicU64) {
    let lost = dropped.swap(0, Relaxed);
    if lost > 0 {
        let _ = writeln!(
            out,
            r#"{{"level":"WARN","fields":{{"message":"log lines dropped: the log's reader is slower than the proxy","dropped":{lost}}},"target":"lotse::log"}}"#
        );
    }
}

impl QueueWriter {
    fn send(&self, buf: &[u8]) {
        let before = self.queued.fetch_add(buf.len(), Relaxed);
        if before + buf.len() > self.limit {
            self.queued.fetch_sub(buf.len(), Relaxed);
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        if self.tx.send(Msg::Line(buf.to_vec())).is_err() {
            // The writer thread is gone (the proxy is exiting): nothing to write to.
            self.queued.fetch_sub(buf.len(), Relaxed);
        }
    }
}

/// One event's writer: a borrow of the queue (the subscriber makes one per event).
pub struct LineWriter<'a>(&'a QueueWriter);

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self)
    }
}

/// The proxy's log writer: the queue, or stderr in place when its thread could not start.
pub enum ProxyLog {
    Queue(QueueWriter),
    Stderr,
}

impl<'a> MakeWriter<'a> for ProxyLog {
    type Writer = EitherWriter<LineWriter<'a>, io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        match self {
            ProxyLog::Queue(q) => EitherWriter::A(q.make_writer()),
            ProxyLog::Stderr => EitherWriter::B(io::stderr()),
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // Lines still queued are worth a short wait at exit, not a hang: a reader that stopped
        // reading would otherwise keep the proxy from exiting.
        let _ = self.tx.send(Msg::Stop);
        if self.done.recv_timeout(EXIT_WAIT).is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};
    use std::time::Instant;

    #[derive(Default)]
    struct GateState {
        open: bool,
        /// A write is waiting for the gate to open.
        blocked: bool,
        written: Vec<u8>,
    }

    /// A sink that blocks every write until opened, as a full pipe does.
    #[derive(Clone, Default)]
    struct Gate {
        state: Arc<(Mutex<GateState>, Condvar)>,
    }

    impl Gate {
        fn open(&self) {
            let (m, cv) = &*self.state;
            m.lock().expect("lock").open = true;
            cv.notify_all();
        }
        fn wait_blocked(&self) {
            let (m, cv) = &*self.state;
            let mut st = m.lock().expect("lock");
            while !st.blocked {
                st = cv.wait(st).expect("wait");
            }
        }
        fn written(&self) -> String {
            String::from_utf8(self.state.0.lock().expect("lock").written.clone()).expect("utf8")
        }
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (m, cv) = &*self.state;
            let mut st = m.lock().expect("lock");
            while !st.open {
                st.blocked = true;
                cv.notify_all();
                st = cv.wait(st).expect("wait");
            }
            st.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_reader_never_blocks_a_writer_and_drops_are_reported() {
        let sink = Gate::default();
        // Room for four lines of 7 bytes.
        let (writer, guard) = spawn(sink.clone(), 28).expect("spawn");
        let mut w = writer.make_writer();
        // The writer thread takes the first line and blocks writing it out.
        w.write_all(b"line 0\n").expect("write");
        sink.wait_blocked();
        // 4 more fill the queue and 15 are dropped; none of the writes waits.
        let started = Instant::now();
        for i in 1..20 {
            w.write_all(format!("line {i}\n").as_bytes())
                .expect("write");
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "writes did not wait"
        );
        assert_eq!(
            sink.written(),
            "",
            "nothing written while the reader is stalled"
        );
        // Dropped at once: the guard writes out what is queued before the thread stops.
        sink.open();
        drop(guard);
        let out = sink.written();
        let lines: Vec<&str> = out.lines().collect();
        let kept: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("line "))
            .collect();
        assert_eq!(
            kept,
            ["line 0", "line 1", "line 2", "line 3", "line 4"],
            "{out}"
        );
        let report = lines
            .iter()
            .find(|l| l.contains("log lines dropped"))
            .expect("the drop is reported");
        assert!(report.contains(r#""dropped":15"#), "{report}");
        let v: serde_json::Value = serde_json::from_str(report).expect("the report is JSON");
        assert_eq!(v["level"], "WARN");
    }

    #[test]
    fn a_reader_that_never_reads_again_delays_exit_only_briefly() {
        let sink = Gate::default();
        let (writer, guard) = spawn(sink.clone(), 20).expect("spawn");
        let mut w = writer.make_writer();
        w.write_all(b"stuck\n").expect("write");
        sink.wait_blocked();
        for _ in 0..5 {
            w.write_all(b"queued\n").expect("write");
        }
        let started = Instant::now();
        drop(guard);
        let waited = started.elapsed();
        assert!(waited >= EXIT_WAIT, "it waited for the lines: {waited:?}");
        assert!(
            waited < EXIT_WAIT + Duration::from_secs(2),
            "and then gave up: {waited:?}"
        );
        // Let the parked writer thread finish.
        sink.open();
    }

    #[test]
    fn lines_come_out_whole_and_in_order() {
        let sink = Gate::default();
        sink.open();
        let (writer, guard) = spawn(sink.clone(), QUEUE_BYTES).expect("spawn");
        let mut w = writer.make_writer();
        for i in 0..1000 {
            w.write_all(format!("{{\"n\":{i}}}\n").as_bytes())
                .expect("write");
        }
        drop(guard);
        let out = sink.written();
        let got: Vec<String> = out.lines().map(str::to_string).collect();
        let want: Vec<String> = (0..1000).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert_eq!(got, want);
    }
}
