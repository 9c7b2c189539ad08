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
    item_text_column: str | None = Field(
        None, description="optional column with each item's question text (overrides the rubric's question per item)")
    reference_column: str | None = Field(
        None, description="optional column with reference answers per item (one per row, or several separated by "
        "' || '); they become the item's example responses coded 1")
    dedupe: bool = Field(
        False, description="keep one copy per normalised response text with its majority label (conflicts reported)")
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
    pool_size_per_label: int | Literal["auto"] = Field(
        "auto", description="responses to collect per label and temperature; 'auto': derived from the shares the "
        "experiments ask for, the human training size and label_balance, times pool_margin")
    pool_margin: float = Field(
        1.5, ge=1, description="auto pool size of a pool the replicates share: this many times the largest draw a "
        "condition needs (replicates then draw overlapping subsets of it); a pool one replicate owns holds exactly "
        "its largest draw")
    label_balance: Literal["match_human", "balanced"] = Field(
        "match_human", description="synthetic responses drawn at the human training data's positive rate, or 50/50")
    examples: Literal["rubric", "human_train"] = Field(
        "rubric", description="the example responses in each prompt: the rubric's, or examples_per_call human "
        "training responses of the label asked for, drawn afresh per call from the replicate's training split "
        "only (then every replicate has its own pool)")
    examples_per_call: int = Field(3, ge=1, le=20, description="examples: human_train: responses per prompt")
    per_replicate: bool = Field(
        False, description="a fresh pool per replicate (generation seed + 100000 x replicate), so the "
        "variance across replicates includes generation; for API users")
    responses_per_call: int = Field(10, ge=1, le=50, description="'draft K responses' per call")
    max_tokens: int = Field(500, ge=16)
    seed: int = Field(0, description="generation seed; call i uses seed + i")
    max_calls_per_label: int = Field(60, ge=1, description="give up on a label after this many calls")
    max_retries: int = Field(4, ge=0)
    concurrency: int = Field(8, ge=1, description="LLM calls in flight at once (the pool does not depend on it); "
                             "managed-llama-cpp: that many servers, at most one per server thread")
    request_timeout_s: float = Field(120.0, gt=0)
    server_threads: int | None = Field(None, ge=1, description="managed-llama-cpp: threads of all its servers together "
                                       "(default: the step's threads, else all cores)")
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
    judge_temperature: float = Field(0.0, ge=0, le=2)
    judge_max_tokens: int = Field(200, ge=16)
    judge_concurrency: int = Field(8, ge=1, description="llm_judge: grading calls in flight at once (1 with a managed llama.cpp server)")


