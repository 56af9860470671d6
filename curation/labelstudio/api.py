"""Label Studio HTTP adapter: connection settings, typed errors, `LabelStudioApi`.

The only module that sends requests to Label Studio (label-studio-sdk 2.x, Community
Edition 1.23 tested). One method per request; every failure becomes a `LabelStudioError`
(a subclass chosen from the HTTP status) whose message names the server, what failed and
what to do, and never contains the API key.

Connection: `url`/`api_key` arguments, else `LABEL_STUDIO_URL` / `LABEL_STUDIO_API_KEY`,
read when called. Both legacy tokens and personal access tokens (JWT refresh tokens) work.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from curation.config import require_env
from curation.errors import ConfigError, CurationError

URL_ENV = "LABEL_STUDIO_URL"
KEY_ENV = "LABEL_STUDIO_API_KEY"


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


class LabelStudioError(CurationError):
    """Label Studio could not be reached or refused a request (message never holds the key).

    `status` is the HTTP status when the server answered, else None (timeout, no
    connection, unusable answer). Subclasses name the statuses callers act on.
    """

    hint = "see the detail above"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class LabelStudioBadRequest(LabelStudioError):
    """400 / 422: the server rejected the request's content."""


class LabelStudioAuthError(LabelStudioError):
    """401 / 403: the API key is wrong, expired, or not allowed to do this."""

    hint = (f"check the API key (--api-key / {KEY_ENV}); legacy tokens need "
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true on the server")


class LabelStudioNotFound(LabelStudioError):
    """404: the object (project, task page, annotation) does not exist on this server."""

    hint = "the object does not exist on this server (deleted in Label Studio?)"


class LabelStudioConflict(LabelStudioError):
    """409: the request conflicts with the object's current state."""


class LabelStudioServerError(LabelStudioError):
    """5xx: the server failed."""

    hint = "the server failed; check its log and run the command again"


def error_class(status: int | None) -> type[LabelStudioError]:
    """The exception class for an HTTP status (the base class for any other)."""
    if status in (400, 422):
        return LabelStudioBadRequest
    if status in (401, 403):
        return LabelStudioAuthError
    if status == 404:
        return LabelStudioNotFound
    if status == 409:
        return LabelStudioConflict
    if status is not None and status >= 500:
        return LabelStudioServerError
    return LabelStudioError


# ---------------------------------------------------------------------------------------
# Connection settings
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """Where the server is and how to authenticate. The key is kept out of `repr`."""

    url: str
    api_key: str = field(repr=False)

    @property
    def server(self) -> str:
        return normalize_server(self.url)


def normalize_server(url: str) -> str:
    """A stable identity for a server: scheme and host lower-cased, no trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"Label Studio URL {url!r} is not an http(s) URL; pass --url or set {URL_ENV}"
        )
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def connection(url: str | None = None, api_key: str | None = None) -> Connection:
    """Arguments first, then `LABEL_STUDIO_URL` / `LABEL_STUDIO_API_KEY`."""
    u = require_env(URL_ENV, url, option="--url")
    k = require_env(KEY_ENV, api_key, option="--api-key")
    normalize_server(u)
    return Connection(u.rstrip("/"), k)


def server_url(url: str | None = None) -> str:
    """The server identity from `url` or `LABEL_STUDIO_URL` (no key needed)."""
    return normalize_server(require_env(URL_ENV, url, option="--url"))


def env_configured() -> bool:
    return bool(os.environ.get(URL_ENV)) and bool(os.environ.get(KEY_ENV))


def open_api(url: str | None = None, api_key: str | None = None, **kwargs: Any) -> LabelStudioApi:
    """`LabelStudioApi` from arguments or the environment."""
    return LabelStudioApi(connection(url, api_key), **kwargs)


# ---------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------


class LabelStudioApi:
    """Thin wrapper over `label_studio_sdk.client.LabelStudio`: one method per request.

    Every failure raises a `LabelStudioError` subclass (see `error_class`) with the URL,
    what failed and what to do; the API key is scrubbed from every message.
    """

    def __init__(self, conn: Connection, *, timeout: float = 120.0, max_retries: int = 2) -> None:
        from label_studio_sdk.client import LabelStudio

        self.conn = conn
        self.base = conn.url.rstrip("/")
        try:
            self._sdk = LabelStudio(
                base_url=self.base, api_key=conn.api_key, timeout=timeout, max_retries=max_retries
            )
        except Exception as exc:  # the SDK validates JWT keys eagerly
            raise self._error("connect", exc) from None
        # Private SDK attribute, on purpose: `_client_wrapper.httpx_client` is the SDK's own
        # request function (base URL, auth headers with the personal-access-token ->
        # access-token exchange, timeout, retries with backoff) without its typed layer.
        # The typed layer does not fit the task listing: the `tasks.list` pager treats any
        # non-empty page as "there is a next one" (tasks/raw_client.py), so iterating it
        # always asks for one page past the end, which Label Studio answers with 404
        # "Invalid page" (an error, not an end); and it builds a pydantic model of every
        # task (~0.18 s per 1,000 tasks, measured) that we would turn back into dicts.
        # Sending every call through this one function also gives one place where a status
        # becomes our typed error. SDK 2.1.2 (pinned) has no public raw-request method;
        # re-check on an SDK upgrade.
        self._http = self._sdk._client_wrapper.httpx_client
        # The server's clock (naive UTC) from the `Date` header of its latest answer: what a
        # "tasks updated since" filter must be expressed in (second resolution).
        self.server_time: datetime | None = None

    # -- error handling ---------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        key = self.conn.api_key
        return text.replace(key, "***") if key else text

    def _error(self, what: str, exc: BaseException) -> LabelStudioError:
        """The `LabelStudioError` for a failed call: class from the HTTP status, if any."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        where = f"Label Studio at {self.base}"
        if isinstance(exc, ApiError):
            status = exc.status_code
            cls = error_class(status)
            body = exc.body
            detail = body.get("detail") if isinstance(body, dict) else body
            detail_text = str(detail)[:300] if detail else ""
            msg = f"{where}: {what} failed with HTTP {status}"
            msg += f": {detail_text}" if detail_text else ""
            return cls(self._scrub(f"{msg}; {cls.hint}"), status=status)
        if isinstance(exc, httpx.TimeoutException):
            text = f"{where}: {what} timed out; is the server overloaded? run it again"
        elif isinstance(exc, httpx.TransportError):
            text = (f"{where}: {what} failed: cannot reach the server ({type(exc).__name__}); "
                    f"is it running and is --url / {URL_ENV} right?")
        else:
            text = f"{where}: {what} failed: {type(exc).__name__}: {exc}"
        return LabelStudioError(self._scrub(text))

    def _request(
        self, what: str, method: str, path: str, *, params: Mapping[str, Any] | None = None,
        json_body: Any = None, retry: bool = True,
    ) -> Any:
        """One request; the parsed JSON answer (None if empty). The one place errors are raised."""
        from label_studio_sdk.core.api_error import ApiError

        options: Any = None if retry else {"max_retries": 0}
        try:
            resp = self._http.request(
                path, method=method, params=dict(params or {}), json=json_body,
                request_options=options,
            )
            if resp.status_code >= 400:
                try:
                    body: Any = resp.json()
                except ValueError:
                    body = resp.text[:300]
                raise ApiError(status_code=resp.status_code, headers=None, body=body)
            self._note_server_time(resp.headers.get("date"))
            if not resp.content:
                return None
            try:
                return resp.json()
            except ValueError:
                raise ApiError(status_code=resp.status_code, headers=None,
                               body="response is not JSON") from None
        except Exception as exc:
            raise self._error(what, exc) from None

    def _note_server_time(self, header: str | None) -> None:
        try:
            stamp = parsedate_to_datetime(header) if header else None
        except (TypeError, ValueError):
            stamp = None
        if stamp is not None and stamp.tzinfo is not None:
            self.server_time = stamp.astimezone(UTC).replace(tzinfo=None)

    # -- calls ------------------------------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        return dict(self._request("who-am-i", "GET", "api/current-user/whoami"))

    def organization(self) -> dict[str, Any]:
        """The organization of the key's user (its id and `created_at` identify the server)."""
        me = self.whoami()
        oid = me.get("active_organization")
        if oid is None:
            return {}
        return dict(self._request("read organization", "GET", f"api/organizations/{int(oid)}"))

    def find_projects(self, title: str) -> list[dict[str, Any]]:
        """Projects with exactly this title (the list endpoint is paginated)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            data = self._request(
                "list projects", "GET", "api/projects",
                params={"title": title, "page": page, "page_size": 100, "include": "id,title"},
            )
            results = data.get("results", []) if isinstance(data, dict) else data
            out.extend(p for p in results if p.get("title") == title)
            if not isinstance(data, dict) or not data.get("next"):
                return out
            page += 1

    def get_project(self, project_id: int) -> dict[str, Any]:
        return dict(self._request(f"read project {project_id}", "GET", f"api/projects/{project_id}"))

    def create_project(self, **fields: Any) -> dict[str, Any]:
        return dict(self._request(
            "create project", "POST", "api/projects", json_body=fields, retry=False
        ))

    def update_project(self, project_id: int, **fields: Any) -> dict[str, Any]:
        return dict(self._request(
            f"update project {project_id}", "PATCH", f"api/projects/{project_id}", json_body=fields
        ))

    def import_tasks(self, project_id: int, tasks: Sequence[Mapping[str, Any]]) -> list[int]:
        """Import tasks (with inline predictions); returns the new task ids in request order."""
        data = self._request(
            f"import {len(tasks)} tasks into project {project_id}", "POST",
            f"api/projects/{project_id}/import", params={"return_task_ids": "true"},
            json_body=list(tasks), retry=False,  # a retried import could duplicate tasks
        )
        ids = [int(i) for i in data.get("task_ids") or []]
        if len(ids) != len(tasks):
            raise LabelStudioError(
                f"Label Studio at {self.base}: import into project {project_id} returned "
                f"{len(ids)} task ids for {len(tasks)} tasks; run push again (it reconciles)"
            )
        return ids

    def task_pages(
        self, project_id: int, *, fields: str, page_size: int = 1000,
        updated_since: datetime | None = None, read_ahead: bool = False,
    ) -> Iterator[list[dict[str, Any]]]:
        """Every task of a project, page by page, ordered by id; `fields` as in `include=`.

        `updated_since` (naive UTC, the server's clock): only tasks whose `updated_at` is
        later -- the Data Manager filter `filter:tasks:updated_at` `greater` of
        `GET /api/tasks?query=` (label_studio/data_manager/managers.py `apply_filters`,
        format `%Y-%m-%dT%H:%M:%S.%fZ`). Label Studio sets a task's `updated_at` whenever
        one of its annotations is saved or deleted through the API (tasks/models.py
        `Annotation.update_task`) and in the bulk "delete annotations" action.
        `read_ahead`: the next page is requested while the caller handles this one (the
        server's time, not ours, is most of a listing); errors still come in page order.
        """
        pages = self._task_pages(project_id, fields=fields, page_size=page_size,
                                 updated_since=updated_since)
        return _read_ahead(pages) if read_ahead else pages

    def _task_pages(
        self, project_id: int, *, fields: str, page_size: int, updated_since: datetime | None,
    ) -> Iterator[list[dict[str, Any]]]:
        query: dict[str, Any] = {"ordering": ["tasks:id"]}
        if updated_since is not None:
            query["filters"] = {"conjunction": "and", "items": [{
                "filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime",
                "value": updated_since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }]}
        page = 1
        seen = 0
        while True:
            params: dict[str, Any] = {
                "project": project_id, "page": page, "page_size": page_size, "include": fields,
                "query": json.dumps(query), "resolve_uri": "false",
            }
            if "annotations" in fields:
                params["fields"] = "all"
            try:
                data = self._request(
                    f"list tasks of project {project_id} (page {page})", "GET", "api/tasks",
                    params=params,
                )
            except LabelStudioNotFound:
                # "Invalid page": the project shrank while we listed it; that was the end.
                if page > 1:
                    return
                raise
            tasks = list(data.get("tasks") or [])
            total = int(data.get("total") or 0)
            if tasks:
                yield tasks
            seen += len(tasks)
            if len(tasks) < page_size or seen >= total:
                return
            page += 1

    def annotation_exists(self, annotation_id: int) -> bool:
        """False only when the server answers 404 for this annotation."""
        try:
            self._request(f"read annotation {annotation_id}", "GET",
                          f"api/annotations/{annotation_id}/")
        except LabelStudioNotFound:
            return False
        return True

    def users(self) -> list[dict[str, Any]]:
        data = self._request("list users", "GET", "api/users")
        results = data.get("results", []) if isinstance(data, dict) else data
        return [dict(u) for u in results]


def _read_ahead(pages: Iterator[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    """`pages`, read one page ahead in a thread; an error is raised where it happened (after
    the pages before it). Stopping early leaves at most one request to finish unread."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        """Hand `item` over unless the consumer has stopped; False if it has."""
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not put(("page", page)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))

    worker = threading.Thread(target=produce, name="ls-task-pages", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
