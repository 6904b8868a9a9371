//! `/mcp`: the task tools over MCP (Streamable HTTP). Same bearer JWT, same rules
//! and the same operations as REST ([`crate::tasks::TaskService`]); mutations are
//! recorded with origin `mcp` and publish the same events.
//!
//! The service is stateless (no MCP sessions), so any replica can answer any
//! request. Authentication happens before a request reaches the MCP service; the
//! tools read the caller from the request's extensions.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::schemars::JsonSchema;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, tool, tool_router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::AuthUser;
use super::context::RequestContext;
use super::error::ApiError;
use super::tasks::model::{
    Cleared, CreateTask, ListParams, TaskPage, TaskView, UpdateTask, parse_task_id,
};
use crate::domain::{MutationContext, Origin, ValidationError};
use crate::store::StoreError;
use crate::tasks::{TaskError, TaskService};

/// The MCP endpoint, behind bearer authentication.
pub(super) fn router(state: AppState) -> Router<AppState> {
    let tools_state = state.clone();
    let mut config = StreamableHttpServerConfig::default();
    // Stateless JSON answers: no session to pin a client to one replica.
    config.legacy_session_mode = false;
    config.json_response = true;
    // Every request carries a bearer token, so DNS-rebinding protection by Host
    // name adds nothing and would refuse the cluster's own service names.
    let config = config.disable_allowed_hosts();
    let service = StreamableHttpService::new(
        move || {
            Ok(TaskTools {
                tasks: tools_state.tasks.clone(),
            })
        },
        NeverSessionManager::default().into(),
        config,
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(state, authenticate))
}

/// Verifies the bearer token and hands the caller to the tools.
async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    match <AuthUser as axum::extract::FromRequestParts<AppState>>::from_request_parts(
        &mut parts, &state,
    )
    .await
    {
        Ok(user) => {
            parts.extensions.insert(user);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => e.into_response(),
    }
}

/// The tools; one instance per request.
#[derive(Clone)]
pub(crate) struct TaskTools {
    tasks: TaskService,
}

/// A task named by its id.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskRef {
    /// The task's UUID.
    id: String,
}

/// `update_task`: the task and the fields to change; `null` clears description or due date.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateTaskArgs {
    /// The task's UUID.
    id: String,
    /// New title: trimmed, 1–500 characters.
    #[serde(default, deserialize_with = "super::tasks::model::present")]
    title: Option<Option<String>>,
    /// New description; null clears it.
    #[serde(default, deserialize_with = "super::tasks::model::present")]
    description: Option<Option<String>>,
    /// New due date (RFC 3339); null clears it.
    #[serde(default, deserialize_with = "super::tasks::model::present")]
    due_date: Option<Option<String>>,
}

impl TaskTools {
    /// `complete_task` and `uncomplete_task`.
    async fn set_completed(
        &self,
        parts: &axum::http::request::Parts,
        id: &str,
        completed: bool,
    ) -> Result<CallToolResult, ErrorData> {
        let (user, ctx) = caller(parts)?;
        answer(
            async {
                let id = parse_task_id(id)?;
                let task = self.tasks.set_completed(&user, id, completed, &ctx).await?;
                Ok(TaskView::from(task))
            }
            .await,
        )
    }
}

/// Who is calling, from the request the tool runs in.
fn caller(parts: &axum::http::request::Parts) -> Result<(String, MutationContext), ErrorData> {
    let user = parts
        .extensions
        .get::<AuthUser>()
        .ok_or_else(|| ErrorData::internal_error("request not authenticated", None))?;
    let ctx = parts.extensions.get::<RequestContext>().map_or_else(
        || MutationContext {
            origin: Origin::Mcp,
            correlation_id: uuid::Uuid::new_v4().to_string(),
            traceparent: None,
        },
        |c| c.mutation(Origin::Mcp),
    );
    Ok((user.0.clone(), ctx))
}

/// Why a tool call did not succeed.
enum ToolFailure {
    /// The request was refused: the caller reads the problem document (status, field, detail).
    Refused(ApiError),
    /// The database failed: logged, never detailed to the caller.
    Internal(StoreError),
}