class TeacherParams(_Strict):
    """The teacher classifier and its training protocol (03_train_teacher)."""

    model: str = Field("minilm-l6", description="short name, Hugging Face id, or local folder")
    protocols: list[Literal["incremental", "mixed", "replay"]] = Field(["incremental"], min_length=1)
    max_length: int = Field(128, ge=8)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    max_epochs: int = Field(10, ge=1)
    patience: int = Field(2, ge=1, description="early stopping patience on the validation split")
    increment: int = Field(25, ge=1, description="incremental and replay: responses added per step (the curve also "
                           "gets a checkpoint at exactly each share asked for)")
    synthetic_shares: list[float] = Field(
        [0.5], min_length=1, description="the grid's shares when no experiments are named"
    )
    bootstrap_resamples: int = Field(1000, ge=10)
    evaluate: Literal["shares", "every_increment"] = Field(
        "shares", description="incremental and replay: score the test split at checkpoint 0 and at each share asked "
        "for (what claims read), or after every increment (the whole curve); the scored checkpoints are the same either way")
    length_bucketing: bool = Field(
        False, description="train on batches of similar length (less padding, faster; different batches, so not the "
        "same numbers as without)")
    keep_model: bool = False

    @field_validator("synthetic_shares")
    @classmethod
    def _share_range(cls, values: list[float]) -> list[float]:
        return _check_shares(values)


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
    protocols: list[Literal["incremental", "mixed", "replay"]] = Field(
        ["incremental"], min_length=1,
        description="incremental: human fine-tune, then synthetic increments; mixed: trained from scratch on "
        "human + synthetic; replay: the incremental schedule on resampled human responses (training-steps control)")
    synthetic_shares: list[float] = Field(
        ..., min_length=1, description="synthetic shares of the training data evaluated exactly: checkpoints of "
        "the incremental curve (which runs up to the largest), and the mixtures trained (1 = synthetic only)")
    mixed_shares: list[float] | None = Field(
        None, description="mixed: the shares trained from scratch (default: synthetic_shares)")
    distill: bool = Field(True, description="distil this experiment's teachers into students (04_distill)")
    pool_per_replicate: bool = Field(
        False, description="each replicate draws from its own pool (generation seed + 100000 x replicate), so the "
        "spread across replicates includes generation variance; otherwise the replicates share one pool per "
        "temperature (set generation.per_replicate for every experiment at once)")
    human_sizes: list[int | Literal["all"]] | None = Field(
        None, description="a human-size experiment: the human training responses each condition starts from, a "
        "stratified subsample of the replicate's training split, nested (the 25 are inside the 50); 'all': the whole "
        "split. At each size the study trains human-only (checkpoint 0), human + synthetic at synthetic_shares "
        "(protocol incremental), and human + as many extra human responses from the rest of the split on the same "
        "schedule (protocol extra_human, where the split has them). Validation and test splits are unchanged")
    extra_human_extent: float = Field(
        2.0, ge=1, description="human-size experiment: the extra-human arm continues its schedule up to this many "
        "times the largest synthetic draw (where the training split has them), so the human learning curve can be "
        "read above the synthetic count (the exchange rate)")

    @field_validator("synthetic_shares", "mixed_shares")
    @classmethod
    def _share_range(cls, values: list[float] | None) -> list[float] | None:
        return values if values is None else _check_shares(values)

    @field_validator("human_sizes")
    @classmethod
    def _plain_sizes(cls, values: list | None) -> list | None:
        if values is None:
            return values
        if not values:
            raise ValueError("expected at least one human size (a count, or 'all')")
        for value in values:
            if value != "all" and value < 1:
                raise ValueError(f"human size {value} is not a positive count of responses (or 'all')")
        if len(set(values)) != len(values):
            raise ValueError("human sizes are repeated")
        return values

    @model_validator(mode="after")
    def _reachable_shares(self):
        if self.human_sizes is not None and self.protocols != ["incremental"]:
            raise ValueError("a human-size experiment (human_sizes) trains protocol 'incremental' only (its human-only "
                             "and extra-human arms come with it): set protocols: [incremental]")
        if ("incremental" in self.protocols or "replay" in self.protocols) and max(self.synthetic_shares) >= 1:
            raise ValueError("share 1.0 cannot be reached by protocol 'incremental' or 'replay' (they start from "
                             "the human fine-tune); use protocol 'mixed' for synthetic-only training")
        if self.protocols == ["replay"]:
            raise ValueError("protocol 'replay' is a control: run it beside 'incremental'")
        return self


DEFAULT_ESTIMAND = (
    "The expected difference in test AUC between teachers trained with and without the treatment (synthetic "
    "responses at the claim's share, a filter, a temperature) on this many human responses drawn from the data "
    "set's population; the expectation runs over training sets, training seeds, synthetic draws and test "
    "responses.")


