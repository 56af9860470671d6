"""The pure project checks (no server): config drift, settings drift, the guidelines' HTML."""

from __future__ import annotations

from curation import labelstudio as lsmod
from curation.labels import load_guidelines
from curation.labelstudio.checks import config_drift, expected_settings, settings_drift


def test_config_drift_ignores_cosmetics_and_names_the_changed_interface() -> None:
    ours = lsmod.load_label_config()
    cosmetic = ours.replace('<Header value="Question" size="5"/>', '<Header value="Q" size="4"/>')
    assert config_drift(ours, cosmetic) is None
    renamed = ours.replace('<Choices name="label"', '<Choices name="kind"')
    diff = config_drift(ours, renamed)
    assert diff is not None and '-<Choices name="label"' in diff and '+<Choices name="kind"' in diff
    value = ours.replace('<Choice value="knowledge"', '<Choice value="recall"')
    assert '+  <Choice value="recall">' in (config_drift(ours, value) or "")
    assert config_drift(ours, "<View") is not None  # unparsable is drift, not a crash


def test_settings_drift_lists_only_changed_settings() -> None:
    want = expected_settings(overlap=3, show_suggestions=False)
    server = {**want, "maximum_annotations": 1, "show_collab_predictions": True, "title": "x"}
    assert settings_drift(want, server) == {
        "maximum_annotations": (3, 1), "show_collab_predictions": (False, True)}
    assert settings_drift(want, dict(want)) == {}


def test_guidelines_become_html_without_markdown_syntax() -> None:
    _, body = load_guidelines()
    html = lsmod.instructions_html(body)
    assert "<h1>" in html and "<strong>" in html and "**" not in html
    assert "style=" not in html  # Label Studio strips styles
    assert "&lt;script&gt;" in lsmod.instructions_html("<script>x</script>")  # raw HTML escaped
