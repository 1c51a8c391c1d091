//! The README's verification snippets ("Not writing Rust?"), run as written against
//! the real relay: each becomes the check of a small server in its language that the
//! relay forwards to. The Python one needs `python3`; the Node one runs only where
//! `node` is installed and is reported **ignored** elsewhere (failed in CI, where
//! `.ci/run` installs it).

pub mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::ReceiverProcess;
use genesys_webhook::signature::sign_open_messaging;
use libtest_mimic::{Arguments, Trial};

const BIN: &str = env!("CARGO_BIN_EXE_genesys-webhook");
const GENESYS_SECRET: &str = "genesys-secret";
const FORWARD_SECRET: &str = "forward-secret";

/// The code block after `<!-- relay-snippet: {language} -->` in the README.
fn snippet(language: &str) -> String {
    let readme = include_str!("../README.md");
    let marker = format!("<!-- relay-snippet: {language} -->");
    let after = readme
        .split(&marker)
        .nth(1)
        .expect("the README has the snippet");
    let block = after.split("```").nth(1).expect("a code block follows");
    // Drop the fence's language tag.
    block
        .split_once('\n')
        .map(|(_, code)| code.to_owned())
        .unwrap()
}

const PYTHON_SERVER: &str = r#"
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = sys.argv[1]

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        header = self.headers.get("X-Hub-Signature-256", "")
        ok = verify(body, header, SECRET)
        tampered = verify(body + b" ", header, SECRET) or verify(body, "", SECRET)
        print(("VALID " if ok and not tampered else "INVALID ") + self.headers["Genesys-Webhook-Id"], flush=True)
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
print("PORT", server.server_port, flush=True)
server.serve_forever()
"#;

const NODE_SERVER: &str = r#"
const http = require("node:http");
const SECRET = process.argv[2];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const header = req.headers["x-hub-signature-256"];
    const ok = verify(body, header, SECRET);
    const tampered = verify(Buffer.concat([body, Buffer.from(" ")]), header, SECRET) ||
      verify(body, undefined, SECRET);
    console.log((ok && !tampered ? "VALID " : "INVALID ") + req.headers["genesys-webhook-id"]);
    res.writeHead(ok ? 204 : 401).end();
  });
});
server.listen(0, "127.0.0.1", () => console.log("PORT " + server.address().port));
"#;

/// A verifying server: the snippet and the server code in one file, run with the
/// secret it checks; its output lines.
struct App {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl App {
    fn start(program: &str, file: &str, code: &str, secret: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(code.as_bytes())
            .unwrap();
        let mut child = Command::new(program)
            .arg(&path)
            .arg(secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(20)).unwrap();
        let port = first.strip_prefix("PORT ").unwrap().trim().parse().unwrap();
        Self {
            child,
            port,
            lines,
            _dir: dir,
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The relay forwarding to `app`, given a Genesys event; what the app printed for it.
fn relay_once(app: &App) -> String {
    let dir = tempfile::tempdir().unwrap();
    let forward = format!("http://127.0.0.1:{}/genesys", app.port);
    let relay = ReceiverProcess::start_program_in(
        Path::new(BIN),
        &["serve", "--forward", &forward, "--max-attempts", "1"],
        dir.path(),
        &[
            ("GENESYS_WEBHOOK_SECRET", GENESYS_SECRET),
            ("GENESYS_FORWARD_SECRET", FORWARD_SECRET),
            ("GENESYS_INBOX", "memory"),
        ],
    );
    // Not ASCII, so that a snippet reading text instead of bytes would fail.
    let body = r#"{"id":"m-1","conversationId":"c-1","type":"Text","text":"héllo ✓ =+/"}"#;
    let signature = sign_open_messaging(GENESYS_SECRET, body.as_bytes());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let answer = common::post_bytes(
                relay.addr,
                "/webhook/receive",
                &[
                    ("Content-Type", "application/json"),
                    ("X-Hub-Signature-256", &signature),
                ],
                body.as_bytes(),
            )
            .await;
            assert_eq!(answer.status, 200);
        });
    let line = app
        .lines
        .recv_timeout(Duration::from_secs(30))
        .expect("the application heard from the relay");
    drop(relay);
    line
}

fn check(program: &str, file: &str, server: &str, language: &str) {
    let code = format!("{}\n{server}", snippet(language));
    // The right secret: valid, and a changed body or a missing header is refused.
    let app = App::start(program, file, &code, FORWARD_SECRET);
    let line = relay_once(&app);
    assert!(line.starts_with("VALID "), "{language}: {line}");
    // The wrong secret: invalid.
    let app = App::start(program, file, &code, "not-the-secret");
    let line = relay_once(&app);
    assert!(line.starts_with("INVALID "), "{language}: {line}");
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    let arguments = Arguments::from_args();
    let ci = std::env::var_os("CI").is_some();
    let trials = vec![
        Trial::test(
            "the_python_snippet_verifies_what_the_relay_forwards",
            || {
                check("python3", "app.py", PYTHON_SERVER, "python");
                Ok(())
            },
        ),
        Trial::test("the_node_snippet_verifies_what_the_relay_forwards", || {
            check("node", "app.js", NODE_SERVER, "node");
            Ok(())
        })
        .with_ignored_flag(!ci && !installed("node")),
    ];
    libtest_mimic::run(&arguments, trials).exit();
}
