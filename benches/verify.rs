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

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use genesys_webhook::signature::sign_genesys;
use genesys_webhook::GenesysSignatureLayer;
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use sha2::Sha256;
use tower::{Layer, Service};

const SECRET: &str = "benchmark-secret";
const FRAME: usize = 16 * 1024;

/// A body already in memory, yielded in the frames given.
struct Frames {
    frames: VecDeque<Bytes>,
    len: u64,
}

impl Frames {
    fn new(body: &Bytes, frame: usize) -> Self {
        let frames: VecDeque<Bytes> = (0..body.len())
            .step_by(frame)
            .map(|start| body.slice(start..(start + frame).min(body.len())))
            .collect();
        Self {
            frames,
            len: body.len() as u64,
        }
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.frames.pop_front().map(|data| Ok(Frame::data(data))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// Drives a future that never waits on I/O.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
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
        .body(Frames::new(body, FRAME))
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
    let mut group = c.benchmark_group("throughput");
    for size in [1024, 64 * 1024, 1024 * 1024] {
        let body = body_of(size);
        let signature = sign_genesys(SECRET, &body);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("raw_hmac", size), &body, |b, body| {
            b.iter(|| {
                let frames = Frames::new(body, FRAME);
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
                for frame in &frames.frames {
                    mac.update(frame);
                }
                mac.finalize().into_bytes()
            })
        });
        let mut service = layer.layer(inner());
        group.bench_with_input(BenchmarkId::new("layer", size), &body, |b, body| {
            b.iter(|| {
                let request = request(body, &signature);
                block_on(std::future::poll_fn(|cx| {
                    Service::<Request<Frames>>::poll_ready(&mut service, cx)
                }))
                .ok();
                let response = block_on(service.call(request)).unwrap_or_else(|e| match e {});
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
            block_on(std::future::poll_fn(|cx| {
                Service::<Request<Frames>>::poll_ready(&mut direct, cx)
            }))
            .ok();
            block_on(direct.call(request)).unwrap_or_else(|e| match e {})
        })
    });
    let mut layered = layer.layer(inner());
    group.bench_function("through_layer", |b| {
        b.iter(|| {
            let request = request(&body, &signature);
            block_on(std::future::poll_fn(|cx| {
                Service::<Request<Frames>>::poll_ready(&mut layered, cx)
            }))
            .ok();
            let response = block_on(layered.call(request)).unwrap_or_else(|e| match e {});
            assert_eq!(response.status(), 200);
            response
        })
    });
    group.finish();
}

criterion_group!(benches, throughput, overhead);
criterion_main!(benches);