impl From<ApiError> for ToolFailure {
    fn from(refusal: ApiError) -> Self {
        Self::Refused(refusal)
    }
}

impl From<ValidationError> for ToolFailure {
    fn from(invalid: ValidationError) -> Self {
        Self::Refused(invalid.into())
    }
}

impl From<TaskError> for ToolFailure {
    fn from(e: TaskError) -> Self {
        match e {
            // A busy database is a refusal the caller can act on (retry), not an
            // internal error.
            TaskError::Store(cause) if !cause.is_transient() => Self::Internal(cause),
            refusal => Self::Refused(refusal.into()),
        }
    }
}

/// A tool's answer: the value as structured content, a refusal as a tool error the
/// model can read, or an internal error.
fn answer<T: Serialize>(result: Result<T, ToolFailure>) -> Result<CallToolResult, ErrorData> {
    match result {
        Ok(value) => serde_json::to_value(value)
            .map(CallToolResult::structured)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None)),
        Err(ToolFailure::Refused(refusal)) => {
            Ok(CallToolResult::structured_error(refusal.problem_json()))
        }
        Err(ToolFailure::Internal(cause)) => {
            tracing::error!(error = format!("{cause:#}"), "MCP tool failed");
            Err(ErrorData::internal_error(
                "an internal error occurred",
                None,
            ))
        }
    }
}

#[tool_router(server_handler)]
impl TaskTools {
    #[tool(
        description = "Create a task. Title 1-500 characters; optional description and RFC 3339 due_date."
    )]
    async fn add_task(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
        Parameters(args): Parameters<CreateTask>,
    ) -> Result<CallToolResult, ErrorData> {
        let (user, ctx) = caller(&parts)?;
        answer(
            async {
                let task = self.tasks.create(&user, args.parse()?, &ctx).await?;
                Ok(TaskView::from(task))
            }
            .await,
        )
    }

    #[tool(
        description = "List the caller's tasks, newest first; filter on completed, page with limit (1-100) and the returned next_cursor; order newest|oldest."
    )]
    async fn list_tasks(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
        Parameters(args): Parameters<ListParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let (user, _) = caller(&parts)?;
        answer(
            async {
                let page = self.tasks.list(&user, &args.parse()?).await?;
                Ok(TaskPage::from(page))
            }
            .await,
        )
    }

    #[tool(
        description = "Change a task's title, description or due date; null clears description or due date."
    )]
    async fn update_task(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
        Parameters(args): Parameters<UpdateTaskArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let (user, ctx) = caller(&parts)?;
        answer(
            async {
                let id = parse_task_id(&args.id)?;
                let patch = UpdateTask {
                    title: args.title,
                    description: args.description,
                    due_date: args.due_date,
                }
                .parse()?;
                let task = self.tasks.update(&user, id, patch, &ctx).await?;
                Ok(TaskView::from(task))
            }
            .await,
        )
    }

    #[tool(description = "Mark a task complete.")]
    async fn complete_task(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
        Parameters(args): Parameters<TaskRef>,
    ) -> Result<CallToolResult, ErrorData> {
        self.set_completed(&parts, &args.id, true).await
    }

    #[tool(description = "Mark a task incomplete again.")]
    async fn uncomplete_task(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
        Parameters(args): Parameters<TaskRef>,
    ) -> Result<CallToolResult, ErrorData> {
        self.set_completed(&parts, &args.id, false).await
    }

    #[tool(description = "Delete a task.")]
    async fn delete_task(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
        Parameters(args): Parameters<TaskRef>,
    ) -> Result<CallToolResult, ErrorData> {
        let (user, ctx) = caller(&parts)?;
        answer(
            async {
                self.tasks
                    .delete(&user, parse_task_id(&args.id)?, &ctx)
                    .await?;
                Ok(serde_json::json!({ "deleted": args.id }))
            }
            .await,
        )
    }

    #[tool(description = "Delete all the caller's completed tasks; returns how many were deleted.")]
    async fn clear_completed(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let (user, ctx) = caller(&parts)?;
        answer(
            async {
                let deleted = self.tasks.clear_completed(&user, &ctx).await?;
                Ok(Cleared { deleted })
            }
            .await,
        )
    }
}
