//! The README's quick start, pasted into a new project as a user would: its Rust block
//! as `src/main.rs`, its TOML block as the dependencies (this crate by path), built
//! with cargo and served on loopback.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use genesys_webhook::signature::sign_open_messaging;

/// The first fenced block whose info string starts with `lang`, after `heading`.
fn block(readme: &str, heading: &str, lang: &str) -> String {
    let section = &readme[readme.find(heading).expect("heading")..];
    let start = section.find(&format!("```{lang}")).expect("fenced block");
    let body = &section[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_builds_and_serves_when_pasted_into_a_new_project() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let code = block(&readme, "## Quick start", "rust");
    assert!(
        !code.lines().any(|l| l.trim_start().starts_with("# ")),
        "the quick start has hidden lines"
    );
    let toml = block(&readme, "## Quick start", "toml");
    let dependencies = toml.replace(
        "genesys-webhook = { path = \"../genesys-webhook\" }",
        &format!(
            "genesys-webhook = {{ path = {:?} }}",
            root.display().to_string()
        ),
    );
    assert!(dependencies.contains("path ="), "{toml}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(project.path().join("src")).unwrap();
    std::fs::write(project.path().join("src/main.rs"), code).unwrap();
    std::fs::write(
        project.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"quickstart\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n{dependencies}\n[workspace]\n"
        ),
    )
    .unwrap();
    // A target directory of its own, kept between runs so a rebuild is quick.
    let target = root.join("target").join("readme-quickstart");
    let build = Command::new(env!("CARGO"))
        .args(["build", "--quiet"])
        .current_dir(project.path())
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(build.success(), "the quick start does not build");

    let mut server = Command::new(target.join("debug").join("quickstart"))
        .env("GENESYS_WEBHOOK_SECRET", "quickstart-secret")
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    eventually("the quick start serves", async || {
        tokio::net::TcpStream::connect(addr).await.is_ok()
    })
    .await;
    let body = br#"{"id":"m-1","type":"Text","text":"Hello"}"#;
    let signature = sign_open_messaging("quickstart-secret", body);
    let signed = post_bytes(
        addr,
        "/webhook/receive",
        &[
            ("X-Hub-Signature-256", signature.as_str()),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await;
    let unsigned = post_bytes(
        addr,
        "/webhook/receive",
        &[("Content-Type", "application/json")],
        body,
    )
    .await;
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!((signed.status, signed.text()), (200, "ok"));
    assert_eq!(unsigned.status, 401);
}

#[test]
fn the_minimum_rust_version_is_stated_once_and_repeated_faithfully() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let msrv = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version")
        .trim_matches('"')
        .to_owned();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let changelog = std::fs::read_to_string(root.join("CHANGELOG.md")).unwrap();
    assert!(readme.contains(&format!("minimum supported Rust version is {msrv}")));
    assert!(changelog.contains(&format!("minimum supported Rust version is {msrv}")));
    for text in [&readme, &changelog] {
        for line in text
            .lines()
            .filter(|l| l.contains("minimum supported Rust version"))
        {
            assert!(line.contains(&msrv), "{line}");
        }
    }
}
