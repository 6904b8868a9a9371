//! The operator console at `/console`: a small framework-free page, embedded in the
//! binary, over the documented admin API.
//!
//! Layout: [`session`] (the stateless session cookie and its CSRF token), `pages`
//! (login, logout, the page and its assets, under a strict Content-Security-Policy),
//! [`flow`] (the live flow snapshots every console shares),
//! [`playground`] (trying mappers out without touching the outbox). The JSON the page
//! reads and writes is the admin API (`super::admin`); this module only serves the page
//! and holds the state those admin routes share. Its settings, [`ConsoleConfig`], live
//! with the others in [`crate::config`].

pub mod flow;
mod pages;
pub mod playground;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, Method};
use tokio::sync::watch;

pub use crate::config::ConsoleConfig;
use flow::FlowHub;
use playground::Playground;
use session::{SessionError, SessionKey};

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
    /// The CloudEvents `source` envelopes carry (`EVENT_SOURCE`), for the playground.
    event_source: String,
    flow: Arc<FlowHub>,
    playground: Playground,
    /// Turns true when the host starts shutting down: live streams end then, or they
    /// would hold the graceful shutdown open.
    closing: watch::Sender<bool>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// The console of a host whose admin token is `admin_token` (`None`: disabled) and
    /// whose envelopes carry `event_source`.
    pub fn new(config: ConsoleConfig, admin_token: Option<&str>, event_source: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                key: admin_token.map(SessionKey::from_admin_token),
                event_source,
                flow: Arc::default(),
                playground: Playground::new(),
                config,
                closing: watch::channel(false).0,
            }),
        }
    }

    pub fn config(&self) -> &ConsoleConfig {
        &self.inner.config
    }

    /// The session key (`None` when the admin API is disabled).
    pub fn session_key(&self) -> Option<&SessionKey> {
        self.inner.key.as_ref()
    }

    pub fn event_source(&self) -> &str {
        &self.inner.event_source
    }

    pub fn flow(&self) -> &Arc<FlowHub> {
        &self.inner.flow
    }

    pub fn playground(&self) -> &Playground {
        &self.inner.playground
    }

    /// A receiver that turns true when the host starts shutting down.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// Ends the live streams (and the flow ticker): call it when shutdown begins.
    pub fn shut_down(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Authorises an admin request made with session cookie `cookie`: the session must
    /// verify, and a state-changing method must carry the session's CSRF token.
    pub(crate) fn authorize(
        &self,
        cookie: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<(), ApiError> {
        let key = self.session_key().ok_or_else(|| {
            ApiError::NotFound("the admin API is disabled: set ADMIN_TOKEN to enable it".into())
        })?;
        key.verify(cookie, session::unix_now())
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
        Ok(())
    }
}

/// The console's page routes.
pub(super) fn router() -> Router<AppState> {
    pages::router()
}
