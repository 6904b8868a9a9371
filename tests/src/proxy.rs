//! A TCP proxy that can pause: what a host sees when its database stalls (a network
//! partition, a storage hiccup, a failover in progress) without any connection closing.
//! [`PausableProxy::pause`] holds every byte in both directions, on open connections and
//! on new ones alike; [`PausableProxy::resume`] lets them flow again where they stopped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy from a local port to `upstream`.
pub struct PausableProxy {
    pub addr: SocketAddr,
    pub upstream: SocketAddr,
    paused: watch::Sender<bool>,
    connections: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

/// Waits until the proxy is not paused.
async fn flowing(paused: &mut watch::Receiver<bool>) {
    // The sender lives as long as the proxy; if it is gone, nothing holds traffic.
    let _ = paused.wait_for(|p| !*p).await;
}

/// Copies `from` to `to`, holding whatever it read while the proxy is paused.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        flowing(&mut paused).await;
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Bytes read just before a pause wait for the resume too.
        flowing(&mut paused).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl PausableProxy {
    /// Listens on a free 127.0.0.1 port and forwards each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (paused, _) = watch::channel(false);
        let connections = Arc::new(AtomicUsize::new(0));
        let (gate, count) = (paused.subscribe(), connections.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                let mut rx = gate.clone();
                tokio::spawn(async move {
                    // A connection opened during a pause reaches nothing until the resume.
                    flowing(&mut rx).await;
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pipe(client_read, server_write, rx.clone()),
                        pipe(server_read, client_write, rx),
                    );
                });
            }
        });
        Self {
            addr,
            upstream,
            paused,
            connections,
            server,
        }
    }

    /// A proxy in front of the PostgreSQL server of `url`; returns it and `url` rewritten
    /// to go through it.
    pub async fn for_postgres(url: &str) -> (Self, String) {
        let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
        let (user, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let upstream = match authority.rsplit_once(':') {
            Some((host, port)) => format!("{host}:{port}"),
            None => format!("{authority}:5432"),
        };
        let upstream: SocketAddr = tokio::net::lookup_host(upstream.as_str())
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("resolve the PostgreSQL server {upstream}"));
        let proxy = Self::start(upstream).await;
        let user = if user.is_empty() {
            String::new()
        } else {
            format!("{user}@")
        };
        let proxied = format!("{scheme}://{user}{}/{path}", proxy.addr);
        (proxy, proxied)
    }

    /// Holds all traffic from now on; connections stay open.
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Lets traffic flow again.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for PausableProxy {
    fn drop(&mut self) {
        self.server.abort();
        // Open connections end with the test's runtime; let them drain meanwhile.
        self.paused.send_replace(false);
    }
}
