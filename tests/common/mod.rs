//! Helpers shared by the integration tests: servers on loopback and a raw HTTP/1.1
//! client that can send exactly the bytes a test needs (chunked, truncated, dripping).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any single exchange may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Serves an axum router on a free loopback port.
pub async fn serve_axum(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Serves an axum router on a free loopback port, with each connection's address in
/// the requests' extensions (axum's `ConnectInfo`).
pub async fn serve_axum_with_peer(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// `GET path` with the given headers (and `Host: localhost` unless they name a host).
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut request = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str("Host: localhost\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    exchange(addr, request.as_bytes()).await
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }
}

/// A request head: `POST path` with the given headers and `Connection: close`.
pub fn head(path: &str, headers: &[(&str, &str)], extra: &str) -> Vec<u8> {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(extra);
    head.push_str("\r\n");
    head.into_bytes()
}

/// Posts `body` with a `Content-Length`.
pub async fn post_bytes(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut request = head(
        path,
        headers,
        &format!("Content-Length: {}\r\n", body.len()),
    );
    request.extend_from_slice(body);
    exchange(addr, &request).await
}

/// Posts `chunks` with `Transfer-Encoding: chunked`, one chunk each.
pub async fn post_chunked(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    chunks: &[&[u8]],
) -> RawResponse {
    let mut request = head(path, headers, "Transfer-Encoding: chunked\r\n");
    for chunk in chunks {
        request.extend_from_slice(&chunk_bytes(chunk));
    }
    request.extend_from_slice(b"0\r\n\r\n");
    exchange(addr, &request).await
}

pub fn chunk_bytes(chunk: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", chunk.len()).into_bytes();
    out.extend_from_slice(chunk);
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes `request` and reads the whole response (the server closes the connection).
///
/// A server may answer before it has read the whole request (`413`, `401`) and close
/// the connection: the write may then fail with a broken pipe or a reset, and the
/// answer is still there to read, as an HTTP client that watches for an early answer
/// reads it. Whether the answer came is what the caller asserts.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    read_response(&mut stream).await
}

/// Reads one response from `stream` until the server closes it, within [`DEADLINE`].
pub async fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut raw = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
            if let Some(response) = parse(&raw) {
                if response.body.len() >= content_length(&response) {
                    break;
                }
            }
        }
    })
    .await
    .expect("no complete response before the deadline");
    parse(&raw)
        .unwrap_or_else(|| panic!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw)))
}

fn content_length(response: &RawResponse) -> usize {
    response
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX)
}

fn parse(raw: &[u8]) -> Option<RawResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(RawResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

/// A `redis-server` this test started, stopped when dropped; or none when
/// `GENESYS_TEST_REDIS_URL` names one that CI started.
pub struct RedisServer(Option<std::process::Child>);

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The URL of a Redis on loopback: `GENESYS_TEST_REDIS_URL` (CI starts one), or a
/// `redis-server` started here on a free port. Only `tests/redis.rs` calls it, after
/// checking that Redis is there: without one its tests are reported as ignored, and in
/// CI a missing Redis fails them.
/// Whether `redis-server` (its stdout piped) says it accepts connections within 10 s.
/// The rest of its output is drained, so the pipe never fills up.
fn redis_ready(child: &mut std::process::Child) -> bool {
    let Some(stdout) = child.stdout.take() else {
        return false;
    };
    let (ready, is_ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("Ready to accept connections") {
                let _ = ready.send(());
            }
        }
    });
    is_ready.recv_timeout(Duration::from_secs(10)).is_ok()
}

pub fn redis_server() -> Option<(String, RedisServer)> {
    if let Ok(url) = std::env::var("GENESYS_TEST_REDIS_URL") {
        return Some((url, RedisServer(None)));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!("redis-server could not be started: {error}");
            return None;
        }
        Err(error) => panic!("CI must provide Redis for these tests: {error}"),
    };
    let mut child = child;
    assert!(redis_ready(&mut child), "redis-server did not start");
    Some((
        format!("redis://127.0.0.1:{port}/"),
        RedisServer(Some(child)),
    ))
}

pub mod crash;
#[cfg(feature = "cloud")]
pub mod fake_cloud;
pub mod faults;
pub mod inbox_contract;
#[cfg(feature = "cli")]
pub mod relay;
pub mod replay_suite;

/// The receiver example's binary, built by `cargo test` next to the test binaries.
pub fn receiver_binary() -> PathBuf {
    example_binary("receiver")
}

/// An example's binary, built by `cargo test --all-features` next to the test binaries.
pub fn example_binary(name: &str) -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let binary = deps.parent().unwrap().join("examples").join(name);
    if !binary.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--all-features", "--example", name])
            .status()
            .unwrap();
        assert!(status.success());
    }
    binary
}

pub struct ReceiverProcess {
    child: Child,
    pub addr: SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
    /// The thread reading standard output: once it ends, every line is in `output`.
    reader: Option<std::thread::JoinHandle<()>>,
    /// Signalled when standard output closes: the process exited.
    closed: std::sync::mpsc::Receiver<()>,
    /// The working directory, where the default SQLite inbox lives, when the process
    /// owns it.
    _dir: Option<tempfile::TempDir>,
}

