"""The seed design's `POST /tasks`, reconstructed from the original plan.

A benchmark comparator, not a product: written from
shared/reference/backend-event-publishing-plan.md (not the original code) so that the
host's throughput can be measured side by side with the design it replaces: a FastAPI
service that, inside the request, stores the task and then publishes its two CloudEvents
to the Dapr sidecar one after the other before it answers (plan §5.1).

Layout (the plan's modules, §4, in one file):
  settings    the environment (§8.1)
  logging     JSON lines on stderr (§6.2)
  database    SQLAlchemy async engine, the Task model, a session per request
  auth        bearer HS256 JWT, the user is `sub`
  events      CloudEvent and its payloads (events/schemas.py), EventPublisher
              (events/publisher.py): §1, §2.1, §3
  service     TaskService.create
  routes      POST /tasks (§5.1), GET /health (for the harness to wait on)

Environment: SEED_DATABASE_URL (sqlite+aiosqlite:///PATH or postgresql+asyncpg://...),
SEED_JWT_SECRET, DAPR_ENABLED (true), DAPR_HTTP_PORT (3500), DAPR_PUBSUB_NAME
(pubsub-kafka), DAPR_PUBLISH_TIMEOUT (2.0 s), SEED_LOG_LEVEL (INFO).
"""

import json
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
import jwt
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Boolean, DateTime, String, Text, Uuid, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# --- settings (§8.1) -------------------------------------------------------------------


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SystemExit(f"{name}={raw!r} is not a boolean (true or false)")


def _env_required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"{name} is not set")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str
    jwt_secret: str
    # The plan's config.py defaults this to False and its Helm values set "true" for
    # Kubernetes, where the seed ran with its sidecar; this comparator runs as deployed.
    dapr_enabled: bool
    dapr_http_port: int
    dapr_pubsub_name: str
    dapr_publish_timeout: float
    event_source: str
    log_level: str

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            database_url=_env_required("SEED_DATABASE_URL"),
            jwt_secret=_env_required("SEED_JWT_SECRET"),
            dapr_enabled=_env_bool("DAPR_ENABLED", True),
            dapr_http_port=int(os.environ.get("DAPR_HTTP_PORT") or 3500),
            dapr_pubsub_name=os.environ.get("DAPR_PUBSUB_NAME") or "pubsub-kafka",
            dapr_publish_timeout=float(os.environ.get("DAPR_PUBLISH_TIMEOUT") or 2.0),
            event_source="pakaura/api",
            log_level=(os.environ.get("SEED_LOG_LEVEL") or "INFO").upper(),
        )


settings = Settings.from_env()


# --- structured logging (§6.2, §6.3) ---------------------------------------------------

# The request's correlation id (§6.3), set by CorrelationIdMiddleware.
correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if "correlation_id" not in entry and (cid := correlation_id_var.get()):
            entry["correlation_id"] = cid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("api")
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    root.propagate = False


_configure_logging()
logger = logging.getLogger("api.main")


