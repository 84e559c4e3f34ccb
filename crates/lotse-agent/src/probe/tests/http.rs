//! HTTP(S) probe against hyper servers and raw misbehaving peers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::servers::{closed_tcp_addr, http_server, raw_server, respond, tls_acceptor, Handler};
use super::{assert_prompt, assert_result, QUICK, SHORT};
use crate::probe::{http, validate_http_url, HttpProbe, Status, OUTPUT_LIMIT};

fn probe(url: String) -> HttpProbe {
    HttpProbe {
        url,
        ..HttpProbe::default()
    }
}

/// Answers `/code/<n>` with status n, `/start` with a redirect to `/final`, `/loop` with a
/// redirect to itself, anything else with 200 and what it saw of the request.
fn router() -> Handler {
    Arc::new(|seen| {
        let path = seen.path.as_str();
        if let Some(code) = path.strip_prefix("/code/") {
            return respond(code.parse().unwrap_or(500), format!("body of {code}"));
        }
        if path == "/start" || path == "/loop" {
            let to = if path == "/start" { "/final" } else { "/loop" };
            let mut r = respond(302, "moved");
            r.headers_mut()
                .insert("location", to.parse().expect("static header"));
            return r;
        }
        let header = |n: &str| {
            let values: Vec<_> = seen
                .headers
                .get_all(n)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            values.join(",")
        };
        respond(
            200,
            format!(
                "{} {} host={} ua={} accept={} x={} len={} body={} sni={} h2={}",
                seen.method,
                seen.path,
                header("host"),
                header("user-agent"),
                header("accept"),
                header("x-check"),
                header("content-length"),
                String::from_utf8_lossy(&seen.body),
                seen.sni.unwrap_or_default(),
                seen.h2,
            ),
        )
    })
}

#[tokio::test]
async fn status_codes_map_to_passing_warning_critical_with_consuls_output() {
    let addr = http_server(None, router()).await;
    let r = http(&probe(format!("http://{addr}/code/200")), QUICK).await;
    assert_eq!(
        r.output,
        format!("HTTP GET http://{addr}/code/200: 200 OK Output: body of 200")
    );
    assert_eq!(r.status, Status::Passing);

    let r = http(&probe(format!("http://{addr}/code/204")), QUICK).await;
    assert_result(&r, Status::Passing, "204 No Content Output: ");
    let r = http(&probe(format!("http://{addr}/code/429")), QUICK).await;
    assert_result(
        &r,
        Status::Warning,
        ": 429 Too Many Requests Output: body of 429",
    );
    let r = http(&probe(format!("http://{addr}/code/503")), QUICK).await;
    assert_result(
        &r,
        Status::Critical,
        ": 503 Service Unavailable Output: body of 503",
    );
    let r = http(&probe(format!("http://{addr}/code/404")), QUICK).await;
    assert_result(&r, Status::Critical, "404 Not Found");
}

#[tokio::test]
async fn sends_consuls_default_headers_method_body_and_multi_value_headers() {
    let addr = http_server(None, router()).await;
    let r = http(&probe(format!("http://{addr}/echo")), QUICK).await;
    assert_result(
        &r,
        Status::Passing,
        &format!("GET /echo host={addr} ua=Consul Health Check accept=text/plain, text/*, */* x= len= body="),
    );

    let p = HttpProbe {
        method: "PUT".into(),
        headers: vec![
            ("X-Check".into(), "a".into()),
            ("x-check".into(), "b".into()),
            ("User-Agent".into(), "mine".into()),
            ("Host".into(), "virtual.example".into()),
        ],
        body: "{\"ok\":true}".into(),
        ..probe(format!("http://{addr}/echo"))
    };
    let r = http(&p, QUICK).await;
    assert_result(&r, Status::Passing, "HTTP PUT http://");
    assert_result(
        &r,
        Status::Passing,
        "PUT /echo host=virtual.example ua=mine accept=text/plain, text/*, */* x=a,b len=11 body={\"ok\":true}",
    );
}

#[tokio::test]
async fn follows_redirects_unless_disabled_and_stops_after_ten() {
    let addr = http_server(None, router()).await;
    let start = format!("http://{addr}/start");
    let r = http(&probe(start.clone()), QUICK).await;
    assert_result(
        &r,
        Status::Passing,
        &format!("HTTP GET {start}: 200 OK Output: GET /final"),
    );

    let p = HttpProbe {
        disable_redirects: true,
        ..probe(start.clone())
    };
    let r = http(&p, QUICK).await;
    assert_eq!(
        r.output,
        format!("HTTP GET {start}: 302 Found Output: moved")
    );
    assert_eq!(r.status, Status::Critical);

    let r = http(&probe(format!("http://{addr}/loop")), QUICK).await;
    assert_result(
        &r,
        Status::Critical,
        &format!("Get \"http://{addr}/loop\": stopped after 10 redirects"),
    );
}