class ClaimsParams(_Strict):
    """How the paper's claims are judged, stated before the run (05_analyze).

    Directions are fixed by the claims: 1 (synthetic responses help), 1-control (they help beyond the
    replay control), 2a/2b/2c (t >= variable_from is more variable, less stable, gains more than
    stable_temperature) are "helps" claims; 1-best (no other share beats size_share) and 3
    (filtering does not help) are "does_not_help" claims. Primary verdicts: 1, 2a, 3.
    """

    estimand: str = Field(DEFAULT_ESTIMAND, min_length=1, description="what every interval of a difference is an "
                          "interval for (printed in 05_analyze's methods)")
    margin: float = Field(0.02, gt=0, lt=1, description="smallest AUC difference of interest (claims 1, 2c, 3)")
    sd_ratio_margin: float = Field(1.5, gt=1, description="smallest SD ratio of interest (claim 2a)")
    instability_ratio_margin: float = Field(1.5, gt=1, description="smallest ratio of instability along the curve "
                                            "of interest (claim 2b)")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="each decision is a one-sided test at alpha: secondary "
                         "intervals are 1 - 2 alpha")
    multiplicity: Literal["bonferroni", "none"] = Field(
        "bonferroni", description="error control across the three claims' primary verdicts: bonferroni decides "
        "each at alpha / 3 (1 - 2 alpha / 3 intervals); none at alpha")
    power: float = Field(0.8, gt=0, lt=1, description="power that 'replicates needed' aims for: the chance of a "
                         "decisive verdict when the truth lies one margin beyond the boundary")
    size_share: float = Field(0.8, gt=0, le=1, description="claim 1 is judged at this share (experiment 'size')")
    variety_share: float = Field(0.5, gt=0, lt=1, description="claim 2 compares temperatures at this share (experiment 'variety')")
    consistency_share: float = Field(0.5, gt=0, lt=1, description="claim 3 compares filters at this share (experiment 'consistency')")
    stable_temperature: float = Field(0.3, ge=0, le=2, description="claim 2: the temperature claimed stable")
    variable_from: float = Field(0.7, ge=0, le=2, description="claim 2: temperatures at or above this are claimed variable")
    human_size_share: float | None = Field(
        None, gt=0, lt=1, description="claim 4 (experiment 'human_size', 'augmentation helps more when human data is "
        "scarce') and the exchange rate are judged at this share (default: the experiment's largest share)")
    human_size_margin: float | None = Field(
        None, gt=0, lt=1, description="claim 4: smallest difference of interest between the gain at the smallest "
        "and at the largest human size, and the gain below which augmentation no longer pays (default: margin)")
    exchange_draws: int = Field(4000, ge=200, description="draws of the mean gains behind the exchange rate's and "
                                "the crossover size's intervals")


class ComputeParams(_Strict):
    """Where and with how many threads the classifiers run (part of a step's identity)."""

    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="teacher, student and grader device; auto: cuda, then mps, then cpu")
    threads: int = Field(1, ge=1, description="CPU threads per step: fixed, so results do not depend on --workers")
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", description="teacher, student and grader arithmetic: fp32; bf16 (autocast, on any device); auto: bf16 "
        "on a GPU that has it (else fp16) and on a CPU with AVX-512 BF16 or AMX, else fp32")


class CostsParams(_Strict):
    """What a study costs: LLM prices, the cost of coding by hand, the rates an estimate assumes before
    anything is measured, and when ``synthmix run`` asks before starting. Every key is optional."""

    currency: str = Field("USD", description="currency of every price below (a label only; nothing is converted)")
    llm_price_per_million_input_tokens: float | None = Field(
        None, ge=0, description="LLM price per 1,000,000 prompt (input) tokens; null: free (a local model)")
    llm_price_per_million_output_tokens: float | None = Field(
        None, ge=0, description="LLM price per 1,000,000 completion (output) tokens; null: free (a local model)")
    human_coding_cost_per_response: float | None = Field(
        None, ge=0, description="money to have one response coded by hand (to compare with synthetic data)")
    human_coding_seconds_per_response: float | None = Field(
        None, ge=0, description="seconds a person takes to code one response by hand")
    assumed_yield: float = Field(
        0.35, gt=0, le=1, description="estimate before anything is measured: new distinct responses per call as a "
        "share of generation.responses_per_call (SmolLM2-135M at t = 0.7 measured 0.36; duplicates lower it at "
        "low temperatures); a measured yield from the cache or earlier runs replaces it")
    assumed_completion_tokens_per_response: float = Field(
        18.0, gt=0, description="estimate before anything is measured: completion tokens per response asked for")
    assumed_completion_tokens_per_second: float = Field(
        110.0, gt=0, description="estimate before anything is measured: completion tokens per second of one call "
        "(managed llama.cpp with SmolLM2-135M on one CPU thread measured about 110)")
    assumed_seconds_per_call: float = Field(
        0.1, ge=0, description="estimate before anything is measured: seconds per call on top of its completion "
        "tokens (prompt processing, latency; a hosted API is nearer 1-5)")
    assumed_train_seconds_per_response: float = Field(
        0.065, gt=0, description="estimate before anything is measured: seconds per response per training pass "
        "of the teacher (MiniLM-L6 on one CPU thread; the student's per layer kept); measured steps rescale it")
    assumed_eval_seconds_per_response: float = Field(
        0.01, gt=0, description="estimate before anything is measured: seconds per response scored (forward pass)")
    assumed_step_overhead_seconds: float = Field(
        12.0, ge=0, description="estimate before anything is measured: seconds per step for its kernel, imports "
        "and model loading")
    confirm_above_hours: float | None = Field(
        4.0, gt=0, description="`synthmix run` asks before starting when the estimated time of the steps to do "
        "exceeds this many hours (--yes skips the question); null: never ask about time")
    confirm_above_money: float | None = Field(
        20.0, ge=0, description="`synthmix run` asks before starting when the estimated LLM spend exceeds this "
        "(in currency); null: never ask about money")


