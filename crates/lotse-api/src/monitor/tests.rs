use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

use super::layer::{module_name, render_text, timestamp, FieldValue, Fields, Record};
use super::*;

fn record(level: LogLevel, message: &str, pairs: Vec<(&str, FieldValue)>) -> Record {
    Record {
        // 2024-01-02T15:04:05.123456789Z
        time: UNIX_EPOCH + Duration::new(1_704_207_845, 123_456_789),
        level,
        module: "agent".into(),
        fields: Fields {
            message: message.into(),
            pairs: pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        },
    }
}

#[test]
fn text_lines_are_hclog_lines() {
    let r = record(
        LogLevel::Info,
        "Synced service",
        vec![("service", FieldValue::Str("web1".into()))],
    );
    assert_eq!(
        r.text(),
        "2024-01-02T15:04:05.123Z [INFO]  agent: Synced service: service=web1"
    );
    let r = record(LogLevel::Error, "boom", vec![]);
    assert_eq!(r.text(), "2024-01-02T15:04:05.123Z [ERROR] agent: boom");
    let r = record(
        LogLevel::Warn,
        "check failed",
        vec![
            ("reason", FieldValue::Str("timed out \"x\"".into())),
            ("n", FieldValue::U64(3)),
            ("empty", FieldValue::Str(String::new())),
        ],
    );
    assert_eq!(
        r.text(),
        r#"2024-01-02T15:04:05.123Z [WARN]  agent: check failed: reason="timed out \"x\"" n=3 empty="""#
    );
    assert!(record(LogLevel::Debug, "m", vec![])
        .text()
        .contains(" [DEBUG] agent: m"));
    assert!(record(LogLevel::Trace, "m", vec![])
        .text()
        .contains(" [TRACE] agent: m"));
}

#[test]
fn json_lines_are_hclog_json() {
    let r = record(
        LogLevel::Info,
        "Synced service",
        vec![
            ("service", FieldValue::Str("web1".into())),
            ("port", FieldValue::I64(-1)),
            ("ok", FieldValue::Bool(true)),
        ],
    );
    assert_eq!(
        r.json(),
        r#"{"@level":"info","@message":"Synced service","@module":"agent","@timestamp":"2024-01-02T15:04:05.123456Z","ok":true,"port":-1,"service":"web1"}"#
    );
}

#[test]
fn timestamps_are_utc_dates() {
    assert_eq!(timestamp(UNIX_EPOCH, 3), "1970-01-01T00:00:00.000Z");
    // A leap day, late in the day.
    let t = UNIX_EPOCH + Duration::from_secs(951_868_799);
    assert_eq!(timestamp(t, 6), "2000-02-29T23:59:59.000000Z");
    let t = UNIX_EPOCH + Duration::from_secs(4_102_444_800);
    assert_eq!(timestamp(t, 3), "2100-01-01T00:00:00.000Z");
}

#[test]
fn modules_drop_the_crate_prefix() {
    assert_eq!(
        module_name("lotse_agent::anti_entropy"),
        "agent.anti_entropy"
    );
    assert_eq!(module_name("lotse"), "lotse");
    assert_eq!(module_name("openraft::core"), "openraft.core");
    assert_eq!(render_text(&FieldValue::Str("a\nb".into())), r#""a\nb""#);
}

#[test]
fn log_levels_parse_as_consul_accepts_them() {
    for (s, l) in [
        ("trace", LogLevel::Trace),
        ("DEBUG", LogLevel::Debug),
        ("Info", LogLevel::Info),
        ("warn", LogLevel::Warn),
        ("ERR", LogLevel::Error),
        ("error", LogLevel::Error),
    ] {
        assert_eq!(LogLevel::parse(s), Some(l), "{s}");
    }
    for bad in ["OFF", "warning", "", "fatal"] {
        assert_eq!(LogLevel::parse(bad), None, "{bad}");
    }
}

#[test]
fn listening_levels_follow_the_subscribers() {
    let hub = LogHub::new();
    assert!(!hub.enabled(LogLevel::Error));
    let info = hub.subscribe(LogLevel::Info, false);
    assert_eq!(hub.wants(LogLevel::Info), (true, false));
    assert!(!hub.enabled(LogLevel::Debug));
    let debug_json = hub.subscribe(LogLevel::Debug, true);
    assert_eq!(hub.wants(LogLevel::Debug), (false, true));
    assert_eq!(hub.wants(LogLevel::Warn), (true, true));
    drop(debug_json);
    assert!(!hub.enabled(LogLevel::Debug));
    drop(info);
    assert!(!hub.enabled(LogLevel::Error));
}

/// Events go through the real layer: a DEBUG listener sees DEBUG lines, an INFO listener
/// does not, and with nobody listening nothing is published.
#[tokio::test]
async fn the_layer_publishes_only_what_someone_listens_for() {
    let hub = LogHub::new();
    let subscriber = tracing_subscriber::registry().with(layer(hub.clone()));
    let mut text = hub.subscribe(LogLevel::Info, false);
    let mut json = hub.subscribe(LogLevel::Debug, true);
    let mut spy = hub.lines.subscribe();
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!(check = "web", "probe ran");
        tracing::info!(service = %"web1", port = 80u64, "synced service");
        tracing::trace!("nobody wants this");
    });
    let chunk = text.next_chunk().await.unwrap();
    let t = std::str::from_utf8(&chunk).unwrap();
    assert!(
        t.ends_with(" [INFO]  api.monitor.tests: synced service: service=web1 port=80\n"),
        "{t}"
    );
    assert_eq!(t.lines().count(), 1, "{t}");
    let chunk = json.next_chunk().await.unwrap();
    let lines: Vec<Value> = std::str::from_utf8(&chunk)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["@level"], "debug");
    assert_eq!(lines[0]["@message"], "probe ran");
    assert_eq!(lines[0]["check"], "web");
    assert_eq!(lines[1]["port"], 80);
    // The DEBUG line was formatted only as JSON (no text listener wanted it).
    let first = spy.try_recv().unwrap();
    assert!(first.text.is_none() && first.json.is_some());
    let second = spy.try_recv().unwrap();
    assert!(second.text.is_some() && second.json.is_some());
    assert!(spy.try_recv().is_err(), "the TRACE event was published");

    drop((text, json));
    let subscriber = tracing_subscriber::registry().with(layer(hub.clone()));
    tracing::subscriber::with_default(subscriber, || tracing::error!("after everyone left"));
    assert!(spy.try_recv().is_err());
}

