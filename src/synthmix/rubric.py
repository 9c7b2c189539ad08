"""The rubric: the task the responses answer, what earns 1 and 0, and example responses.

It feeds both the generation prompt (persona, task, examples) and the LLM judge's grading prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from synthmix.errors import InputError
from synthmix.params import DatasetParams, resolve_relative

REQUIRED = ("name", "scenario", "question", "persona", "positive_criteria", "negative_criteria", "examples")


@dataclass(frozen=True)
class Rubric:
    """A coding rubric for one open-response task."""

    name: str
    title: str
    scenario: str
    question: str
    persona: str
    positive_criteria: str
    negative_criteria: str
    positive_examples: tuple[str, ...]
    negative_examples: tuple[str, ...]

    def examples(self, label: int) -> tuple[str, ...]:
        """The rubric's example responses for label 1 or 0."""
        return self.positive_examples if label == 1 else self.negative_examples


def rubric_path(params: DatasetParams, params_path: str | Path | None = None) -> Path:
    """Where the rubric of a study is: ``dataset.rubric``, or the embedded dataset's own."""
    if params.rubric:
        if params.rubric.startswith("embedded:"):
            from synthmix.data import embedded_dir

            return embedded_dir(params.rubric.split(":", 1)[1]) / "rubric.yaml"
        return resolve_relative(params.rubric, params_path or ".")
    if params.source.startswith("embedded:"):
        from synthmix.data import embedded_dir

        return embedded_dir(params.source.split(":", 1)[1]) / "rubric.yaml"
    raise InputError("dataset.rubric: required when dataset.source is not an embedded dataset; expected a rubric YAML path")


def load_rubric(path: str | Path) -> Rubric:
    """Read and check a rubric YAML file (keys: see ``REQUIRED``; examples: positive and negative lists)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: rubric file not found (dataset.rubric)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with keys {', '.join(REQUIRED)}")
    problems = [f"{path}: key '{key}' is missing" for key in REQUIRED if key not in data]
    examples = data.get("examples") or {}
    for label in ("positive", "negative"):
        items = examples.get(label) if isinstance(examples, dict) else None
        if not isinstance(items, list) or not items or not all(isinstance(x, str) and x.strip() for x in items):
            problems.append(f"{path}: examples.{label} must be a non-empty list of example responses")
    for key in REQUIRED[:-1]:
        if key in data and not (isinstance(data[key], str) and data[key].strip()):
            problems.append(f"{path}: key '{key}' must be non-empty text")
    if problems:
        raise InputError(problems)
    return Rubric(
        name=data["name"].strip(),
        title=str(data.get("title", data["name"])).strip(),
        scenario=data["scenario"].strip(),
        question=data["question"].strip(),
        persona=data["persona"].strip(),
        positive_criteria=data["positive_criteria"].strip(),
        negative_criteria=data["negative_criteria"].strip(),
        positive_examples=tuple(x.strip() for x in examples["positive"]),
        negative_examples=tuple(x.strip() for x in examples["negative"]),
    )
