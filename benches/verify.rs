//! Verification cost of the layer, measured side by side with its baselines in the
//! same run:
//!
//! - `throughput/*`: the layer over bodies of 1 KiB, 64 KiB and 1 MiB arriving in
//!   16 KiB frames, next to a raw `Hmac<Sha256>` over the same frames.
//! - `overhead_1k/*`: one 1 KiB request through the layer, next to the same request
//!   handed to the inner service directly.
//!
//! `cargo bench --bench verify`, then `python3 scripts/criterion_ratios.py` prints the
//! ratios that BENCHMARKS.md reports.

use std::convert::Infallible;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use genesys_webhook::signature::sign_genesys;
use genesys_webhook::GenesysSignatureLayer;
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, Response};
use http_body::Frame;
use http_body_util::StreamBody;
use sha2::Sha256;
use tower::{Layer, Service};

const SECRET: &str = "benchmark-secret";
const FRAME: usize = 16 * 1024;

type Frames =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// `body` as a stream of frames of `frame` bytes, sharing its buffer.
fn frames(body: &Bytes, frame: usize) -> Frames {
    let frames: Vec<_> = (0..body.len())
        .step_by(frame)
        .map(|start| {
            Ok(Frame::data(
                body.slice(start..(start + frame).min(body.len())),
            ))
        })
        .collect();
    StreamBody::new(futures_util::stream::iter(frames))
}

/// The inner service: answers at once without looking at the body.
fn inner<B>() -> impl Service<Request<B>, Response = Response<String>, Error = Infallible> + Clone {
    tower::service_fn(|_request: Request<B>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    })
}

fn request(body: &Bytes, signature: &str) -> Request<Frames> {
    Request::builder()
        .method("POST")
        .uri("/webhook/receive")
        .header("content-type", "application/json")
        .header("x-genesys-signature", signature)
        // As on the wire: Genesys sends Content-Length, so the layer sizes its buffer once.
        .header("content-length", body.len())
        .body(frames(body, FRAME))
        .unwrap()
}

fn body_of(len: usize) -> Bytes {
    let text: String = r#"{"type":"Text","text":""#.to_owned();
    let mut bytes = text.into_bytes();
    bytes.resize(len.saturating_sub(2), b'a');
    bytes.extend_from_slice(b"\"}");
    Bytes::from(bytes)
}

fn throughput(c: &mut Criterion) {
    let layer = GenesysSignatureLayer::builder()
        .secret(SECRET)
        .max_body_bytes(2 * 1024 * 1024)
        .build()
        .unwrap();
    let replay_layer = GenesysSignatureLayer::builder()
        .secret(SECRET)
        .max_body_bytes(2 * 1024 * 1024)
        .replay_protection(genesys_webhook::replay::ReplayProtection::in_memory())
        .build()
        .unwrap();
    let mut group = c.benchmark_group("throughput");
    for size in [1024, 64 * 1024, 1024 * 1024] {
        let body = body_of(size);
        let signature = sign_genesys(SECRET, &body);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("raw_hmac", size), &body, |b, body| {
            b.iter(|| {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
                for chunk in body.chunks(FRAME) {
                    mac.update(chunk);
                }
                mac.finalize().into_bytes()
            })
        });
        let mut service = layer.layer(inner());
        group.bench_with_input(BenchmarkId::new("layer", size), &body, |b, body| {
            b.iter(|| {
                let request = request(body, &signature);
                futures_executor::block_on(std::future::poll_fn(|cx| {
                    Service::<Request<Frames>>::poll_ready(&mut service, cx)
                }))
                .ok();
                let response = futures_executor::block_on(service.call(request))
                    .unwrap_or_else(|e| match e {});
                assert_eq!(response.status(), 200);
                response
            })
        });
        // Replay protection on: the body key (a second hash over the same frames) and
        // a lookup in the memory store; after the first call each request is a
        // duplicate, answered without the inner service.
        let mut replayed = replay_layer.layer(inner());
        group.bench_with_input(BenchmarkId::new("layer_replay", size), &body, |b, body| {
            b.iter(|| {
                let request = request(body, &signature);
                futures_executor::block_on(std::future::poll_fn(|cx| {
                    Service::<Request<Frames>>::poll_ready(&mut replayed, cx)
                }))
                .ok();
                let response = futures_executor::block_on(replayed.call(request))
                    .unwrap_or_else(|e| match e {});
                assert_eq!(response.status(), 200);
                response
            })
        });
    }
    group.finish();
}

fn overhead(c: &mut Criterion) {
    let layer = GenesysSignatureLayer::builder()
        .secret(SECRET)
        .build()
        .unwrap();
    let body = body_of(1024);
    let signature = sign_genesys(SECRET, &body);
    let mut group = c.benchmark_group("overhead_1k");
    let mut direct = inner();
    group.bench_function("inner_direct", |b| {
        b.iter(|| {
            let request = request(&body, &signature);
            futures_executor::block_on(std::future::poll_fn(|cx| {
                Service::<Request<Frames>>::poll_ready(&mut direct, cx)
            }))
            .ok();
            futures_executor::block_on(direct.call(request)).unwrap_or_else(|e| match e {})
        })
    });
    let mut layered = layer.layer(inner());
    group.bench_function("through_layer", |b| {
        b.iter(|| {
            let request = request(&body, &signature);
            futures_executor::block_on(std::future::poll_fn(|cx| {
                Service::<Request<Frames>>::poll_ready(&mut layered, cx)
            }))
            .ok();
            let response =
                futures_executor::block_on(layered.call(request)).unwrap_or_else(|e| match e {});
            assert_eq!(response.status(), 200);
            response
        })
    });
    group.finish();
}

criterion_group!(benches, throughput, overhead);
criterion_main!(benches);
