//! One GET of the JWK set: hyper's HTTP/1 client over TCP, or over rustls (with `ring`)
//! for `https://`, the whole exchange under `JWT_JWKS_TIMEOUT`.
//!
//! Why not reqwest: the workspace builds it without TLS, and its rustls features either
//! bring aws-lc (a C toolchain) or make every client in the process (the Dapr publisher,
//! the OTLP exporter) panic unless a process-wide crypto provider was installed first.
//! One GET every few minutes needs neither pooling nor redirects, so this client is small
//! and touches nothing else. Trust: Mozilla's roots (`webpki-roots`, built in, so the image
//! needs no CA bundle) plus the PEM certificates of `JWT_JWKS_CA_FILE` (a private CA).
//! Redirects are not followed: the URL must be the set's own.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{ACCEPT, HOST, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

use super::schedule::{Freshness, freshness};

/// The largest JWK set read (real ones are a few KiB).
const MAX_BODY_BYTES: usize = 1 << 20;

/// A validated `JWT_JWKS_URL`: `https://`, or `http://` to a loopback host only, with no
/// credentials in it.
#[derive(Debug, Clone)]
pub struct JwksUrl {
    uri: Uri,
    host: String,
    port: u16,
    tls: bool,
}

impl JwksUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let uri: Uri = raw.trim().parse().map_err(|e| format!("not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("must be an https:// URL".into()),
        };
        let authority = uri.authority().ok_or("must name a host")?;
        if authority.as_str().contains('@') {
            return Err("must not hold credentials".into());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err("must name a host".into());
        }
        if !tls && !is_loopback(host) {
            return Err(
                "must be https:// (plain http:// is allowed only for localhost, 127.0.0.0/8 and [::1])"
                    .into(),
            );
        }
        Ok(Self {
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            host: host.to_owned(),
            uri,
            tls,
        })
    }
}

impl std::fmt::Display for JwksUrl {
    /// The URL without its query (which logs and `/readyz` need not show).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        let authority = self.uri.authority().map_or("", |a| a.as_str());
        write!(f, "{scheme}://{authority}{}", self.uri.path())
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Why a fetch failed; the message is for logs and `/readyz` (it holds no secret).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("the provider answered HTTP {0}{hint}", hint = if .0.is_redirection() { " (redirects are not followed: set JWT_JWKS_URL to the final URL)" } else { "" })]
    Status(StatusCode),
    #[error("the response is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    Invalid(String),
}

/// A fetched document and what the provider said about caching it.
pub(crate) struct Fetched {
    pub(crate) body: Bytes,
    pub(crate) freshness: Freshness,
}

/// Fetches one URL's JWK set.
pub(crate) struct Fetcher {
    url: JwksUrl,
    tls: TlsConnector,
    timeout: Duration,
}

impl Fetcher {
    /// A fetcher trusting Mozilla's roots and the certificates of `ca_file`.
    pub(crate) fn new(
        url: JwksUrl,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(file) = ca_file {
            let certs = CertificateDer::pem_file_iter(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let mut added = 0;
            for cert in certs {
                let cert = cert.map_err(|e| format!("{}: {e}", file.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("{} holds no PEM certificate", file.display()));
            }
        }
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS set-up: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            url,
            tls: TlsConnector::from(Arc::new(config)),
            timeout,
        })
    }

    pub(crate) fn url(&self) -> &JwksUrl {
        &self.url
    }

    /// GETs the set: 200 with a body of at most 1 MiB, within the timeout.
    pub(crate) async fn fetch(&self) -> Result<Fetched, FetchError> {
        tokio::time::timeout(self.timeout, self.exchange())
            .await
            .unwrap_or(Err(FetchError::Timeout(self.timeout)))
    }

    async fn exchange(&self) -> Result<Fetched, FetchError> {
        let url = &self.url;
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(FetchError::Connect)?;
        let _ = tcp.set_nodelay(true);
        if !url.tls {
            return self.get(tcp).await;
        }
        let name = ServerName::try_from(url.host.clone())
            .map_err(|e| FetchError::Invalid(format!("not a TLS server name: {e}")))?;
        let stream = self.tls.connect(name, tcp).await.map_err(FetchError::Tls)?;
        self.get(stream).await
    }

    async fn get<IO>(&self, io: IO) -> Result<Fetched, FetchError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io)).await?;
        let mut connection = std::pin::pin!(connection);
        let request = Request::get(self.url.uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(HOST, self.url.uri.authority().map_or("", |a| a.as_str()))
            .header(ACCEPT, "application/jwk-set+json, application/json")
            .header(USER_AGENT, concat!("pakaura/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| FetchError::Invalid(format!("cannot build the request: {e}")))?;
        // The connection is driven beside the request, in this task: when the timeout
        // drops the future, the socket goes with it.
        let response = tokio::select! {
            biased;
            response = sender.send_request(request) => response?,
            closed = &mut connection => {
                closed?;
                return Err(FetchError::Invalid("the provider closed the connection".into()));
            }
        };
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        let freshness = freshness(response.headers());
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES).collect();
        let mut body = std::pin::pin!(body);
        let collected = tokio::select! {
            biased;
            collected = &mut body => collected,
            closed = &mut connection => {
                closed?;
                body.await
            }
        };
        let body = collected
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge
                } else {
                    FetchError::Invalid(format!("reading the response failed: {e}"))
                }
            })?
            .to_bytes();
        Ok(Fetched { body, freshness })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_or_loopback_http_only() {
        for ok in [
            "https://idp.example.com/realms/acme/protocol/openid-connect/certs",
            "https://tenant.eu.auth0.com/.well-known/jwks.json",
            "http://localhost:8080/jwks",
            "http://127.0.0.1:9000/jwks",
            "http://127.1.2.3/jwks",
            "http://[::1]:9000/jwks",
        ] {
            assert!(JwksUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example.com/jwks",
            "http://10.0.0.1/jwks",
            "ftp://idp.example.com/jwks",
            "https://user:pw@idp.example.com/jwks",
            "idp.example.com/jwks",
            "/jwks",
        ] {
            assert!(JwksUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_url_is_shown_without_its_query() {
        let url = JwksUrl::parse("https://idp.example.com:8443/certs?x=1").unwrap();
        assert_eq!(url.to_string(), "https://idp.example.com:8443/certs");
        assert_eq!(url.port, 8443);
        assert_eq!(
            JwksUrl::parse("https://idp.example.com/").unwrap().port,
            443
        );
    }
}
