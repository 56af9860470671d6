"""Label Studio XML is tested data: every config in labeling_config/ parses and validates
with the SDK's LabelInterface, and every prediction and annotation shape we send or read
validates against it."""

from __future__ import annotations

from pathlib import Path

import pytest
from label_studio_sdk.label_interface import LabelInterface

from curation import labelstudio as lsmod
from curation.schema import LABELS

pytestmark = pytest.mark.unit

CONFIGS = sorted((Path(lsmod.CONFIG_DIR)).glob("*.xml"))


def test_there_is_a_config() -> None:
    assert lsmod.config_path() in CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_validates(path: Path) -> None:
    li = LabelInterface(path.read_text(encoding="utf-8"))
    li.validate()  # raises on schema, names, to_name errors
    assert li.is_valid
    label = li.get_control("label")
    assert label.tag == "Choices"
    assert sorted(label.labels) == sorted(LABELS)
    hotkeys = {v: label.labels_attrs[v].attr.get("hotkey") for v in LABELS}
    assert hotkeys == {"reasoning": "1", "knowledge": "2"}
    assert label.attr.get("required") == "true"
    # the question and its options are plain Text objects (text, never HTML)
    assert {o.name for o in li.objects} >= {"question", "options"}
    assert all(o.tag == "Text" for o in li.objects)
    assert li.get_control("rationale").tag == "TextArea"
    assert li.get_control("confidence").tag == "Rating"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("prob", [0.0, 0.37, 1.0, None])
def test_predictions_we_send_validate(path: Path, label: str, prob: float | None) -> None:
    li = LabelInterface(path.read_text(encoding="utf-8"))
    pred = lsmod.suggestion_to_prediction(label, prob, "minilm-r1")
    assert pred is not None
    assert li.validate_prediction(pred, return_errors=True) == []
    if prob is not None:
        assert 0.0 <= pred["score"] <= 1.0


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_task_data_fills_every_object(path: Path) -> None:
    li = LabelInterface(path.read_text(encoding="utf-8"))
    task = lsmod.question_to_task(
        {"id": "q1", "question": "<script>alert(1)</script>", "options": '{"B": "b", "A": "a"}',
         "dataset_name": "medqa"},
        batch_id="b1",
    )
    assert li.validate_task(task)  # type: ignore[arg-type]
    assert task["data"]["options"] == "A. a\nB. b"
    assert task["data"]["question"] == "<script>alert(1)</script>"  # data, shown as text


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_annotations_we_read_validate(path: Path) -> None:
    li = LabelInterface(path.read_text(encoding="utf-8"))
    result = [
        {"from_name": "label", "to_name": "question", "type": "choices",
         "value": {"choices": ["knowledge"]}},
        {"from_name": "confidence", "to_name": "question", "type": "rating", "value": {"rating": 3}},
        {"from_name": "rationale", "to_name": "question", "type": "textarea",
         "value": {"text": ["one fact"]}},
    ]
    assert li.validate_annotation({"result": result})
    assert lsmod.result_fields(result) == ("knowledge", 3, "one fact")
    bad = [{"from_name": "label", "to_name": "question", "type": "choices",
            "value": {"choices": ["maybe"]}}]
    assert not li.validate_prediction({"result": bad})
