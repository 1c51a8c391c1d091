//! What the head-only middlewares add to a request, measured side by side with the
//! inner service alone in the same run:
//!
//! - `source_allowlist_10000/*`: the source allowlist holding 10,000 ranges (random
//!   IPv4 blocks, as many as the largest published lists and then some), for an
//!   address inside one range (admitted) and one outside every range (refused 403),
//!   next to the inner service called directly;
//! - `bot_credentials/*`: the Bot Connector's credential check, one header.
//!
//! `cargo bench --bench gates`, then `python3 scripts/criterion_ratios.py` prints the
//! differences BENCHMARKS.md reports.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use criterion::{criterion_group, criterion_main, Criterion};
use genesys_webhook::botconnector::BotCredentialsLayer;
use genesys_webhook::source::{Cidr, SourceAllowlistLayer, SourceRanges};
use http::{Request, Response};
use tower::{Layer, Service};

/// The inner service: answers at once.
fn inner() -> impl Service<Request<()>, Response = Response<String>, Error = Infallible> + Clone {
    tower::service_fn(|_request: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    })
}

fn request(peer: IpAddr) -> Request<()> {
    let mut request = Request::builder()
        .method("POST")
        .uri("/webhook/receive")
        .header("x-bot-connector-secret", "bench-secret-value")
        .body(())
        .unwrap();
    request
        .extensions_mut()
        .insert(SocketAddr::new(peer, 40_000));
    request
}

/// Calls `service` once, as a server would: ready, then call.
fn once<S>(service: &mut S, request: Request<()>) -> u16
where
    S: Service<Request<()>>,
    S::Response: Status,
    S::Error: std::fmt::Debug,
{
    futures_executor::block_on(std::future::poll_fn(|cx| service.poll_ready(cx))).unwrap();
    futures_executor::block_on(service.call(request))
        .unwrap()
        .status()
}

trait Status {
    fn status(&self) -> u16;
}

impl<B> Status for Response<B> {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// 10,000 blocks of /16 to /28 at random (a fixed seed), none covering 10.0.0.0/8.
fn ten_thousand_ranges() -> (SourceRanges, IpAddr) {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut blocks = Vec::with_capacity(10_000);
    while blocks.len() < 10_000 {
        let address = Ipv4Addr::from(next() as u32);
        if address.octets()[0] == 10 {
            continue;
        }
        blocks.push(Cidr::new(IpAddr::V4(address), 16 + (next() % 13) as u8).unwrap());
    }
    let inside = blocks[5_000].address();
    (SourceRanges::new(blocks), inside)
}

fn source_allowlist(c: &mut Criterion) {
    let (ranges, inside) = ten_thousand_ranges();
    let outside = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let layer = SourceAllowlistLayer::new(ranges).unwrap();
    let mut group = c.benchmark_group("source_allowlist_10000");
    let mut direct = inner();
    group.bench_function("inner_direct", |b| {
        b.iter(|| assert_eq!(once(&mut direct, request(inside)), 200))
    });
    let mut layered = layer.layer(inner());
    group.bench_function("admitted", |b| {
        b.iter(|| assert_eq!(once(&mut layered, request(inside)), 200))
    });
    group.bench_function("refused", |b| {
        b.iter(|| assert_eq!(once(&mut layered, request(outside)), 403))
    });
    group.finish();
}

fn bot_credentials(c: &mut Criterion) {
    let layer = BotCredentialsLayer::new("X-Bot-Connector-Secret", "bench-secret-value").unwrap();
    let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut group = c.benchmark_group("bot_credentials");
    let mut direct = inner();
    group.bench_function("inner_direct", |b| {
        b.iter(|| assert_eq!(once(&mut direct, request(peer)), 200))
    });
    let mut layered = layer.layer(inner());
    group.bench_function("admitted", |b| {
        b.iter(|| assert_eq!(once(&mut layered, request(peer)), 200))
    });
    group.finish();
}

criterion_group!(benches, source_allowlist, bot_credentials);
criterion_main!(benches);
