"""Label Studio: push batches as tasks (with pre-annotations), pull labels back.

The only package that talks to Label Studio (label-studio-sdk 2.x, Community Edition
1.23 tested), in three layers:

* `mapping` (pure, no I/O): our rows <-> Label Studio task, prediction and annotation
  JSON; the labeling config. Unit-tested without a server.
* `api`: connection settings and the HTTP adapter `LabelStudioApi` (one method per
  request); every failure is a `LabelStudioError` subclass picked from the HTTP status,
  whose message never contains the API key.
* `sync`: `push_batch`, `pull`; `projects`: server identity, project states, `retire`,
  `status`, `map_user`, the use cases joining the API and the store (`curation.store.labelstudio` holds the sync state and every SQL statement).
  Its docstring describes push, pull and K-overlap on the Community Edition.

The names callers use are re-exported here: `from curation import labelstudio as lsmod`.
"""

from __future__ import annotations

from curation.labelstudio.api import (
    KEY_ENV,
    URL_ENV,
    Connection,
    LabelStudioApi,
    LabelStudioAuthError,
    LabelStudioBadRequest,
    LabelStudioConflict,
    LabelStudioError,
    LabelStudioNotFound,
    LabelStudioServerError,
    connection,
    env_configured,
    error_class,
    normalize_server,
    open_api,
    server_url,
)
from curation.labelstudio.checks import config_drift, config_interface, settings_drift
from curation.labelstudio.mapping import (
    CONFIG_DIR,
    DEFAULT_CONFIG,
    PagePlan,
    annotation_event_id,
    annotation_to_row,
    config_path,
    format_options,
    instructions_html,
    load_label_config,
    parse_ls_time,
    plan_deletions,
    plan_page,
    question_to_task,
    resolve_annotator,
    result_fields,
    source_ref,
    suggestion_to_prediction,
)
from curation.labelstudio.projects import (
    known_server,
    map_user,
    move_server,
    project_states,
    resolve_server,
    retire,
    servers,
    status,
)
from curation.labelstudio.sync import (
    PROJECT_PREFIX,
    PULL_FIELDS,
    PullResult,
    PushResult,
    default_project_name,
    project_url,
    pull,
    push_batch,
)

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_CONFIG",
    "KEY_ENV",
    "PROJECT_PREFIX",
    "PULL_FIELDS",
    "URL_ENV",
    "Connection",
    "LabelStudioApi",
    "LabelStudioAuthError",
    "LabelStudioBadRequest",
    "LabelStudioConflict",
    "LabelStudioError",
    "LabelStudioNotFound",
    "LabelStudioServerError",
    "PagePlan",
    "PullResult",
    "PushResult",
    "annotation_event_id",
    "annotation_to_row",
    "config_drift",
    "config_interface",
    "config_path",
    "connection",
    "default_project_name",
    "env_configured",
    "error_class",
    "format_options",
    "instructions_html",
    "known_server",
    "load_label_config",
    "map_user",
    "move_server",
    "normalize_server",
    "open_api",
    "parse_ls_time",
    "plan_deletions",
    "plan_page",
    "project_states",
    "project_url",
    "pull",
    "push_batch",
    "question_to_task",
    "resolve_annotator",
    "resolve_server",
    "retire",
    "result_fields",
    "server_url",
    "servers",
    "settings_drift",
    "source_ref",
    "status",
    "suggestion_to_prediction",
]
