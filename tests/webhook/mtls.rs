//! Data Actions with mutual TLS (README, "Data Actions: mutual TLS"): an axum server
//! terminating TLS with rustls, requiring a client certificate chained to a configured
//! CA bundle, checking its DNS name against the region's Data Actions name, and handing
//! the verified name to handlers as an extension. The CA is made at test time; the
//! Genesys regional CA is not needed.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::post;
use axum::{Extension, Router};
use genesys_webhook::cloud::Region;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The client certificate's name, verified: what a handler extracts.
#[derive(Debug, Clone)]
struct DataActionsClient(String);

/// Requires a client certificate chained to `ca_bundle` (PEM: the Genesys regional CA
/// the user downloaded), serving `server_chain` with `server_key`.
fn tls_config(
    ca_bundle: &[u8],
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in rustls_pemfile(ca_bundle) {
        roots.add(ca).unwrap();
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(server_chain, server_key)
        .unwrap();
    Arc::new(config)
}

/// PEM certificates, through rustls' own PEM reader.
fn rustls_pemfile(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .map(Result::unwrap)
        .collect()
}

/// Whether the (already chain-verified) client certificate is valid for `expected`.
fn certificate_names(der: &CertificateDer<'_>, expected: &str) -> bool {
    let Ok(certificate) = webpki::EndEntityCert::try_from(der) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(expected) else {
        return false;
    };
    certificate.verify_is_valid_for_subject_name(&name).is_ok()
}

/// Accepts TLS connections; each one whose client certificate names `expected` is
/// served `app` with a [`DataActionsClient`] extension, the others a 403.
async fn serve_mtls(
    listener: tokio::net::TcpListener,
    tls: Arc<ServerConfig>,
    expected: String,
    app: Router,
) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, app, expected) = (acceptor.clone(), app.clone(), expected.clone());
        tokio::spawn(async move {
            // A handshake without a certificate chained to the CA fails here.
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let verified = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .is_some_and(|leaf| certificate_names(leaf, &expected));
            let app = if verified {
                app.layer(Extension(DataActionsClient(expected)))
            } else {
                Router::new().fallback(|| async {
                    (
                        http::StatusCode::FORBIDDEN,
                        r#"{"error":"client_certificate_not_allowed"}"#,
                    )
                })
            };
            let service = TowerToHyperService::new(app);
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Authority {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A leaf for `names`, for a client or a server.
    fn issue(&self, names: &[&str], client: bool) -> (String, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key)
    }
}

struct Server {
    addr: SocketAddr,
    server_ca: String,
}

async fn start(client_ca: &Authority, expected: String) -> Server {
    let server_authority = Authority::new("Receiver CA");
    let (server_pem, server_key) = server_authority.issue(&["127.0.0.1"], false);
    let tls = tls_config(
        client_ca.cert.pem().as_bytes(),
        rustls_pemfile(server_pem.as_bytes()),
        PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
    );
    let app = Router::new().route(
        "/actions/lookup",
        post(
            |Extension(client): Extension<DataActionsClient>| async move {
                format!("hello {}", client.0)
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_mtls(listener, tls, expected, app));
    Server {
        addr,
        server_ca: server_authority.cert.pem(),
    }
}

/// Posts as Genesys would, presenting `identity` (certificate and key, PEM) if any.
async fn call(
    server: &Server,
    identity: Option<(String, KeyPair)>,
) -> Result<(u16, String), reqwest::Error> {
    let mut client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(server.server_ca.as_bytes()).unwrap());
    if let Some((cert, key)) = identity {
        let pem = format!("{cert}\n{}", key.serialize_pem());
        client = client.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    let response = client
        .build()
        .unwrap()
        .post(format!("https://{}/actions/lookup", server.addr))
        .body("{}")
        .send()
        .await?;
    Ok((response.status().as_u16(), response.text().await?))
}

#[tokio::test]
async fn a_client_certificate_from_the_ca_with_the_regions_name_reaches_the_handler() {
    let genesys_ca = Authority::new("Test Genesys Data Actions CA");
    let expected = Region::UsEast1.data_actions_client_name();
    let server = start(&genesys_ca, expected.clone()).await;
    let answer = call(&server, Some(genesys_ca.issue(&[&expected], true)))
        .await
        .unwrap();
    assert_eq!(answer, (200, format!("hello {expected}")));
}

#[tokio::test]
async fn another_regions_name_from_the_same_ca_is_refused_403() {
    let genesys_ca = Authority::new("Test Genesys Data Actions CA");
    let server = start(&genesys_ca, Region::UsEast1.data_actions_client_name()).await;
    let other = Region::UsWest2.data_actions_client_name();
    let answer = call(&server, Some(genesys_ca.issue(&[&other], true)))
        .await
        .unwrap();
    assert_eq!(answer.0, 403);
    assert!(answer.1.contains("client_certificate_not_allowed"));
}

#[tokio::test]
async fn no_certificate_or_one_from_another_ca_fails_the_handshake() {
    let genesys_ca = Authority::new("Test Genesys Data Actions CA");
    let expected = Region::UsEast1.data_actions_client_name();
    let server = start(&genesys_ca, expected.clone()).await;
    assert!(call(&server, None).await.is_err(), "no client certificate");
    let impostor = Authority::new("Impostor CA");
    assert!(
        call(&server, Some(impostor.issue(&[&expected], true)))
            .await
            .is_err(),
        "the right name from another CA"
    );
}
