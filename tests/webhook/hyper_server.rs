//! The layer in front of a plain hyper 1 server, without axum.

use crate::common;

use std::convert::Infallible;

use common::*;
use genesys_webhook::signature::{sign_genesys, sign_open_messaging};
use genesys_webhook::{GenesysSignatureLayer, VerifiedBody, VerifiedSignature};
use http::{Request, Response};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;

async fn serve_hyper() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = ServiceBuilder::new()
        .layer(
            GenesysSignatureLayer::builder()
                .secret("hyper-secret")
                .max_body_bytes(4096)
                .build()
                .unwrap(),
        )
        .service_fn(|request: Request<VerifiedBody>| async move {
            let index = request
                .extensions()
                .get::<VerifiedSignature>()
                .map(|v| v.secret_index())
                .unwrap_or(usize::MAX);
            let body = request.into_body().into_bytes();
            Ok::<_, Infallible>(
                Response::builder()
                    .header("x-secret-index", index.to_string())
                    .body(http_body_util::Full::new(body))
                    .unwrap(),
            )
        });
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn plain_hyper_handler_receives_the_verified_bytes() {
    let addr = serve_hyper().await;
    let body = br#"{"type":"Text","text":"Hello","direction":"Outbound"}"#;
    let om = sign_open_messaging("hyper-secret", body);
    let response = post_bytes(addr, "/", &[("X-Hub-Signature-256", om.as_str())], body).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, body);
    assert_eq!(response.header("x-secret-index"), Some("0"));

    let chunks: Vec<&[u8]> = body.chunks(5).collect();
    let hex = sign_genesys("hyper-secret", body);
    let response = post_chunked(addr, "/", &[("X-Genesys-Signature", hex.as_str())], &chunks).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, body);
}

#[tokio::test]
async fn plain_hyper_rejections() {
    let addr = serve_hyper().await;
    let body = b"{}";
    let wrong = sign_genesys("other", body);
    let response = post_bytes(addr, "/", &[("X-Genesys-Signature", wrong.as_str())], body).await;
    assert_eq!(response.status, 401);
    assert_eq!(response.text(), r#"{"error":"invalid_signature"}"#);

    let large = vec![b' '; 4097];
    let sig = sign_genesys("hyper-secret", &large);
    let response = post_bytes(addr, "/", &[("X-Genesys-Signature", sig.as_str())], &large).await;
    assert_eq!(response.status, 413);
}