impl ReceiverProcess {
    /// Starts the receiver in a fresh working directory of its own.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut receiver = Self::start_in(dir.path(), env);
        receiver._dir = Some(dir);
        receiver
    }

    /// Starts the receiver in `dir`, so that a restart finds the same inbox file.
    pub fn start_in(dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        Self::start_example_in("receiver", dir, env)
    }

    /// Starts the example `name` in `dir`; it says where it listens as the receiver does.
    pub fn start_example_in(name: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        Self::start_program_in(&example_binary(name), &[], dir, env)
    }

    /// Starts `program` with `args` in `dir`; it says where it listens as the receiver
    /// does (`genesys-webhook serve`).
    pub fn start_program_in(
        program: &std::path::Path,
        args: &[&str],
        dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Self {
        let name = program.file_name().unwrap().to_string_lossy().into_owned();
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let lines = Arc::clone(&output);
        let stdout = child.stdout.take().unwrap();
        let (closed_tx, closed) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = addr_tx.send(addr.trim().parse::<SocketAddr>().unwrap());
                }
                lines.lock().unwrap().push(line);
            }
            // The process closed its output: it exited.
            let _ = closed_tx.send(());
        });
        // Read stderr too (panics, start-up errors), so the pipe never fills up.
        let errors = Arc::new(Mutex::new(Vec::new()));
        let error_lines = Arc::clone(&errors);
        let stderr = child.stderr.take().unwrap();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                error_lines.lock().unwrap().push(line);
            }
        });
        let Ok(addr) = addr_rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            let _ = child.wait();
            // Everything it wrote, once the reader reached the end.
            let _ = stderr_reader.join();
            let stderr = errors.lock().unwrap().join("\n");
            panic!(
                "{name} did not start listening (a stale build? `cargo test --all-features` rebuilds it): {stderr}"
            );
        };
        Self {
            child,
            addr,
            output,
            reader: Some(reader),
            closed,
            _dir: None,
        }
    }

    /// Waits until every line the process wrote has been read (after it exited).
    fn read_to_the_end(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// `kill -9`: no chance to flush, finish or clean up.
    pub fn kill(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = self.child.wait();
        self.read_to_the_end();
    }

    /// A line of `/proc/<pid>/status` in KiB (`VmHWM`, `VmRSS`).
    pub fn memory_kib(&self, field: &str) -> Option<u64> {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()?
            .lines()
            .find(|l| l.starts_with(field))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// Every output line so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    pub fn output_contains(&self, needle: &str) -> bool {
        self.output
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }

    pub fn lines_containing(&self, needle: &str) -> Vec<String> {
        self.output
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.output
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // Its output ends when it exits.
        let exited = self.closed.recv_timeout(Duration::from_secs(20));
        assert!(exited.is_ok(), "the receiver did not exit");
        let status = self.child.wait().unwrap();
        self.read_to_the_end();
        status
    }
}

impl Drop for ReceiverProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` of the test's own, persisting to `dir` with `appendonly yes` and
/// `appendfsync always`, so that it can be killed and restarted on the same data.
pub struct PersistentRedis {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

impl PersistentRedis {
    /// Starts one on a free port; `None` outside CI when no
    /// `redis-server` is installed.
    pub fn start(dir: &std::path::Path) -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self {
            child: None,
            port,
            dir: dir.to_owned(),
        };
        match redis.spawn() {
            Ok(()) => Some(redis),
            Err(error) if std::env::var_os("CI").is_none() => {
                eprintln!("redis-server could not be started: {error}");
                None
            }
            Err(error) => panic!("CI must provide redis-server for these tests: {error}"),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
            ])
            .arg(&self.dir)
            .stdout(Stdio::piped())
            .spawn()?;
        let mut child = child;
        let ready = redis_ready(&mut child);
        self.child = Some(child);
        assert!(ready, "redis-server did not start");
        Ok(())
    }

    /// `kill -9`, then start again on the same port and data.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        self.spawn().unwrap();
    }

    /// Sends the server a signal (`STOP` freezes it, `CONT` lets it go on).
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -{signal} failed");
        }
    }

    /// Runs `redis-cli` with `args` against this server.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for PersistentRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every log line of every crate (the library's included) written on this thread
/// while the guard lives, at every level: for tests that count what was logged. On a
/// current-thread runtime that is every task's.
pub struct CapturedLogs {
    lines: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    pub fn start() -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(Arc::clone(&lines));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        Self {
            lines,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.lines.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Lines at `level` (`WARN`, `ERROR`, …) that contain `needle`.
    pub fn count(&self, level: &str, needle: &str) -> usize {
        let level = format!(" {level} ");
        self.lines()
            .iter()
            .filter(|l| l.contains(&level) && l.contains(needle))
            .count()
    }
}

/// How long [`eventually`] waits for a fact before the test fails.
pub const EVENTUALLY: Duration = Duration::from_secs(30);

/// Waits until `fact` holds, checking it every 10 ms: tests wait for facts, never for
/// time. Fails the test, naming `what`, when it still does not hold after
/// [`EVENTUALLY`] of real time.
pub async fn eventually(what: &str, mut fact: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + EVENTUALLY;
    while !fact().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
