"""The rubric: the task the responses answer, what earns 1 and 0, and example responses.

It feeds both the generation prompt (persona, task, examples) and the LLM judge's grading prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from synthmix.errors import InputError
from synthmix.params import DatasetParams, resolve_relative

REQUIRED = ("name", "scenario", "question", "persona", "positive_criteria", "negative_criteria", "examples")
ITEM_KEYS = ("title", "scenario", "question", "persona", "positive_criteria", "negative_criteria", "examples")
TODO_MARK = "TODO (you write this)"


@dataclass(frozen=True)
class Rubric:
    """A coding rubric: the default task, and (``items``) each item's own rubric where the data has items."""

    name: str
    title: str
    scenario: str
    question: str
    persona: str
    positive_criteria: str
    negative_criteria: str
    positive_examples: tuple[str, ...]
    negative_examples: tuple[str, ...]
    item: str = ""  # the item this rubric is for; "" for the default task
    items: dict = field(default_factory=dict, compare=False, repr=False)  # item id -> Rubric
    item_overrides: dict = field(default_factory=dict, compare=False, repr=False)  # the YAML's items entries

    def examples(self, label: int) -> tuple[str, ...]:
        """The rubric's example responses for label 1 or 0."""
        return self.positive_examples if label == 1 else self.negative_examples

    def for_item(self, item_id) -> "Rubric":
        """The rubric of one item (its own entries, each falling back to the default); the default for ''."""
        if item_id is None or str(item_id) == "":
            return self
        return self.items.get(str(item_id), replace(self, item=str(item_id), items={}, item_overrides={}))

    def with_data_items(self, data_items: dict) -> "Rubric":
        """This rubric with the items' question text and reference answers taken from the data.

        ``data_items`` maps item id -> {"question": str | None, "references": [str]} (see
        ``LoadedData.items``); references become the item's examples coded 1. The rubric's own
        ``items`` entries take precedence over the data.
        """
        names = sorted(set(data_items) | set(self.item_overrides))
        items = {item: _item_rubric(self, item, data_items.get(item, {}), self.item_overrides.get(item, {}))
                 for item in names}
        return replace(self, items=items)


def rubric_path(params: DatasetParams, params_path: str | Path | None = None) -> Path:
    """Where the rubric of a study is: ``dataset.rubric``, or the embedded dataset's own."""
    if params.rubric:
        if params.rubric.startswith("embedded:"):
            from synthmix.data.loading import embedded_dir

            return embedded_dir(params.rubric.split(":", 1)[1]) / "rubric.yaml"
        return resolve_relative(params.rubric, params_path or ".")
    if params.source.startswith("embedded:"):
        from synthmix.data.loading import embedded_dir

        return embedded_dir(params.source.split(":", 1)[1]) / "rubric.yaml"
    where = f"{params_path}: " if params_path else ""
    raise InputError(f"{where}dataset.rubric: required when dataset.source is not an embedded dataset; "
                     "expected a rubric YAML path (relative to the params file)")


def load_rubric(path: str | Path, question_from_data: bool = False) -> Rubric:
    """Read and check a rubric YAML file: the default task (keys: see ``REQUIRED``) and optional ``items``.

    ``items`` maps an item id to its own ``question``, ``scenario``, criteria, ``persona``, ``title``
    or ``examples`` (positive and/or negative lists); every key left out falls back to the default.
    With ``question_from_data`` (``dataset.item_text_column`` is set) the default ``question`` may
    be omitted. A value still holding ``TODO (you write this)`` is an error naming its key.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: rubric file not found (dataset.rubric)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with keys {', '.join(REQUIRED)}")
    required = [k for k in REQUIRED if not (question_from_data and k == "question")]
    problems = [f"{path}: key '{key}' is missing" for key in required if key not in data]
    problems += [f"{path}: key '{key}' is unknown; expected {', '.join((*REQUIRED, 'title', 'items'))}"
                 for key in data if key not in (*REQUIRED, "title", "items")]
    problems += _todo_markers(path, data)
    examples = data.get("examples") or {}
    for label in ("positive", "negative"):
        listed = examples.get(label) if isinstance(examples, dict) else None
        if not _text_list(listed):
            problems.append(f"{path}: examples.{label} must be a non-empty list of example responses")
    for key in REQUIRED[:-1]:
        if key in data and not (isinstance(data[key], str) and data[key].strip()):
            problems.append(f"{path}: key '{key}' must be non-empty text")
    overrides = data.get("items") or {}
    if not isinstance(overrides, dict):
        problems.append(f"{path}: items must map item ids to their own question, criteria or examples")
        overrides = {}
    for item, entry in overrides.items():
        problems += _check_item(path, str(item), entry)
    if problems:
        raise InputError(problems)
    default = Rubric(
        name=data["name"].strip(),
        title=str(data.get("title", data["name"])).strip(),
        scenario=data["scenario"].strip(),
        question=str(data.get("question") or "").strip(),
        persona=data["persona"].strip(),
        positive_criteria=data["positive_criteria"].strip(),
        negative_criteria=data["negative_criteria"].strip(),
        positive_examples=tuple(x.strip() for x in examples["positive"]),
        negative_examples=tuple(x.strip() for x in examples["negative"]),
    )
    overrides = {str(item): entry for item, entry in overrides.items()}
    return replace(default, items={item: _item_rubric(default, item, {}, entry) for item, entry in overrides.items()},
                   item_overrides=overrides)


def _text_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(x, str) and x.strip() for x in value)


def _todo_markers(path: Path, value, where: str = "") -> list[str]:
    """One problem per value that still holds the scaffold's marker for text only a person can write."""
    if isinstance(value, dict):
        return [p for key, inner in value.items() for p in _todo_markers(path, inner, f"{where}.{key}" if where else str(key))]
    if isinstance(value, list):
        return [p for i, inner in enumerate(value) for p in _todo_markers(path, inner, f"{where}[{i}]")]
    if isinstance(value, str) and TODO_MARK in value:
        return [f"{path}: {where} still says '{TODO_MARK}': write it"]
    return []


