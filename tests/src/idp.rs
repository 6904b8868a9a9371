//! A stand-in identity provider: signing keys made for the test run (RSA, EC P-256 and
//! P-384, Ed25519; nothing is committed) and a JWKS server (axum on port 0, over plain
//! HTTP or over TLS with a certificate from a CA made for the run) that publishes their
//! public halves, can rotate and withdraw them, go down and come back, and counts the
//! requests it answered.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};
use serde_json::{Value, json};

use crate::app::Options;

/// A private key of the provider, with its key id and algorithm.
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl SigningKey {
    /// A fresh key for `alg` (RSA 2048 bits for RS*/PS*, P-256 for ES256, P-384 for
    /// ES384, Ed25519 for EdDSA), published as `kid` with its `alg`.
    pub fn generate(kid: &str, alg: Algorithm) -> Self {
        let encoding = match alg.family() {
            AlgorithmFamily::Rsa => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("RSA key");
                EncodingKey::from_rsa_der(key.to_pkcs1_der().expect("PKCS#1").as_bytes())
            }
            AlgorithmFamily::Ec if alg == Algorithm::ES256 => {
                use p256::pkcs8::EncodePrivateKey;
                let key = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()).expect("scalar");
                EncodingKey::from_ec_der(key.to_pkcs8_der().expect("PKCS#8").as_bytes())
            }
            AlgorithmFamily::Ec => {
                use p384::pkcs8::EncodePrivateKey;
                let key = p384::SecretKey::from_slice(&rand::random::<[u8; 48]>()).expect("scalar");
                EncodingKey::from_ec_der(key.to_pkcs8_der().expect("PKCS#8").as_bytes())
            }
            AlgorithmFamily::Ed => {
                // PKCS#8 of an Ed25519 seed (RFC 8410): a fixed prefix, then the 32 bytes.
                let mut der = vec![
                    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04,
                    0x22, 0x04, 0x20,
                ];
                der.extend(rand::random::<[u8; 32]>());
                EncodingKey::from_ed_der(&der)
            }
            AlgorithmFamily::Hmac => panic!("a provider publishes no symmetric key"),
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("public JWK");
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Self {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk: serde_json::to_value(jwk).expect("JWK as JSON"),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK the provider publishes.
    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// The public JWK without `alg` (the host then goes by `kty` and `crv`).
    pub fn jwk_without_alg(&self) -> Value {
        let mut jwk = self.jwk();
        jwk.as_object_mut().expect("an object").remove("alg");
        jwk
    }

    /// A token with `claims`, its header naming this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signed")
    }

    /// A token signed with this key under `alg` (of the same family), naming `kid`.
    pub fn sign_as(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signed")
    }
}

/// Claims for `user` valid for ten minutes, plus `extra` (e.g. `iss`, `aud`).
pub fn claims_for(user: &str, extra: &Value) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let mut claims = json!({"sub": user, "iat": now, "exp": now + 600});
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        claims.extend(extra.clone());
    }
    claims
}

struct Published {
    keys: Vec<Value>,
    up: bool,
    cache_control: Option<String>,
    requests: usize,
}

/// A private CA made for the run, and a server certificate it signed for `localhost` and
/// `127.0.0.1`.
pub struct TlsIdentity {
    /// The CA certificate, PEM (what `JWT_JWKS_CA_FILE` holds).
    pub ca_pem: String,
    config: Arc<tokio_rustls::rustls::ServerConfig>,
}

impl TlsIdentity {
    pub fn generate() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        };
        use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let server_key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("server parameters");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .expect("server TLS configuration");
        Self {
            ca_pem: ca_cert.pem(),
            config: Arc::new(config),
        }
    }
}

/// The provider's JWKS endpoint, `GET /jwks`.
pub struct JwksServer {
    addr: SocketAddr,
    tls: bool,
    state: Arc<Mutex<Published>>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    /// Serves `keys` (public JWKs) over plain HTTP on a free port.
    pub async fn start(keys: Vec<Value>) -> Self {
        Self::start_with(keys, None).await
    }

    /// Serves `keys` over TLS with `identity`'s certificate, as `https://localhost:PORT`.
    pub async fn start_tls(keys: Vec<Value>, identity: &TlsIdentity) -> Self {
        Self::start_with(keys, Some(identity.config.clone())).await
    }

    async fn start_with(
        keys: Vec<Value>,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    ) -> Self {
        let state = Arc::new(Mutex::new(Published {
            keys,
            up: true,
            cache_control: None,
            requests: 0,
        }));
        let router = Router::new()
            .route("/jwks", get(serve))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let with_tls = tls.is_some();
        let task = tokio::spawn(async move {
            match tls {
                None => axum::serve(listener, router).await.expect("JWKS server"),
                Some(config) => serve_tls(listener, router, config).await,
            }
        });
        Self {
            addr,
            tls: with_tls,
            state,
            task,
        }
    }

    /// `JWT_JWKS_URL` for this server.
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}/jwks", self.addr.port())
        } else {
            format!("http://{}/jwks", self.addr)
        }
    }

    /// Host settings that trust this provider (on top of the harness's defaults).
    pub fn options(&self) -> Options {
        Options::default().set("JWT_JWKS_URL", self.url())
    }

    /// Publishes `keys` from now on (a rotation, a withdrawal).
    pub fn publish(&self, keys: Vec<Value>) {
        self.lock().keys = keys;
    }

    /// Down: every request is answered 503 (still counted). Up: the set again.
    pub fn set_up(&self, up: bool) {
        self.lock().up = up;
    }

    /// The `Cache-Control` header of the answers (none by default).
    pub fn set_cache_control(&self, value: &str) {
        self.lock().cache_control = Some(value.to_owned());
    }

    /// Requests answered so far, up or down.
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Published> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts TLS connections and serves `router` on each (HTTP/1.1).
async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    config: Arc<tokio_rustls::rustls::ServerConfig>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            // A client that refuses the certificate ends the handshake: nothing to serve.
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn serve(State(state): State<Arc<Mutex<Published>>>) -> Response {
    let mut published = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    published.requests += 1;
    if !published.up {
        return (StatusCode::SERVICE_UNAVAILABLE, "identity provider down").into_response();
    }
    let body = json!({ "keys": published.keys }).to_string();
    let mut response = ([(header::CONTENT_TYPE, "application/jwk-set+json")], body).into_response();
    if let Some(value) = &published.cache_control
        && let Ok(value) = value.parse()
    {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}