#[tokio::test]
async fn a_huge_body_keeps_only_its_last_bytes() {
    const SIZE: usize = 1 << 20;
    let addr = raw_server(|mut s: TcpStream| async move {
        let mut req = [0u8; 1024];
        let _ = s.read(&mut req).await;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n\r\n");
        let mut body = vec![b'x'; SIZE - 4];
        body.extend_from_slice(b"TAIL");
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(&body).await;
    })
    .await;
    let r = http(&probe(format!("http://{addr}/")), QUICK).await;
    assert_result(&r, Status::Passing, "200 OK Output: xxx");
    let body = r
        .output
        .split_once("Output: ")
        .map(|(_, b)| b)
        .unwrap_or_default();
    assert_eq!(body.len(), OUTPUT_LIMIT);
    assert!(body.ends_with("xxTAIL"));
}

#[tokio::test]
async fn a_peer_that_never_answers_times_out_as_go_reports_it() {
    let addr = raw_server(|s: TcpStream| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
    .await;
    let started = Instant::now();
    let r = http(&probe(format!("http://{addr}/slow")), SHORT).await;
    assert_prompt(started, SHORT);
    let want = format!(
        "Get \"http://{addr}/slow\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    );
    assert_eq!((r.status, r.output), (Status::Critical, want));
}

#[tokio::test]
async fn a_body_that_never_ends_is_cut_at_the_deadline_and_the_status_counts() {
    let addr = raw_server(|mut s: TcpStream| async move {
        let mut req = [0u8; 1024];
        let _ = s.read(&mut req).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let started = Instant::now();
    let r = http(&probe(format!("http://{addr}/")), SHORT).await;
    assert_prompt(started, SHORT);
    assert_result(&r, Status::Passing, "200 OK Output: first");
}

#[tokio::test]
async fn refused_and_garbage_are_critical_with_the_error() {
    let closed = closed_tcp_addr().await;
    let r = http(&probe(format!("http://{closed}/")), QUICK).await;
    let want = format!("Get \"http://{closed}/\": dial tcp {closed}: connect: connection refused");
    assert_eq!((r.status, r.output), (Status::Critical, want));

    let addr = raw_server(|mut s: TcpStream| async move {
        let mut req = [0u8; 1024];
        let _ = s.read(&mut req).await;
        let _ = s.write_all(b"garbage\r\n\r\n").await;
    })
    .await;
    let r = http(&probe(format!("http://{addr}/")), QUICK).await;
    assert_result(&r, Status::Critical, &format!("Get \"http://{addr}/\": "));
    assert!(
        r.output.to_lowercase().contains("invalid") || r.output.contains("parse"),
        "{}",
        r.output
    );
}

#[tokio::test]
async fn https_with_a_self_signed_cert_needs_skip_verify() {
    let addr = http_server(Some(tls_acceptor(&[b"h2", b"http/1.1"])), router()).await;
    let url = format!("https://{addr}/echo");
    let r = http(&probe(url.clone()), QUICK).await;
    assert_result(
        &r,
        Status::Critical,
        "tls: failed to verify certificate: x509: certificate signed by unknown authority",
    );
    assert!(
        r.output.starts_with(&format!("Get \"{url}\": ")),
        "{}",
        r.output
    );

    let p = HttpProbe {
        tls_skip_verify: true,
        tls_server_name: "check.example".into(),
        ..probe(url.clone())
    };
    let r = http(&p, QUICK).await;
    // ALPN picked HTTP/2, as Go's transport would; SNI is the configured server name.
    assert_result(
        &r,
        Status::Passing,
        &format!("HTTP GET {url}: 200 OK Output: GET /echo"),
    );
    assert_result(&r, Status::Passing, "sni=check.example h2=true");

    let h1_only = http_server(Some(tls_acceptor(&[b"http/1.1"])), router()).await;
    let p = HttpProbe {
        tls_skip_verify: true,
        ..probe(format!("https://{h1_only}/echo"))
    };
    assert_result(&http(&p, QUICK).await, Status::Passing, "h2=false");
}

#[tokio::test]
async fn bad_definitions_are_critical_and_validation_rejects_them() {
    let r = http(
        &HttpProbe {
            method: "GE T".into(),
            ..probe("http://127.0.0.1:1/".into())
        },
        QUICK,
    )
    .await;
    assert_eq!(r.output, "net/http: invalid method \"GE T\"");
    let r = http(&probe("ftp://127.0.0.1/".into()), QUICK).await;
    let want = "Get \"ftp://127.0.0.1/\": unsupported protocol scheme \"ftp\"";
    assert_eq!((r.status, r.output.as_str()), (Status::Critical, want));
    let r = http(&probe("http://bad host/".into()), QUICK).await;
    assert_result(&r, Status::Critical, "parse \"http://bad host/\": ");

    assert!(validate_http_url("http://127.0.0.1:8080/health?x=1").is_ok());
    assert!(validate_http_url("https://[::1]/").is_ok());
    for bad in ["", "not a url", "/health", "ftp://host/", "http:///path"] {
        assert!(validate_http_url(bad).is_err(), "{bad:?} accepted");
    }
}
