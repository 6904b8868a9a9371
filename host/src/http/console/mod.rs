//! The operator console at `/console`: a small framework-free page, embedded in the
//! binary, over the documented admin API.
//!
//! Layout: [`session`] (the stateless session cookie and its CSRF token), `pages`
//! (login, logout, the page and its assets, under a strict Content-Security-Policy).
//! The JSON the page reads and writes is the admin API (`super::admin`), whose work is
//! the operator layer's ([`crate::operator`]: the live flow, the playground); this
//! module only serves the page and holds the sessions. Its settings,
//! [`ConsoleConfig`], live with the others in [`crate::config`].

mod pages;
pub mod session;
mod throttle;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, Method};
use tokio::sync::watch;

pub use crate::config::ConsoleConfig;
use session::{SessionError, SessionKey};

use crate::auth::AdminTokens;

use super::AppState;
use super::error::ApiError;

/// What the console's routes share. Cheap to clone.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

struct Inner {
    config: ConsoleConfig,
    /// `None` when the admin API is disabled (no `ADMIN_TOKEN`).
    key: Option<SessionKey>,
    /// Turns true when the host starts shutting down: live streams end then, or they
    /// would hold the graceful shutdown open.
    closing: watch::Sender<bool>,
    /// Refused logins wait longer each time.
    throttle: throttle::LoginThrottle,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// The console of a host whose operators' tokens are `tokens` (`None`: disabled).
    pub fn new(config: ConsoleConfig, tokens: Option<&AdminTokens>) -> Self {
        Self {
            inner: Arc::new(Inner {
                key: tokens.map(|t| SessionKey::from_secret(t.session_secret())),
                config,
                closing: watch::channel(false).0,
                throttle: throttle::LoginThrottle::default(),
            }),
        }
    }

    pub fn config(&self) -> &ConsoleConfig {
        &self.inner.config
    }

    /// The refused-login throttle.
    pub(crate) fn login_throttle(&self) -> &throttle::LoginThrottle {
        &self.inner.throttle
    }

    /// The session key (`None` when the admin API is disabled).
    pub fn session_key(&self) -> Option<&SessionKey> {
        self.inner.key.as_ref()
    }

    /// A receiver that turns true when the host starts shutting down.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// Ends the live streams: call it when shutdown begins.
    pub fn shut_down(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Authorises an admin request made with session cookie `cookie`: the session must
    /// verify, and a state-changing method must carry the session's CSRF token. Returns
    /// the operator's name.
    pub(crate) fn authorize(
        &self,
        cookie: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<String, ApiError> {
        let key = self.session_key().ok_or_else(|| {
            ApiError::NotFound("the admin API is disabled: set ADMIN_TOKEN to enable it".into())
        })?;
        let (name, _) = key
            .verify(cookie, session::unix_now())
            .map_err(|e: SessionError| ApiError::Unauthorized(e.to_string()))?;
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = headers
                .get(session::CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !key.csrf_matches(cookie, sent) {
                return Err(ApiError::Forbidden(format!(
                    "a console request that changes something must carry the session's `{}` header",
                    session::CSRF_HEADER
                )));
            }
        }
        Ok(name)
    }
}

/// The console's page routes.
pub(super) fn router() -> Router<AppState> {
    pages::router()
}
