//! A real Prometheus server scraping a metrics endpoint, for end-to-end tests of keel's
//! exposition: start it against `host:port`, then query its HTTP API until a series appears.
//!
//! Include it from a test file with
//! `#[path = "common/prometheus.rs"] mod prometheus;`
//! and find the binaries with [`tool_or_skip`]: a machine without Prometheus skips the test with
//! a printed note, unless `KEEL_REQUIRE_PROMETHEUS` is set (CI), where absence is a failure.
//!
//! Everything is bounded: each HTTP exchange has socket timeouts, readiness and queries wait at
//! most [`WAIT`], and the server process is killed when the [`Prometheus`] value drops.
#![allow(dead_code)] // each test file uses a different subset

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set (to anything) to make a missing `prometheus`/`promtool` fail the tests instead of
/// skipping them.
pub const REQUIRE_ENV: &str = "KEEL_REQUIRE_PROMETHEUS";

/// Longest wait for Prometheus to become ready, or for a query to return what is expected.
pub const WAIT: Duration = Duration::from_secs(60);

/// Pause between two polls.
const POLL: Duration = Duration::from_millis(250);

/// Socket timeout for one HTTP exchange with Prometheus.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts to start Prometheus; a retry only follows a lost race for the chosen free port.
const START_ATTEMPTS: usize = 3;

/// `name` (`prometheus` or `promtool`) found on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` on `PATH`; `None` (after printing why the test is skipped) when it is absent and
/// [`REQUIRE_ENV`] is unset. Panics when it is absent and [`REQUIRE_ENV`] is set.
pub fn tool_or_skip(name: &str) -> Option<PathBuf> {
    if let Some(found) = find_tool(name) {
        return Some(found);
    }
    assert!(
        std::env::var_os(REQUIRE_ENV).is_none(),
        "{REQUIRE_ENV} is set but `{name}` is not on PATH; install Prometheus \
         (Debian: apt-get install prometheus)"
    );
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "note: skipped, `{name}` is not on PATH (set {REQUIRE_ENV} to make this a failure)"
    );
    None
}

/// One series of an instant query's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A running Prometheus server scraping one target every second; killed on drop.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    // Config, TSDB and log; removed after the process is killed (fields drop in order).
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `binary` scraping `http://{target}/metrics` every second and waits until it is
    /// ready. Panics with Prometheus' log if it does not start.
    pub fn start(binary: &Path, target: SocketAddr) -> Prometheus {
        Prometheus::start_with_path(binary, target, "/metrics")
    }

    /// [`Prometheus::start`] with another metrics path.
    pub fn start_with_path(binary: &Path, target: SocketAddr, metrics_path: &str) -> Prometheus {
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::tempdir().expect("temporary directory for prometheus");
            let config = dir.path().join("prometheus.yml");
            std::fs::write(&config, scrape_config(target, metrics_path)).expect("write config");
            let addr = free_local_addr();
            let log = dir.path().join("prometheus.log");
            let child = spawn(binary, &config, &dir.path().join("tsdb"), addr, &log);
            let mut prometheus = Prometheus {
                child,
                addr,
                log,
                _dir: dir,
            };
            match prometheus.wait_ready() {
                Ok(()) => return prometheus,
                Err(log) if log.contains("address already in use") => last_log = log,
                Err(log) => panic!("prometheus did not become ready:\n{log}"),
            }
        }
        panic!("prometheus lost the race for a free port {START_ATTEMPTS} times:\n{last_log}");
    }

    /// Where Prometheus' HTTP API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything Prometheus has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `/-/ready`; on failure returns the log (the process may have exited).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}\n{}", self.log()));
            }
            if matches!(http_get(self.addr, "/-/ready"), Ok((200, _))) {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
        Err(format!("not ready after {WAIT:?}\n{}", self.log()))
    }

    /// An instant query at the current time.
    pub fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let path = format!("/api/v1/query?query={}", url_encode(expr));
        let (status, body) = http_get(self.addr, &path)?;
        if status != 200 {
            return Err(format!("HTTP {status} for {expr}: {body}"));
        }
        parse_vector(&body).map_err(|e| format!("{e} for {expr}: {body}"))
    }

    /// Polls `expr` until `done` accepts the result, for at most [`WAIT`]; panics with the last
    /// result and Prometheus' log otherwise.
    pub fn wait_for(&self, expr: &str, done: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
        let deadline = Instant::now() + WAIT;
        let mut last = Err(String::from("not queried yet"));
        while Instant::now() < deadline {
            last = self.query(expr);
            if last.as_deref().is_ok_and(&done) {
                return last.unwrap_or_default();
            }
            std::thread::sleep(POLL);
        }
        panic!(
            "query {expr} never satisfied the test within {WAIT:?}; last result: {last:?}\n\
             prometheus log:\n{}",
            self.log()
        );
    }

    /// Polls until `expr` has at least one series and returns the value of the only one.
    pub fn wait_for_value(&self, expr: &str) -> f64 {
        let samples = self.wait_for(expr, |s| !s.is_empty());
        assert_eq!(samples.len(), 1, "{expr} has several series: {samples:?}");
        samples[0].value
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // Only our own child, by its handle; errors mean it has already exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scrape_config(target: SocketAddr, metrics_path: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: keel\n    metrics_path: {metrics_path}\n    \
         static_configs:\n      - targets: [\"{target}\"]\n"
    )
}

fn spawn(binary: &Path, config: &Path, tsdb: &Path, addr: SocketAddr, log: &Path) -> Child {
    let log_file = std::fs::File::create(log).expect("create prometheus log");
    let log_err = log_file.try_clone().expect("clone log handle");
    Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address={addr}"))
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

/// A loopback address with a port that was free a moment ago (Prometheus binds it itself).
fn free_local_addr() -> SocketAddr {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    probe.local_addr().expect("local address")
}

/// One HTTP/1.0 GET (the server closes the connection, so the body is everything after the
/// headers; no chunked encoding). Returns the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {raw:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The series of a `/api/v1/query` answer whose result type is `vector`.
fn parse_vector(body: &str) -> Result<Vec<Sample>, String> {
    let json: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    if json["status"] != "success" {
        return Err("status is not success".into());
    }
    if json["data"]["resultType"] != "vector" {
        return Err("result is not a vector".into());
    }
    let series = json["data"]["result"].as_array().ok_or("no result array")?;
    series.iter().map(parse_sample).collect()
}

fn parse_sample(series: &serde_json::Value) -> Result<Sample, String> {
    let labels = series["metric"]
        .as_object()
        .ok_or("series without labels")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    // Prometheus sends [<unix time>, "<value>"]; the value is a string so NaN/Inf survive.
    let value = series["value"][1]
        .as_str()
        .ok_or("series without a value")?
        .parse()
        .map_err(|e| format!("value: {e}"))?;
    Ok(Sample { labels, value })
}