class CorrelationIdMiddleware:
    """Gives each HTTP request a fresh correlation id (uuid4, §6.3). Pure ASGI."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = correlation_id_var.set(str(uuid.uuid4()))
        try:
            await self.app(scope, receive, send)
        finally:
            correlation_id_var.reset(token)


# --- database --------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


engine = create_async_engine(settings.database_url)

if engine.dialect.name == "sqlite":

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run beside the writer; NORMAL is WAL's usual durability
        # (fsync at checkpoints), the same as the Rust host's SQLite settings.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


# expire_on_commit=False: SQLAlchemy's advice for AsyncSession (no lazy reload of the
# committed task when the response is built).
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_db() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db)]


# --- auth ------------------------------------------------------------------------------

bearer_scheme = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class CurrentUser:
    id: str


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def get_current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> CurrentUser:
    if credentials is None:
        raise _unauthorized("Not authenticated")
    try:
        payload = jwt.decode(credentials.credentials, settings.jwt_secret, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        raise _unauthorized("Invalid or expired token") from None
    user_id = payload.get("sub")
    if not isinstance(user_id, str) or not user_id:
        raise _unauthorized("Token has no subject")
    return CurrentUser(id=user_id)


AuthUser = Annotated[CurrentUser, Depends(get_current_user)]


# --- events: schemas (§1, §4.2) --------------------------------------------------------

TOPIC_TASK_EVENTS = "task-events"
TOPIC_TASK_UPDATES = "task-updates"

TaskAction = Literal["created", "updated", "completed", "uncompleted", "deleted"]


class CloudEvent(BaseModel):
    """CloudEvents 1.0 envelope, structured mode (§1.1, §1.2)."""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    type: str
    time: datetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    traceid: str | None = None
    data: dict[str, Any]


class TaskEventData(BaseModel):
    """Payload of task.* events on task-events."""

    task_id: str
    user_id: str
    action: TaskAction
    title: str
    completed: bool
    changes: dict[str, Any] | None = None
    timestamp: datetime


class SyncEventData(BaseModel):
    """Lightweight payload of sync.task events on task-updates."""

    task_id: str
    user_id: str
    action: TaskAction
    timestamp: datetime


# --- events: publisher (§3, §6.1) ------------------------------------------------------


class EventPublisher:
    """Publishes CloudEvents through the Dapr sidecar. Never raises (§6.1)."""

    def __init__(self, config: Settings) -> None:
        self._enabled = config.dapr_enabled
        self._timeout = config.dapr_publish_timeout
        self._source = config.event_source
        self._base_url = (
            f"http://127.0.0.1:{config.dapr_http_port}/v1.0/publish/{config.dapr_pubsub_name}"
        )
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        if self._enabled:
            self._client = httpx.AsyncClient(timeout=self._timeout)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def publish_task_event(
        self, task: Task, action: TaskAction, changes: dict[str, Any] | None = None
    ) -> None:
        data = TaskEventData(
            task_id=str(task.id),
            user_id=str(task.user_id),
            action=action,
            title=task.title,
            completed=task.completed,
            changes=changes,
            timestamp=utcnow(),
        )
        event_ = self._build_cloud_event(f"task.{action}", str(task.id), data)
        await self._publish(TOPIC_TASK_EVENTS, event_, data.task_id, data.user_id)

    async def publish_sync_event(self, task_id: str, user_id: str, action: TaskAction) -> None:
        data = SyncEventData(task_id=task_id, user_id=user_id, action=action, timestamp=utcnow())
        event_ = self._build_cloud_event("sync.task", task_id, data)
        await self._publish(TOPIC_TASK_UPDATES, event_, task_id, user_id)

    def _build_cloud_event(self, type_: str, subject: str, data: BaseModel) -> CloudEvent:
        return CloudEvent(
            source=self._source,
            type=type_,
            time=utcnow(),
            subject=subject,
            traceid=correlation_id_var.get(),
            data=data.model_dump(mode="json"),
        )

    async def _publish(self, topic: str, event_: CloudEvent, task_id: str, user_id: str) -> None:
        fields: dict[str, Any] = {
            "event_type": event_.type,
            "event_id": event_.id,
            "topic": topic,
            "task_id": task_id,
            "user_id": user_id,
            "correlation_id": event_.traceid,
        }
        try:
            body = event_.model_dump_json(exclude_none=True)
            if self._client is None:
                logger.debug("Dapr disabled, event not published", extra={**fields, "event": body})
                return
            response = await self._client.post(
                f"{self._base_url}/{topic}",
                content=body,
                headers={"Content-Type": "application/cloudevents+json"},
            )
            if response.status_code == 204:
                logger.debug("Event published", extra={**fields, "dapr_status": 204})
            else:
                logger.error(
                    "Event publish failed",
                    extra={
                        **fields,
                        "dapr_status": response.status_code,
                        "dapr_body": response.text[:1000],
                    },
                )
        except httpx.TimeoutException:
            logger.warning("Dapr publish timed out", extra=fields)
        except httpx.ConnectError:
            logger.warning("Dapr sidecar unavailable", extra=fields)
        except Exception:
            logger.exception("Event publish error", extra=fields)


_publisher = EventPublisher(settings)


def get_event_publisher() -> EventPublisher:
    return _publisher


# --- service ---------------------------------------------------------------------------


class TaskService:
    @staticmethod
    async def create(
        db: AsyncSession, user_id: str, title: str, description: str | None = None
    ) -> Task:
        task = Task(user_id=user_id, title=title, description=description)
        db.add(task)
        await db.commit()
        return task


# --- routes ----------------------------------------------------------------------------


class TaskCreate(BaseModel):
    title: str = Field(min_length=1, max_length=255)
    description: str | None = None


class TaskResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await _publisher.start()
    logger.info(
        "Seed API started",
        extra={
            "database": engine.dialect.name,
            "dapr_enabled": settings.dapr_enabled,
            "dapr_http_port": settings.dapr_http_port,
        },
    )
    try:
        yield
    finally:
        await _publisher.close()
        await engine.dispose()


app = FastAPI(title="Pakaura seed API (reconstruction)", lifespan=lifespan)
app.add_middleware(CorrelationIdMiddleware)


@app.post("/tasks", response_model=TaskResponse, status_code=status.HTTP_201_CREATED)
async def create_task(request: TaskCreate, current_user: AuthUser, db: DbSession) -> Task:
    # 1. Perform the CRUD operation.
    task = await TaskService.create(db, current_user.id, request.title, request.description)

    # 2. Publish events (§5.1): inline, one after the other, never raising.
    publisher = get_event_publisher()
    await publisher.publish_task_event(task, "created")
    await publisher.publish_sync_event(str(task.id), str(current_user.id), "created")

    # 3. Return the response.
    return task


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