#[tokio::test]
async fn a_slow_reader_loses_lines_and_is_told() {
    let hub = LogHub::new();
    let mut sub = hub.subscribe(LogLevel::Info, false);
    for i in 0..(BUFFER + 10) {
        hub.publish(LogLine {
            level: LogLevel::Info,
            text: Some(format!("line {i}")),
            json: None,
        });
    }
    let chunk = sub.next_chunk().await.unwrap();
    let t = std::str::from_utf8(&chunk).unwrap();
    assert!(
        t.starts_with("Monitor dropped 10 logs during monitor request\nline 10\n"),
        "{t}"
    );
    let mut all = t.lines().count();
    while all < BUFFER + 1 {
        all += std::str::from_utf8(&sub.next_chunk().await.unwrap())
            .unwrap()
            .lines()
            .count();
    }
    assert_eq!(all, BUFFER + 1);
}

/// The binary's arrangement: stdout at INFO through its own per-layer filter, the monitor
/// beside it. A DEBUG listener still gets DEBUG lines, and stdout does not.
#[tokio::test]
async fn the_monitor_sees_debug_while_stdout_logs_at_info() {
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::Layer as _;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let hub = LogHub::new();
    let stdout = Sink::default();
    let writer = stdout.clone();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_filter(LevelFilter::INFO),
        )
        .with(layer(hub.clone()));
    let mut sub = hub.subscribe(LogLevel::Debug, false);
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!("only the monitor sees this");
        tracing::info!("everyone sees this");
    });
    let chunk = sub.next_chunk().await.unwrap();
    let t = std::str::from_utf8(&chunk).unwrap();
    assert!(
        t.contains("[DEBUG] api.monitor.tests: only the monitor sees this"),
        "{t}"
    );
    assert!(
        t.contains("[INFO]  api.monitor.tests: everyone sees this"),
        "{t}"
    );
    let out = String::from_utf8(stdout.0.lock().unwrap().clone()).unwrap();
    assert!(
        out.contains("everyone sees this") && !out.contains("only the monitor"),
        "{out}"
    );
}

/// Over a real connection: the headers arrive before any line, each line as it is logged,
/// and a client that goes away ends its subscription.
#[tokio::test]
async fn the_response_streams_lines_as_they_come() {
    use tokio::io::AsyncWriteExt;

    let hub = LogHub::new();
    let h = hub.clone();
    let app = axum::Router::new().route(
        "/m",
        axum::routing::get(move || {
            let h = h.clone();
            async move { monitor_response(&h, LogLevel::Info, &crate::params::Params::default()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /m HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = read_some(&mut conn, &mut buf).await;
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(hub.enabled(LogLevel::Info));

    hub.publish(LogLine {
        level: LogLevel::Info,
        text: Some("first line".into()),
        json: None,
    });
    let n = read_some(&mut conn, &mut buf).await;
    let chunk = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(chunk.contains("first line\n"), "{chunk}");

    drop(conn);
    // The server notices the closed connection at its next write and drops the subscription.
    for _ in 0..50 {
        hub.publish(LogLine {
            level: LogLevel::Info,
            text: Some("into the void".into()),
            json: None,
        });
        if !hub.enabled(LogLevel::Info) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the subscription outlived its client");
}

async fn read_some(conn: &mut tokio::net::TcpStream, buf: &mut [u8]) -> usize {
    use tokio::io::AsyncReadExt;
    tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(buf))
        .await
        .expect("nothing arrived within 5 s")
        .unwrap()
}