def _check_item(path: Path, item: str, entry) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{path}: items.{item}: expected a mapping with any of {', '.join(ITEM_KEYS)}"]
    problems = [f"{path}: items.{item}: key '{key}' is unknown; expected any of {', '.join(ITEM_KEYS)}"
                for key in entry if key not in ITEM_KEYS]
    for key in ITEM_KEYS[:-1]:
        if key in entry and not (isinstance(entry[key], str) and entry[key].strip()):
            problems.append(f"{path}: items.{item}: key '{key}' must be non-empty text")
    if "examples" in entry:
        examples = entry["examples"]
        if not isinstance(examples, dict) or set(examples) - {"positive", "negative"}:
            problems.append(f"{path}: items.{item}: examples must map positive and/or negative to lists of responses")
        else:
            problems += [f"{path}: items.{item}: examples.{label} must be a non-empty list of example responses"
                         for label, listed in examples.items() if not _text_list(listed)]
    return problems


def _item_rubric(default: Rubric, item: str, from_data: dict, entry: dict) -> Rubric:
    """An item's rubric: the default, then what the data's columns give, then the rubric's own entry."""
    changes: dict = {"item": item, "items": {}, "item_overrides": {}}
    if from_data.get("question"):
        changes["question"] = from_data["question"]
    if from_data.get("references"):
        changes["positive_examples"] = tuple(from_data["references"])
    changes.update({key: entry[key].strip() for key in ITEM_KEYS[:-1] if key in entry})
    examples = entry.get("examples") or {}
    for label in ("positive", "negative"):
        if label in examples:
            changes[f"{label}_examples"] = tuple(x.strip() for x in examples[label])
    rubric = replace(default, **changes)
    if not rubric.question:
        raise InputError(f"item '{item}': no question text (neither the rubric's question, items.{item}.question, "
                         "nor dataset.item_text_column gives one)")
    return rubric


def check_rubric_items(rubric: Rubric, data_items, path: str | Path) -> list[str]:
    """Problems: rubric ``items`` that no response in the data belongs to (a typo in an item id?)."""
    known = sorted({str(i) for i in data_items if str(i)})
    shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
    return [f"{path}: items.{item}: no response in the data has item '{item}'; items in the data: {shown or 'none'}"
            for item in rubric.item_overrides if item not in known]


def load_study_rubric(params: DatasetParams, params_path: str | Path | None = None, loaded=None) -> Rubric:
    """The study's rubric with every item resolved: its YAML entries and the data's question/reference columns.

    ``loaded`` (a ``LoadedData``) saves reading the data again. Single-task data sets get the rubric
    unchanged. Raises ``InputError`` naming the file and the item for each problem.
    """
    path = rubric_path(params, params_path)
    rubric = load_rubric(path, question_from_data=bool(params.item_text_column))
    if not params.item_column:
        return rubric
    if loaded is None:
        from synthmix.data.loading import load_human_data

        loaded = load_human_data(params, params_path)
    problems = check_rubric_items(rubric, set(loaded.dataset.unique("item")), path)  # unique(): not row by row
    if problems:
        raise InputError(problems)
    try:
        return rubric.with_data_items(loaded.items)
    except InputError as exc:
        raise InputError([f"{path}: {problem}" for problem in exc.problems]) from None
