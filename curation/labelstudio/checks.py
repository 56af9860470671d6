"""Label Studio project checks, pure (no I/O): has a project drifted from what we pushed?

* Label config: only the *interface* matters for the labels we read back -- each control
  and object tag with a `name` (tag, name, toName, choice mode, max rating) and the values
  of the `label` choices. Renaming `<Choices name="label">` or a choice value changes it
  (a pull would read every label as "no choice"); a header text or a style does not.
  `config_drift` answers with a unified diff of the two interfaces, or None.
* Settings: the project settings push sets (`expected_settings`); `settings_drift` lists
  the ones changed on the server by hand.
* The server's identity (`server_identity`): its organization's id and creation time,
  which stay the same when the server is reached under another URL.
"""

from __future__ import annotations

import difflib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

# attributes of a named tag that change what a result means
_INTERFACE_ATTRS = ("toName", "choice", "maxRating", "perRegion")


def config_interface(label_config: str) -> list[str]:
    """One line per named tag of a labeling config (and one per choice value), in order."""
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError as exc:
        return [f"(unparsable label config: {exc})"]
    lines: list[str] = []
    for el in root.iter():
        name = el.get("name")
        if not name:
            continue
        attrs = " ".join(f'{a}="{el.get(a)}"' for a in _INTERFACE_ATTRS if el.get(a) is not None)
        lines.append(f'<{el.tag} name="{name}"' + (f" {attrs}" if attrs else "") + ">")
        for child in el.iter():
            if child is not el and child.tag in ("Choice", "Label") and child.get("value"):
                lines.append(f'  <{child.tag} value="{child.get("value")}">')
    return lines


def config_drift(pushed: str, server: str) -> str | None:
    """A unified diff (pushed -> server) of the two configs' interfaces, or None if equal."""
    ours, theirs = config_interface(pushed), config_interface(server)
    if ours == theirs:
        return None
    return "\n".join(difflib.unified_diff(
        ours, theirs, fromfile="pushed by curation", tofile="in Label Studio now", lineterm="", n=1,
    ))


def expected_settings(*, overlap: int, show_suggestions: bool) -> dict[str, Any]:
    """The project settings push sets (and `ls push --fix-settings` restores)."""
    return {
        "maximum_annotations": overlap,
        "overlap_cohort_percentage": 100,
        "show_collab_predictions": bool(show_suggestions),
        "evaluate_predictions_automatically": False,
        "enable_empty_annotation": False,
        "show_skip_button": True,
        "sampling": "Sequential sampling",
    }


def settings_drift(expected: Mapping[str, Any], server: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """setting -> (ours, server's) for every expected setting the server holds differently."""
    return {k: (v, server.get(k)) for k, v in expected.items() if server.get(k) != v}


def describe_settings_drift(drift: Mapping[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k} is {theirs!r} (pushed {ours!r})" for k, (ours, theirs) in drift.items())


def server_identity(organization: Mapping[str, Any]) -> str | None:
    """A server's identity from its organization (id and creation time), or None."""
    oid, created = organization.get("id"), organization.get("created_at")
    return f"org:{oid}:{created}" if oid is not None and created else None
