//! Replay protection when things go wrong: slow and failing stores, dropped requests,
//! timeouts, slow handlers, several signatures of one body. Each test drives the layer
//! through a real axum server on loopback.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::faults::*;
use common::*;
use genesys_webhook::replay::{
    Duplicate, LeaseId, MemoryStore, ReplayKey, ReplayProtection, ReplayStore, Reservation,
};
use genesys_webhook::signature::{sign_genesys, sign_open_messaging};
use genesys_webhook::GenesysSignatureLayer;
use http::StatusCode;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_store_timeout_is_processed() {
    // One store shared by a failing layer and a healthy one: the failing one's
    // reservation landed, then its answer was lost.
    let inner = Arc::new(MemoryStore::default());
    let failing = Faulty::new(
        Arc::clone(&inner),
        Faults {
            reserve_lands_then_fails: true,
            ..Faults::default()
        },
    );
    let seen = Arc::clone(&failing.seen);
    let failing = ReplayProtection::new(failing);
    let healthy = ReplayProtection::from_arc(inner);
    let a = server(layer(failing), None).await;
    let b = server(layer(healthy), None).await;
    let body = unique("timeout");
    assert_eq!(a.send(&body).await.status, 503);
    // The failing layer gives back what its lost answer left in the store.
    common::eventually("the orphaned lease is released", async || {
        Seen::count(&seen.released) == 1
    })
    .await;
    let retry = b.send(&body).await;
    assert_eq!(
        retry.text(),
        "processed",
        "the retry was blocked by an orphaned lease"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_while_the_reservation_is_made_leaves_no_lease_behind() {
    let inner = Arc::new(MemoryStore::default());
    let slow = Faulty::new(
        Arc::clone(&inner),
        Faults {
            reserve_delay: Some(Duration::from_millis(300)),
            ..Faults::default()
        },
    );
    let seen = Arc::clone(&slow.seen);
    let slow = ReplayProtection::new(slow);
    let s = server(layer(slow), None).await;
    let body = unique("gone");
    let sig = sign_open_messaging(SECRET, body.as_bytes());
    let mut request = head(
        "/",
        &[("X-Hub-Signature-256", sig.as_str())],
        &format!("Content-Length: {}\r\n", body.len()),
    );
    request.extend_from_slice(body.as_bytes());
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    stream.write_all(&request).await.unwrap();
    common::eventually("the reservation is asked for", async || {
        Seen::count(&seen.reserves) == 1
    })
    .await;
    drop(stream); // gone before the store answered
                  // Released at once, and once more a second later for a reservation that lands
                  // late, as this one does (300 ms).
    common::eventually("the late reservation is released", async || {
        Seen::count(&seen.released) == 2
    })
    .await;
    assert_eq!(Seen::count(&seen.reserved), 1, "it did land");
    let healthy = server(layer(ReplayProtection::from_arc(inner)), None).await;
    assert_eq!(healthy.send(&body).await.text(), "processed");
    assert_eq!(s.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_the_lease_keeps_its_reservation_in_memory() {
    slow_handler_keeps_its_reservation(ReplayProtection::in_memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_per_body_whatever_the_headers_their_order_or_the_secret() {
    let layer = GenesysSignatureLayer::builder()
        .secret("first-secret")
        .secret("second-secret")
        .replay_protection(ReplayProtection::in_memory())
        .build()
        .unwrap();
    let s = server(layer, None).await;
    let body = unique("keys");
    let om = sign_open_messaging("first-secret", body.as_bytes());
    let hex = sign_genesys("second-secret", body.as_bytes());
    let post = |headers: Vec<(&'static str, String)>| {
        let body = body.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            post_bytes(s.addr, "/", &headers, body.as_bytes()).await
        }
    };
    let both = post(vec![
        ("X-Hub-Signature-256", om.clone()),
        ("X-Genesys-Signature", hex.clone()),
    ])
    .await;
    assert_eq!(both.text(), "processed");
    for replay in [
        vec![
            ("X-Genesys-Signature", hex.clone()),
            ("X-Hub-Signature-256", om.clone()),
        ],
        vec![("X-Hub-Signature-256", om.clone())],
        vec![("X-Genesys-Signature", hex.clone())],
        vec![(
            "X-Hub-Signature-256",
            sign_open_messaging("second-secret", body.as_bytes()),
        )],
    ] {
        let answer = post(replay).await;
        assert_eq!(answer.json(), serde_json::json!({"status": "duplicate"}));
    }
    assert_eq!(s.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_dropped_while_the_outcome_is_recorded_still_marks_the_key_done() {
    let clock = common::inbox_contract::ManualClock::default();
    let store = Faulty::new(
        Arc::new(MemoryStore::default().clock(clock.clock())),
        Faults {
            complete_delay: Some(Duration::from_millis(500)),
            ..Faults::default()
        },
    );
    let seen = Arc::clone(&store.seen);
    let protection = ReplayProtection::new(store).lease(Duration::from_millis(1000));
    let s = server(layer(protection), Some(Duration::from_millis(200))).await;
    let body = unique("dropped");
    let first = s.send(&body).await;
    assert_eq!(first.status, 408, "the deadline fired while recording");
    common::eventually("the outcome is recorded", async || {
        Seen::count(&seen.completed) == 1
    })
    .await;
    // Past the lease: without the outcome recorded, the key would be free again.
    clock.advance(Duration::from_millis(1500));
    let again = s.send(&body).await;
    assert_eq!(again.json(), serde_json::json!({"status": "duplicate"}));
    assert_eq!(s.calls(), 1, "a processed event ran twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_mid_handler_releases_the_key_for_the_retry() {
    let store = Faulty::new(Arc::new(MemoryStore::default()), Faults::default());
    let seen = Arc::clone(&store.seen);
    let s = server(
        layer(ReplayProtection::new(store)),
        Some(Duration::from_millis(200)),
    )
    .await;
    let body = unique("slow1000");
    assert_eq!(s.send(&body).await.status, 408);
    common::eventually("the key is released", async || {
        Seen::count(&seen.released) == 1
    })
    .await;
    // Not 503 duplicate_in_flight for the rest of a 30 s lease: the handler runs again.
    assert_eq!(s.send(&body).await.status, 408);
    assert_eq!(s.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_answers_503_unless_fail_open() {
    for fail_open in [false, true] {
        let store = Arc::new(MemoryStore::with_capacity(1));
        let key = ReplayKey::new([9; 32]);
        assert_eq!(
            store
                .reserve(&key, LeaseId::new(), Duration::from_secs(60))
                .await
                .unwrap(),
            Reservation::Reserved
        );
        let protection = ReplayProtection::from_arc(store).fail_open(fail_open);
        let s = server(layer(protection), None).await;
        let response = s.send(&unique("full")).await;
        if fail_open {
            assert_eq!(response.text(), "processed");
        } else {
            assert_eq!(response.status, 503);
            assert_eq!(
                response.json(),
                serde_json::json!({"error": "replay_store_unavailable"})
            );
            assert_eq!(response.header("retry-after"), Some("5"));
            assert_eq!(s.calls(), 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_duplicate_replaces_both_answers() {
    let store = Faulty::new(Arc::new(MemoryStore::default()), Faults::default());
    let seen = Arc::clone(&store.seen);
    let protection = ReplayProtection::new(store).on_duplicate(|duplicate| {
        let mut response = http::Response::new(format!("{duplicate:?}"));
        *response.status_mut() = match duplicate {
            Duplicate::Processed => StatusCode::ACCEPTED,
            _ => StatusCode::TOO_MANY_REQUESTS,
        };
        response
    });
    let s = Arc::new(server(layer(protection), None).await);
    let body = unique("slow400");
    let first = {
        let (s, body) = (Arc::clone(&s), body.clone());
        tokio::spawn(async move { s.send(&body).await })
    };
    // The first holds the key (its handler takes 400 ms).
    common::eventually("the first request holds the key", async || {
        Seen::count(&seen.reserved) == 1
    })
    .await;
    let during = s.send(&body).await;
    assert_eq!((during.status, during.text()), (429, "InFlight"));
    assert_eq!(first.await.unwrap().text(), "processed");
    let after = s.send(&body).await;
    assert_eq!((after.status, after.text()), (202, "Processed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_complete_still_answers_with_the_handlers_response() {
    let s = server(
        layer(faulty(Faults {
            complete_fails: true,
            ..Faults::default()
        })),
        None,
    )
    .await;
    let response = s.send(&unique("complete-fails")).await;
    assert_eq!(response.text(), "processed");
    assert_eq!(s.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inner_service_error_releases_the_key() {
    use tower::{Service, ServiceExt};
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let inner = tower::service_fn(
        move |_request: http::Request<genesys_webhook::VerifiedBody>| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err::<http::Response<String>, _>(std::io::Error::other("inner service failed"))
                } else {
                    Ok(http::Response::new("processed".to_owned()))
                }
            }
        },
    );
    let store = Faulty::new(Arc::new(MemoryStore::default()), Faults::default());
    let seen = Arc::clone(&store.seen);
    let mut service = tower::Layer::layer(&layer(ReplayProtection::new(store)), inner);
    let body = unique("err");
    let request = || {
        http::Request::post("/")
            .header(
                "x-hub-signature-256",
                sign_open_messaging(SECRET, body.as_bytes()),
            )
            .body(body.clone())
            .unwrap()
    };
    let first = ServiceExt::<http::Request<String>>::ready(&mut service)
        .await
        .unwrap()
        .call(request())
        .await;
    assert!(first.is_err());
    common::eventually("the key is released", async || {
        Seen::count(&seen.released) == 1
    })
    .await;
    let second = ServiceExt::<http::Request<String>>::ready(&mut service)
        .await
        .unwrap()
        .call(request())
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_survives_a_secret_rotation_across_replicas_sharing_a_store() {
    let store: Arc<dyn ReplayStore> = Arc::new(MemoryStore::default());
    let replica = |secrets: &[&str]| {
        let mut builder = GenesysSignatureLayer::builder()
            .replay_protection(ReplayProtection::from_arc(Arc::clone(&store)));
        for secret in secrets {
            builder = builder.secret(*secret);
        }
        builder.build().unwrap()
    };
    let before = server(replica(&["old"]), None).await;
    let rotated = server(replica(&["new", "old"]), None).await;
    let other_way = server(replica(&["old", "new"]), None).await;
    let send = |addr, secret: &str, body: &str| {
        let sig = sign_open_messaging(secret, body.as_bytes());
        let body = body.to_owned();
        async move {
            post_bytes(
                addr,
                "/",
                &[("X-Hub-Signature-256", sig.as_str())],
                body.as_bytes(),
            )
            .await
        }
    };

    // Handled before the rotation, replayed after it, on either replica.
    let body = unique("rotation");
    assert_eq!(send(before.addr, "old", &body).await.text(), "processed");
    for addr in [rotated.addr, other_way.addr] {
        let replayed = send(addr, "old", &body).await;
        assert_eq!(replayed.json(), serde_json::json!({"status": "duplicate"}));
    }

    // Signed with the new secret: one replica processes it, a retry landing on the
    // replica configured the other way is a duplicate.
    let body = unique("rotation-new");
    assert_eq!(send(rotated.addr, "new", &body).await.text(), "processed");
    let retried = send(other_way.addr, "new", &body).await;
    assert_eq!(retried.json(), serde_json::json!({"status": "duplicate"}));
    assert_eq!(before.calls() + rotated.calls() + other_way.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_renewals_are_counted() {
    let protection = faulty(Faults {
        renew_fails: true,
        ..Faults::default()
    })
    .lease(Duration::from_millis(300));
    let s = server(layer(protection.clone()), None).await;
    assert_eq!(protection.renewal_failures(), 0);
    let answer = s.send(&unique("slow600")).await;
    assert_eq!(answer.text(), "processed");
    assert!(
        protection.renewal_failures() >= 2,
        "{} renewal failures counted",
        protection.renewal_failures()
    );
}
