"""The study's parameters: a strict schema for the params YAML (an unknown key is an error).

One YAML file describes one study: the human-coded data, the generator, the filter, the
teacher, the student and the grid of conditions. ``load_params`` reads and checks it; the
driver expands it into steps, and each notebook reads the same file for its own section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthmix.errors import InputError

Label = Union[int, str, bool, float]


def _check_shares(values: list[float]) -> list[float]:
    for value in values:
        if not 0 <= value <= 1:
            raise ValueError(f"synthetic share {value} is outside [0, 1]")
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetParams(_Strict):
    """Where the human-coded responses are and how to read them."""

    source: str = Field(
        "embedded:tutor_error_feedback",
        description="CSV/TSV/JSONL/parquet path (relative to the params file), "
        "'embedded:NAME' for a dataset shipped with synthmix, or 'hf:NAME' for a Hugging Face dataset",
    )
    rubric: str | None = Field(
        None, description="rubric YAML path; defaults to the embedded dataset's rubric"
    )
    text_column: str = Field("response", description="column holding the open response")
    label_column: str = Field("label", description="column holding the human code")
    id_column: str | None = Field("response_id", description="optional column with a unique id")
    item_column: str | None = Field(None, description="optional column naming the question/item")
    positive_labels: list[Label] = Field([1], description="raw label values that count as 1")
    negative_labels: list[Label] = Field([0], description="raw label values that count as 0")
    hf_split: str = Field("train", description="split to read for an 'hf:' source")
    split_seed: int = Field(13, description="seed of the stratified train/validation/test split")
    train_fraction: float = Field(
        1 / 3, gt=0, lt=1, description="share of responses for training (the paper: one third)"
    )
    validation_fraction: float = Field(
        0.25, gt=0, lt=1, description="share of the training part held out for early stopping"
    )

    @model_validator(mode="after")
    def _labels_disjoint(self):
        overlap = {str(v) for v in self.positive_labels} & {str(v) for v in self.negative_labels}
        if overlap:
            raise ValueError(f"label values {sorted(overlap)} are both positive and negative")
        if not self.positive_labels or not self.negative_labels:
            raise ValueError("positive_labels and negative_labels each need at least one value")
        return self


class GenerationParams(_Strict):
    """The LLM that writes synthetic responses, and how many it writes."""

    backend: Literal["managed-llama-cpp", "openai"] = Field(
        "managed-llama-cpp",
        description="'managed-llama-cpp': synthmix starts a local llama.cpp server; "
        "'openai': OpenAI or any OpenAI-compatible server at base_url",
    )
    model: str = Field(
        "smollm2-135m",
        description="model name; for managed-llama-cpp 'smollm2-135m' or a GGUF file path",
    )
    base_url: str | None = Field(None, description="OpenAI-compatible server URL (vLLM, llama.cpp)")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="environment variable holding the API key (never the key)"
    )
    temperatures: list[float] = Field([0.3, 0.7], min_length=1)
    pool_size_per_label: int = Field(50, ge=1, description="responses to collect per label and temperature")
    responses_per_call: int = Field(10, ge=1, le=50, description="'draft K responses' per call")
    max_tokens: int = Field(500, ge=16)
    seed: int = Field(0, description="generation seed; call i uses seed + i")
    max_calls_per_label: int = Field(60, ge=1, description="give up on a label after this many calls")
    max_retries: int = Field(4, ge=0)
    request_timeout_s: float = Field(120.0, gt=0)
    server_threads: int | None = Field(None, ge=1, description="llama.cpp threads (default: all cores)")
    context_length: int = Field(2048, ge=256)

    @field_validator("temperatures")
    @classmethod
    def _temperature_range(cls, values: list[float]) -> list[float]:
        for value in values:
            if not 0 <= value <= 2:
                raise ValueError(f"temperature {value} is outside [0, 2]")
        if len(set(values)) != len(values):
            raise ValueError("temperatures are repeated")
        return values


class FilterParams(_Strict):
    """How inconsistent synthetic responses are found (02_filter)."""

    methods: list[Literal["none", "llm_judge", "teacher_agreement"]] = Field(["none"], min_length=1)
    threshold: float = Field(0.5, ge=0, le=1, description="teacher_agreement: P(1) at or above it grades 1")
    unparseable: Literal["drop", "keep"] = Field(
        "drop", description="llm_judge: what happens to a response whose grade could not be parsed (always counted)"
    )
    seed: int = Field(0, description="teacher_agreement: seed of the human-only grader")
    judge_temperature: float = Field(0.0, ge=0, le=2)
    judge_max_tokens: int = Field(200, ge=16)


class TeacherParams(_Strict):
    """The teacher classifier and its training protocol (03_train_teacher)."""

    model: str = Field("minilm-l6", description="short name, Hugging Face id, or local folder")
    protocols: list[Literal["incremental", "mixed"]] = Field(["incremental"], min_length=1)
    max_length: int = Field(128, ge=8)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    max_epochs: int = Field(10, ge=1)
    patience: int = Field(2, ge=1, description="early stopping patience on the validation split")
    increment: int = Field(25, ge=1, description="incremental: synthetic responses added per step")
    max_synthetic: int = Field(250, ge=1, description="incremental: synthetic responses at the end")
    synthetic_shares: list[float] = Field(
        [0.5], min_length=1, description="mixed: synthetic share of the training data (1 = synthetic only)"
    )
    bootstrap_resamples: int = Field(1000, ge=10)
    keep_model: bool = False

    @field_validator("synthetic_shares")
    @classmethod
    def _share_range(cls, values: list[float]) -> list[float]:
        return _check_shares(values)

    @model_validator(mode="after")
    def _increment_fits(self):
        if self.increment > self.max_synthetic:
            raise ValueError(
                f"increment ({self.increment}) is larger than max_synthetic ({self.max_synthetic})"
            )
        return self


class StudentParams(_Strict):
    """The distilled student (04_distill)."""

    model: str = Field("teacher-layers:3", description="'teacher-layers:N' or a model name")
    temperature: float = Field(2.0, gt=0, description="softmax temperature T of the KD loss")
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the cross-entropy on labels")
    epochs: int = Field(10, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    batch_size: int = Field(16, ge=1)


class ExperimentParams(_Strict):
    """One experiment: the pools, filters and training protocols its teachers are trained on."""

    description: str = ""
    temperatures: list[float] | None = Field(None, description="pools used (default: all generation.temperatures)")
    filters: list[Literal["none", "llm_judge", "teacher_agreement"]] | None = Field(
        None, description="filter methods used (default: all filter.methods)"
    )
    protocols: list[Literal["incremental", "mixed"]] = Field(["incremental"], min_length=1)
    synthetic_shares: list[float] = Field([], description="mixed: synthetic shares to train at")
    compare_at_share: float | None = Field(
        None, ge=0, le=1, description="analysis: compare conditions at the checkpoint closest to this share"
    )

    @field_validator("synthetic_shares")
    @classmethod
    def _share_range(cls, values: list[float]) -> list[float]:
        return _check_shares(values)

    @model_validator(mode="after")
    def _mixed_needs_shares(self):
        if "mixed" in self.protocols and not self.synthetic_shares:
            raise ValueError("protocol 'mixed' needs synthetic_shares")
        return self


class StudyParams(_Strict):
    """One study: data, generator, filter, teacher, student, seeds and experiments."""

    study: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="name; results go to results/<study>/")
    description: str = ""
    dataset: DatasetParams = DatasetParams()
    generation: GenerationParams = GenerationParams()
    filter: FilterParams = FilterParams()
    teacher: TeacherParams = TeacherParams()
    student: StudentParams = StudentParams()
    seeds: list[int] = Field([0], min_length=1, description="training seeds (repeated runs)")
    experiments: dict[str, ExperimentParams] = Field(
        {}, description="named experiments; empty: one experiment 'grid' crossing every temperature, filter and protocol"
    )

    @model_validator(mode="after")
    def _experiments_use_what_exists(self):
        for name, experiment in self.experiments.items():
            extra = sorted(set(experiment.temperatures or []) - set(self.generation.temperatures))
            if extra:
                raise ValueError(f"experiments.{name}.temperatures: {extra} are not in generation.temperatures")
            extra = sorted(set(experiment.filters or []) - set(self.filter.methods))
            if extra:
                raise ValueError(f"experiments.{name}.filters: {extra} are not in filter.methods")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds are repeated")
        return self

    def experiment_grid(self) -> dict[str, ExperimentParams]:
        """The experiments with every default filled in (the implicit 'grid' when none are named)."""
        named = self.experiments or {"grid": ExperimentParams(
            protocols=self.teacher.protocols,
            synthetic_shares=self.teacher.synthetic_shares if "mixed" in self.teacher.protocols else [])}
        return {name: experiment.model_copy(update={
                    "temperatures": experiment.temperatures or list(self.generation.temperatures),
                    "filters": experiment.filters or list(self.filter.methods)})
                for name, experiment in named.items()}


def _location(loc: tuple) -> str:
    parts: list[str] = []
    for piece in loc:
        if isinstance(piece, int):
            parts[-1] = f"{parts[-1]}[{piece}]" if parts else f"[{piece}]"
        else:
            parts.append(str(piece))
    return ".".join(parts)


def _describe(error: dict) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key (a typo?); see the schema in synthmix/params.py"
    if kind == "missing":
        return "required key is missing"
    message = message.removeprefix("Value error, ")
    value = error.get("input")
    return message if isinstance(value, dict) else f"{message}; got {value!r}"


def parse_params(data: dict, source: str = "<params>") -> StudyParams:
    """Check a params mapping and return it as ``StudyParams``; raise ``InputError`` listing every problem."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        return StudyParams.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = _location(error["loc"]) or "(top level)"
            problems.append(f"{source}: {where}: {_describe(error)}")
        raise InputError(problems) from None


def load_params(path: str | Path) -> StudyParams:
    """Read a params YAML file and check it against the schema (see ``parse_params``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    return parse_params(data if data is not None else {}, str(path))


def resolve_relative(path_text: str, params_path: str | Path) -> Path:
    """A path from a params file, taken relative to the params file's folder unless absolute."""
    path = Path(path_text).expanduser()
    return path if path.is_absolute() else (Path(params_path).resolve().parent / path)
