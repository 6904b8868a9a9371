//! `GET /admin/flow/stream`: the live event flow as server-sent events;
//! `GET /admin/flow/history`: its last hour.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};

use crate::http::AppState;
use crate::http::auth::Admin;
use crate::operator::flow::{FlowPoint, FlowSnapshot, LONG_EVERY};

/// One `snapshot` event.
fn event(snapshot: &FlowSnapshot) -> Result<Event, Infallible> {
    Ok(Event::default()
        .event("snapshot")
        .json_data(snapshot)
        .unwrap_or_else(|_| Event::default().comment("unserialisable snapshot")))
}

/// The event flow, live (server-sent events).
///
/// First the snapshots of the last few minutes (oldest first), then one `snapshot`
/// event every 2 seconds; each event's data is one FlowSnapshot as JSON. Snapshots are
/// taken once per interval for all subscribers; the stream ends when the host stops.
#[utoipa::path(get, path = "/admin/flow/stream", tag = "admin",
    responses((status = 200, content_type = "text/event-stream",
        description = "Server-sent events named `snapshot`, each carrying one FlowSnapshot as JSON data, every 2 seconds (comments keep the connection alive)",
        body = FlowSnapshot)))]
pub(super) async fn stream(
    _: Admin,
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let subscription = state.operator.flow();
    let history = stream::iter(subscription.history).map(|s| event(&s));
    let live = stream::unfold(
        (subscription.updates, state.console.stopping()),
        |(mut updates, mut stop)| async move {
            loop {
                tokio::select! {
                    changed = updates.changed() => changed.ok()?,
                    _ = stop.wait_for(|s| *s) => return None,
                }
                let latest: Option<Arc<FlowSnapshot>> = updates.borrow_and_update().clone();
                if let Some(snapshot) = latest {
                    return Some((event(&snapshot), (updates, stop)));
                }
            }
        },
    );
    Sse::new(history.chain(live)).keep_alive(KeepAlive::default())
}

/// `GET /admin/flow/history`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct FlowHistory {
    /// Seconds between two points.
    interval_seconds: u64,
    /// The last hour (since this process started, if less), oldest first.
    points: Vec<FlowPoint>,
}

/// The flow's last hour.
///
/// One point every 30 seconds, kept by the host whether or not a console watches:
/// the backlog, the lag, open dead letters, held tasks and this replica's rates.
#[utoipa::path(get, path = "/admin/flow/history", tag = "admin",
    responses((status = 200, body = FlowHistory)))]
pub(super) async fn history(_: Admin, State(state): State<AppState>) -> axum::Json<FlowHistory> {
    axum::Json(FlowHistory {
        interval_seconds: LONG_EVERY.as_secs(),
        points: state.operator.flow_history(),
    })
}
