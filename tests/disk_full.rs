//! The SQLite inbox on a disk that fills up: a small tmpfs mounted for the test. It
//! needs the right to mount (root, as in CI); where that is refused the test is
//! reported as ignored, not passed.

pub mod common;

use std::process::Command;

use bytes::Bytes;
use genesys_webhook::inbox::{Inbox, InboxAdmin, SqliteInbox};
use libtest_mimic::{Arguments, Trial};

struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .ok()?;
        mounted.status.success().then_some(Self { dir })
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn main() {
    let arguments = Arguments::from_args();
    let can_mount = Tmpfs::mount("64k").is_some();
    let trial = Trial::test(
        "a_full_disk_fails_appends_and_readiness_until_space_returns",
        || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(full_disk());
            Ok(())
        },
    )
    .with_ignored_flag(!can_mount);
    libtest_mimic::run(&arguments, vec![trial]).exit();
}

async fn full_disk() {
    let disk = Tmpfs::mount("1m").expect("mount a tmpfs");
    let path = disk.dir.path().join("inbox.db");
    let inbox = SqliteInbox::open(&path).unwrap();
    inbox.ping().await.unwrap();
    let mut stored = 0;
    let mut refused = None;
    for n in 0..1000 {
        let body = Bytes::from(format!(r#"{{"n":{n},"pad":"{}"}}"#, "p".repeat(4000)));
        match inbox.append(body).await {
            Ok(_) => stored += 1,
            Err(error) => {
                refused = Some(error);
                break;
            }
        }
    }
    let refused = refused.expect("the disk filled up");
    assert!(stored > 0, "{refused}");
    assert!(inbox.ping().await.is_err(), "ready with a full disk");

    // Space comes back: readiness follows, and every event answered Ok is there.
    disk.resize("16m");
    common::eventually("ready again", async || inbox.ping().await.is_ok()).await;
    inbox.append(Bytes::from_static(b"{}")).await.unwrap();
    drop(inbox);
    let reopened = SqliteInbox::open(&path).unwrap();
    assert_eq!(reopened.stats().await.unwrap().pending, stored + 1);
}