class StudyParams(_Strict):
    """One study: data, generator, filter, teacher, student, replicates, experiments and claims."""

    study: str = Field(..., description="name, a plain folder name (letters, digits, _ . -; not starting "
                       "with '.' or '-'); results go to results/<study>/")
    description: str = ""
    dataset: DatasetParams = DatasetParams()
    generation: GenerationParams = GenerationParams()
    filter: FilterParams = FilterParams()
    teacher: TeacherParams = TeacherParams()
    student: StudentParams = StudentParams()
    replicates: int = Field(
        5, ge=1, description="replicates: each has its own human split, training seed and synthetic draw")
    experiments: dict[str, ExperimentParams] = Field(
        {}, description="named experiments; empty: one experiment 'grid' crossing every temperature, filter and protocol"
    )
    claims: ClaimsParams = ClaimsParams()
    compute: ComputeParams = ComputeParams()
    costs: CostsParams = Field(CostsParams(), description="prices, human-coding cost, the rates estimates assume, "
                               "and when `run` asks before starting")

    @field_validator("study")
    @classmethod
    def _plain_folder_name(cls, name: str) -> str:
        import re

        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", name):
            raise ValueError("expected a plain folder name: letters, digits, '_', '.', '-', not starting with "
                             "'.' or '-', no '/' (results go to results/<study>/)")
        return name

    @model_validator(mode="after")
    def _experiments_use_what_exists(self):
        for name, experiment in self.experiments.items():
            extra = sorted(set(experiment.temperatures or []) - set(self.generation.temperatures))
            if extra:
                raise ValueError(f"experiments.{name}.temperatures: {extra} are not in generation.temperatures")
            extra = sorted(set(experiment.filters or []) - set(self.filter.methods))
            if extra:
                raise ValueError(f"experiments.{name}.filters: {extra} are not in filter.methods")
            if experiment.human_sizes is not None and len(experiment.filters or self.filter.methods) != 1:
                raise ValueError(f"experiments.{name}: a human-size experiment compares one pool at several human "
                                 "sizes; name one filter (filters: [none])")
        checks = (("size", "size_share"), ("variety", "variety_share"), ("consistency", "consistency_share"),
                  ("human_size", "human_size_share"))
        for name, key in checks:
            experiment = self.experiments.get(name)
            share = getattr(self.claims, key)
            if experiment is not None and share is not None and not any(abs(share - s) < 1e-9 for s in experiment.synthetic_shares):
                raise ValueError(f"claims.{key} ({share}) is not among experiments.{name}.synthetic_shares "
                                 f"{experiment.synthetic_shares}: the claim is judged at a share the experiment runs")
        return self

    def experiment_grid(self) -> dict[str, ExperimentParams]:
        """The experiments with every default filled in (the implicit 'grid' when none are named)."""
        named = self.experiments or {"grid": ExperimentParams(
            protocols=self.teacher.protocols, synthetic_shares=self.teacher.synthetic_shares)}
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
