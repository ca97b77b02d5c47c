//! Telegram alerts end to end: the real sender against a loopback HTTP/1 server that records
//! every request and answers from a per-test script. Waits are bounded polls; nothing asserts on
//! elapsed time.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use keel::alerts::{
    Alert, AlertError, AlertStats, Alerter, BotToken, MAX_MESSAGE_CHARS, SendFailure,
    TRUNCATION_MARKER, TelegramConfig, failure_line, spawn, transport_error_text,
};
use serde_json::Value;
use tokio::sync::watch;

const TOKEN: &str = "123456:AAE-secret_token-xyz";
const PATIENCE: Duration = Duration::from_secs(10);
const OK_BODY: &str =
    r#"{"ok":true,"result":{"message_id":1,"chat":{"id":42},"date":0,"text":"x"}}"#;
const TOO_MANY: &str = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#;
const SERVER_ERROR: &str = r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#;
const CHAT_NOT_FOUND: &str =
    r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#;
const UNAUTHORIZED: &str = r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#;

// ---------------------------------------------------------------------------------------------
// Loopback Bot API server

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Recorded {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{:?}: {e}", self.body))
    }

    fn text(&self) -> String {
        self.json()["text"].as_str().expect("text").to_string()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One scripted answer; once the script is used up every request gets 200 `OK_BODY`.
#[derive(Clone)]
enum Reply {
    Json(u16, &'static str),
    /// 200 `OK_BODY` once [`Server::release`] is called.
    HeldOk,
}

struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    release: watch::Sender<bool>,
}

impl Server {
    async fn start(script: Vec<Reply>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (release, released) = watch::channel(false);
        let recorded = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (recorded, script, released) =
                    (recorded.clone(), script.clone(), released.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        answer(req, recorded.clone(), script.clone(), released.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server {
            addr,
            requests,
            release,
        }
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests").clone()
    }

    fn texts(&self) -> Vec<String> {
        self.requests().iter().map(Recorded::text).collect()
    }

    fn release(&self) {
        let _ = self.release.send(true);
    }
}

async fn answer(
    req: Request<Incoming>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    mut released: watch::Receiver<bool>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    recorded.lock().expect("recorded").push(Recorded {
        method,
        path,
        headers,
        body,
    });
    let reply = script
        .lock()
        .expect("script")
        .pop_front()
        .unwrap_or(Reply::Json(200, OK_BODY));
    let (status, body) = match reply {
        Reply::Json(status, body) => (status, body),
        Reply::HeldOk => {
            let _ = released.wait_for(|r| *r).await;
            (200, OK_BODY)
        }
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = StatusCode::from_u16(status).expect("status");
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn config(base_url: String) -> TelegramConfig {
    let mut c = TelegramConfig::new("42", BotToken::new(TOKEN), "keel paper btc-sma");
    c.base_url = base_url;
    c.min_interval = Duration::from_millis(10);
    c.max_attempts = 3;
    c.queue = 16;
    c
}

/// Polls `cond` every 10 ms; panics with `what` after [`PATIENCE`].
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn stats_are(alerter: &Alerter, sent: u64, failed: u64) -> impl FnMut() -> bool + '_ {
    move || {
        let s = alerter.stats();
        s.sent == sent && s.failed == failed
    }
}

fn fill(client_id: u64) -> Alert {
    Alert::Fill {
        symbol: "BTCUSDT".into(),
        side: "BUY".into(),
        qty: "0.015".into(),
        price: "64123.5".into(),
        fee: "0.96 USDT".into(),
        client_id,
        mode: "paper".into(),
    }
}

fn note(i: usize) -> Alert {
    Alert::Error {
        context: "test".into(),
        message: format!("message number {i}"),
    }
}

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// Delivery

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_fill_as_json_post_to_the_bot_path() {
    let server = Server::start(vec![]).await;
    let (alerter, _task) = spawn(
        config(server.base_url()),
        &tokio::runtime::Handle::current(),
    );
    alerter.send(fill(7));
    wait_for("one delivery", stats_are(&alerter, 1, 0)).await;

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["chat_id"], "42");
    assert_eq!(body["disable_web_page_preview"], true);
    assert!(body.get("parse_mode").is_none(), "{body}");
    let text = r.text();
    for field in [
        "keel paper btc-sma",
        "BTCUSDT",
        "BUY",
        "0.015",
        "64123.5",
        "0.96 USDT",
        "7",
        "paper",
    ] {
        assert!(text.contains(field), "{field:?} missing from {text:?}");
    }
    assert_eq!(text, fill(7).render("keel paper btc-sma"));
    assert_eq!(
        alerter.stats(),
        AlertStats {
            sent: 1,
            dropped: 0,
            failed: 0
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_alerts_in_the_order_they_were_sent() {
    let server = Server::start(vec![]).await;
    let (alerter, _task) = spawn(
        config(server.base_url()),
        &tokio::runtime::Handle::current(),
    );
    for i in 0..8 {
        alerter.send(note(i));
    }
    wait_for("eight deliveries", stats_are(&alerter, 8, 0)).await;
    let expected: Vec<String> = (0..8)
        .map(|i| note(i).render("keel paper btc-sma"))
        .collect();
    assert_eq!(server.texts(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honours_retry_after_on_429_then_delivers_once() {
    let server = Server::start(vec![Reply::Json(429, TOO_MANY)]).await;
    let (alerter, _task) = spawn(
        config(server.base_url()),
        &tokio::runtime::Handle::current(),
    );
    alerter.send(fill(1));
    wait_for("delivery after the 429", stats_are(&alerter, 1, 0)).await;
    let texts = server.texts();
    assert_eq!(texts.len(), 2, "one refused request, one delivered");
    assert_eq!(texts[0], texts[1]);
    assert_eq!(alerter.stats().sent, 1);
}

const TOO_MANY_LONG: &str = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3600","parameters":{"retry_after":3600}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_the_retry_after_telegram_gives_rather_than_its_own_backoff() {
    let server = Server::start(vec![Reply::Json(429, TOO_MANY_LONG)]).await;
    let (alerter, task) = spawn(
        config(server.base_url()),
        &tokio::runtime::Handle::current(),
    );
    alerter.send(note(0));
    wait_for("the refused request", || server.requests().len() == 1).await;
    // The own backoff here would be 100 ms; the retry must wait Telegram's hour instead.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.requests().len(), 1, "retried before retry_after");
    let stats = tokio::time::timeout(PATIENCE, task.shutdown(Duration::from_millis(100)))
        .await
        .expect("shutdown ends");
    assert_eq!(stats.failed, 1);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_on_5xx_after_max_attempts_and_sends_later_alerts() {
    let server = Server::start(vec![Reply::Json(500, SERVER_ERROR); 3]).await;
    let (alerter, _task) = spawn(
        config(server.base_url()),
        &tokio::runtime::Handle::current(),
    );
    alerter.send(note(1));
    alerter.send(note(2));
    wait_for("one failure then one delivery", stats_are(&alerter, 1, 1)).await;

    let first = note(1).render("keel paper btc-sma");
    let second = note(2).render("keel paper btc-sma");
    assert_eq!(
        server.texts(),
        vec![first.clone(), first.clone(), first, second]
    );
    let line = alerter.last_failure().expect("failure recorded");
    assert!(line.contains("3 attempt"), "{line}");
    assert!(line.contains("500"), "{line}");
    assert!(!line.contains(TOKEN), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn does_not_retry_a_400_and_reports_telegrams_description() {
    let server = Server::start(vec![Reply::Json(400, CHAT_NOT_FOUND)]).await;
    let (alerter, _task) = spawn(
        config(server.base_url()),
        &tokio::runtime::Handle::current(),
    );
    alerter.send(note(1));
    alerter.send(note(2));
    wait_for("one failure then one delivery", stats_are(&alerter, 1, 1)).await;

    assert_eq!(
        server.texts(),
        vec![
            note(1).render("keel paper btc-sma"),
            note(2).render("keel paper btc-sma")
        ],
        "the refused alert is sent exactly once"
    );
    let line = alerter.last_failure().expect("failure recorded");
    assert!(line.contains("chat not found"), "{line}");
    assert!(line.contains("400"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_drops_without_blocking_and_announces_the_count() {
    let server = Server::start(vec![Reply::HeldOk]).await;
    let mut c = config(server.base_url());
    c.queue = 2;
    let (alerter, _task) = spawn(c, &tokio::runtime::Handle::current());

    alerter.send(note(0));
    wait_for("the first request to be held", || {
        server.requests().len() == 1
    })
    .await;

    // From a plain thread, as the engine does: two fit in the queue, three are dropped.
    let engine = alerter.clone();
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        for i in 1..=5 {
            engine.send(note(i));
        }
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(PATIENCE)
        .expect("send() returned while the server held the request");
    assert_eq!(alerter.stats().dropped, 3);
    assert_eq!(server.requests().len(), 1, "nothing else sent while held");

    server.release();
    wait_for("three deliveries", stats_are(&alerter, 3, 0)).await;
    let texts = server.texts();
    assert_eq!(texts.len(), 3);
    assert_eq!(texts[0], note(0).render("keel paper btc-sma"));
    let announced = texts[1].lines().next().expect("first line");
    assert!(announced.contains("3 alert(s) dropped"), "{}", texts[1]);
    assert!(texts[1].ends_with(&note(1).render("keel paper btc-sma")));
    assert_eq!(texts[2], note(2).render("keel paper btc-sma"));
    assert_eq!(alerter.stats().dropped, 3);
}

// ---------------------------------------------------------------------------------------------
// Shutdown

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_queued_alerts_then_refuses_new_ones() {
    let server = Server::start(vec![]).await;
    let mut c = config(server.base_url());
    c.min_interval = Duration::from_millis(30);
    let (alerter, task) = spawn(c, &tokio::runtime::Handle::current());
    for i in 0..5 {
        alerter.send(note(i));
    }
    alerter.send(Alert::Shutdown {
        text: "SIGTERM".into(),
    });
    let stats = tokio::time::timeout(PATIENCE, task.shutdown(PATIENCE))
        .await
        .expect("shutdown ends");

    assert_eq!(stats.sent, 6);
    let texts = server.texts();
    assert_eq!(texts.len(), 6);
    assert!(texts[5].contains("Stopped") && texts[5].contains("SIGTERM"));

    alerter.send(note(99));
    assert_eq!(alerter.stats().dropped, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.requests().len(), 6, "nothing sent after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_counts_undelivered_alerts_as_failed_when_grace_runs_out() {
    let server = Server::start(vec![Reply::HeldOk]).await;
    let (alerter, task) = spawn(
        config(server.base_url()),
        &tokio::runtime::Handle::current(),
    );
    alerter.send(note(0));
    alerter.send(note(1));
    wait_for("the first request to be held", || {
        server.requests().len() == 1
    })
    .await;
    let stats = tokio::time::timeout(PATIENCE, task.shutdown(Duration::from_millis(200)))
        .await
        .expect("shutdown ends although the server never answers");
    assert_eq!(stats.sent, 0);
    assert_eq!(stats.failed, 2, "the held alert and the queued one");
    let line = alerter.last_failure().expect("failure recorded");
    assert!(line.contains("2 alert(s) not delivered"), "{line}");
}

// ---------------------------------------------------------------------------------------------
// Secrets

#[test]
fn bot_token_debug_and_display_hide_the_secret() {
    let token = BotToken::new(TOKEN);
    assert_eq!(format!("{token:?}"), "BotToken(***)");
    assert_eq!(format!("{token}"), "BotToken(***)");
    let c = config("http://127.0.0.1:1".into());
    let debug = format!("{c:?}");
    assert!(debug.contains("BotToken(***)"), "{debug}");
    assert!(!debug.contains(TOKEN), "{debug}");
}

#[test]
fn from_env_names_the_unset_variable() {
    let var = "KEEL_TEST_ALERTS_TOKEN_NEVER_SET_4F2A";
    let err = BotToken::from_env(var).expect_err("unset");
    assert!(matches!(err, AlertError::TokenUnset { .. }), "{err:?}");
    assert!(err.to_string().contains(var), "{err}");
}

#[test]
fn parse_rejects_empty_and_malformed_tokens_naming_the_source_not_the_value() {
    let empty = BotToken::parse("KEEL_TELEGRAM_TOKEN", "  \n").expect_err("empty");
    assert!(matches!(empty, AlertError::TokenEmpty { .. }), "{empty:?}");
    assert!(empty.to_string().contains("KEEL_TELEGRAM_TOKEN"));

    for bad in [
        "no-colon-secret",
        "12a:abc",
        "123:",
        "123:abc/def",
        "123:a b",
    ] {
        let err = BotToken::parse("KEEL_TELEGRAM_TOKEN", bad).expect_err(bad);
        let text = format!("{err} {err:?}");
        assert!(text.contains("KEEL_TELEGRAM_TOKEN"), "{text}");
        assert!(!text.contains(bad), "{text}");
    }
    let ok = BotToken::parse("KEEL_TELEGRAM_TOKEN", &format!("{TOKEN}\n")).expect("valid");
    assert_eq!(ok, BotToken::new(TOKEN));
}

#[test]
fn failure_line_redacts_the_token_even_if_telegram_echoes_it() {
    let failure = SendFailure::Rejected {
        status: 401,
        description: format!("Unauthorized: bot{TOKEN} unknown"),
    };
    let line = failure_line(&failure, &BotToken::new(TOKEN));
    assert!(!line.contains(TOKEN), "{line}");
    assert!(
        line.contains("401") && line.contains("Unauthorized"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_error_text_drops_the_url_with_the_token() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let err = client
        .post(format!("{}/bot{TOKEN}/sendMessage", closed_port_url()))
        .send()
        .await
        .expect_err("nothing listens");
    assert!(
        err.to_string().contains(TOKEN),
        "precondition: reqwest's own message carries the URL"
    );
    let text = transport_error_text(err);
    assert!(!text.is_empty());
    assert!(!text.contains(TOKEN), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_reported_by_the_task_never_contain_the_token() {
    // A 401 from Telegram: not retried, description reported.
    let server = Server::start(vec![Reply::Json(401, UNAUTHORIZED)]).await;
    let (alerter, _task) = spawn(
        config(server.base_url()),
        &tokio::runtime::Handle::current(),
    );
    alerter.send(note(0));
    wait_for("the 401 failure", stats_are(&alerter, 0, 1)).await;
    assert_eq!(server.requests().len(), 1);
    let line = alerter.last_failure().expect("failure recorded");
    assert!(line.contains("Unauthorized"), "{line}");
    assert!(!line.contains(TOKEN), "{line}");

    // Nothing listening: network errors, retried, then given up.
    let mut c = config(closed_port_url());
    c.max_attempts = 2;
    let (alerter, _task) = spawn(c, &tokio::runtime::Handle::current());
    alerter.send(note(0));
    wait_for("the network failure", stats_are(&alerter, 0, 1)).await;
    let line = alerter.last_failure().expect("failure recorded");
    assert!(line.contains("2 attempt"), "{line}");
    assert!(!line.contains(TOKEN), "{line}");
}

// ---------------------------------------------------------------------------------------------
// Rendering

#[test]
fn long_messages_are_cut_to_telegrams_limit_with_a_marker() {
    let alert = Alert::Startup {
        text: "divergence ".repeat(1000),
    };
    let text = alert.render("keel live eth");
    assert!(text.encode_utf16().count() <= MAX_MESSAGE_CHARS);
    assert!(
        text.ends_with(TRUNCATION_MARKER),
        "{}",
        &text[text.len() - 40..]
    );
    assert!(text.starts_with("[keel live eth] Started"));

    // Multi-unit characters are never split and still count towards the limit.
    let wide = Alert::Startup {
        text: "\u{1F4C8}".repeat(3000),
    };
    let text = wide.render("x");
    assert!(text.encode_utf16().count() <= MAX_MESSAGE_CHARS);
    assert!(text.ends_with(TRUNCATION_MARKER));
}

#[test]
fn daily_report_lists_every_figure_and_open_position() {
    let report = Alert::DailyReport {
        date: "2025-03-14".into(),
        equity: "10250.12".into(),
        day_pnl: "+250.12".into(),
        day_return_pct: "2.50".into(),
        realized_pnl: "180.00".into(),
        trades: 6,
        open_positions: vec![
            ("BTCUSDT".into(), "0.015".into()),
            ("ETHUSDT".into(), "-0.4".into()),
        ],
    };
    let text = report.render("keel paper");
    for field in [
        "[keel paper]",
        "2025-03-14",
        "10250.12",
        "+250.12",
        "2.50%",
        "180.00",
        "trades 6",
        "BTCUSDT 0.015",
        "ETHUSDT -0.4",
    ] {
        assert!(text.contains(field), "{field:?} missing from {text:?}");
    }
    let flat = Alert::DailyReport {
        date: "2025-03-15".into(),
        equity: "1".into(),
        day_pnl: "0".into(),
        day_return_pct: "0".into(),
        realized_pnl: "0".into(),
        trades: 0,
        open_positions: vec![],
    };
    assert!(flat.render("k").contains("open positions: none"));
}

#[test]
fn disabled_alerter_accepts_and_discards() {
    let alerter = Alerter::disabled();
    alerter.send(note(0));
    assert_eq!(alerter.stats(), AlertStats::default());
}
