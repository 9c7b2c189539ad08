"""A study as a graph of steps: params → conditions → one notebook execution per step.

A ``Step`` is a plain, picklable record whose inputs and outputs are paths, so any executor
(in-process, a process pool, Dask workers on other machines) can run it with
``synthmix.runner.execute_step``. Each step's output folder is named by a hash of its own
parameters and its inputs' hashes: a changed parameter reruns only what depends on it.

    generate(temperature[, replicate])                 one pool per temperature (per replicate on request)
      └─ filter(pool, method[, replicate])             none | llm_judge | teacher_agreement (own grader per replicate)
           └─ train_teacher(protocol, shares, replicate)
                └─ distill(teacher)                    for experiments with distill: true
    train_teacher(replay, shares, replicate)           the training-steps control (human responses only)
    analyze(all of the above)                          once per study

A replicate r is one draw of everything a conclusion should hold across: its own human split
(``split_seed`` and r), training seed r and synthetic draw. ``study_design`` works out, from
the shares the experiments ask for and each replicate's human training size, how many synthetic
responses of each label every pool must supply; a share is reached exactly or the study does
not start.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from synthmix import io
from synthmix.data import dataset_fingerprint
from synthmix.errors import InputError
from synthmix.params import StudyParams
from synthmix.rubric import rubric_path
from synthmix.sampling import (
    increment_schedule,
    item_targets,
    label_counts,
    pool_target,
    positive_rate,
    synthetic_count,
)

NOTEBOOKS = {
    "generate": "01_generate.ipynb",
    "filter": "02_filter.ipynb",
    "train_teacher": "03_train_teacher.ipynb",
    "distill": "04_distill.ipynb",
    "analyze": "05_analyze.ipynb",
}

OUTPUTS = {
    "generate": ("pool.parquet", "generation_report.json"),
    "filter": ("filtered_pool.parquet", "grades.parquet", "filter_report.json"),
    "train_teacher": ("metrics.parquet", "test_predictions.parquet", "transfer_logits.parquet", "teacher_report.json"),
    "distill": ("student_metrics.json", "student_predictions.parquet"),
    "analyze": ("summary.csv",),
}

#: Generation settings that do not change the replies (so not part of a pool's identity).
NOT_IN_POOL_IDENTITY = {"temperatures", "max_retries", "request_timeout_s", "server_threads", "concurrency",
                        "pool_size_per_label", "pool_margin", "per_replicate", "label_balance"}
GENERATION_SEED_STRIDE = 100_000  # generation seed of replicate r's own pool: seed + stride * r


@dataclass(frozen=True)
class Step:
    """One notebook execution: what to run, with which parameters, into which folder."""

    kind: str
    condition: str
    notebook: str
    parameters: dict
    output_dir: str
    outputs: tuple[str, ...]
    depends_on: tuple[str, ...] = ()
    digest: str = ""
    experiments: tuple[str, ...] = field(default=())
    threads: int = 1
    needs_gpu: bool = False

    @property
    def id(self) -> str:
        """A unique, readable id: kind/condition-digest."""
        return f"{self.kind}/{self.condition}-{self.digest}"


def notebooks_dir() -> Path:
    """The folder holding the numbered notebooks (the checkout's ``notebooks/``)."""
    import os

    if os.environ.get("SYNTHMIX_NOTEBOOKS"):
        return Path(os.environ["SYNTHMIX_NOTEBOOKS"])
    return Path(__file__).resolve().parents[2] / "notebooks"


def available_kinds() -> list[str]:
    """The step kinds whose notebook exists."""
    return [kind for kind, name in NOTEBOOKS.items() if (notebooks_dir() / name).is_file()]


def _input_fingerprints(params: StudyParams, params_path: Path) -> dict:
    """Hashes of the data and rubric files, so that editing them reruns what depends on them."""
    rubric = rubric_path(params.dataset, params_path)
    return {
        "dataset": dataset_fingerprint(params.dataset, params_path),
        "rubric": io.file_hash(rubric) if rubric.is_file() else str(rubric),
    }


# ------------------------------------------------------------------------- the design
@dataclass(frozen=True)
class Use:
    """One way a pool is used: an experiment's condition for one replicate, and what it draws."""

    experiment: str
    temperature: float
    method: str
    protocol: str
    shares: tuple[float, ...]
    replicate: int
    n_human: int
    rate: float

    @property
    def largest_draw(self) -> int:
        """Synthetic responses this use draws at most (the end of its schedule, or its mixture)."""
        if self.protocol == "mixed":
            return max(synthetic_count(self.n_human, s) for s in self.shares)
        schedule = increment_schedule(self.n_human, self.shares, 1)
        return schedule[-1] if schedule else 0

    def name(self) -> str:
        """The condition's name without the replicate (e.g. t0.7-none-incremental)."""
        protocol = self.protocol if self.protocol != "mixed" else f"mixed{self.shares[0]:g}"
        return f"t{self.temperature:g}-{self.method}-{protocol}"


@dataclass
class StudyDesign:
    """What a study runs and needs: the uses of every pool, each pool's target and needs per label."""

    replicates: list[dict]
    uses: list[Use]
    incremental_shares: dict
    replay_shares: tuple[float, ...]
    needs: dict
    targets: dict
    problems: list[str]
    item_targets: dict = field(default_factory=dict)


def replicate_sizes(params: StudyParams, params_path) -> list[dict]:
    """Per replicate: its human training size and the positive rate synthetic draws keep."""
    from synthmix.data import load_human_data, split_human_data

    dataset = load_human_data(params.dataset, params_path).dataset
    sizes = []
    for replicate in range(params.replicates):
        train = split_human_data(dataset, params.dataset, replicate=replicate)["train"]
        sizes.append({"replicate": replicate, "n_human": len(train),
                      "rate": positive_rate(train["label"], params.generation.label_balance),
                      "items": item_weights(train) if params.dataset.item_column else None})
    return sizes


def item_weights(human_part) -> dict[str, int]:
    """Human responses per item in a split: what per-item synthetic draws are proportional to."""
    return dict(Counter(str(item) for item in human_part["item"]))


def study_design(params: StudyParams, params_path, sizes: list[dict] | None = None) -> StudyDesign:
    """Expand the experiments into uses of each pool and work out every pool's needs per label.

    An incremental run of a (temperature, filter) evaluates the union of the shares all
    experiments ask of it; the replay control follows the schedule of the incremental runs it
    controls. With ``pool_size_per_label: auto`` a pool's target is its largest need times
    ``pool_margin``; a fixed size that cannot supply a need is a problem naming the condition.
    """
    sizes = sizes if sizes is not None else replicate_sizes(params, params_path)
    grid = params.experiment_grid()
    incremental: dict[tuple, set] = {}
    for grid_params in grid.values():
        if "incremental" in grid_params.protocols:
            for temperature in grid_params.temperatures:
                for method in grid_params.filters:
                    incremental.setdefault((temperature, method), set()).update(grid_params.synthetic_shares)
    replay: set = set()
    for grid_params in grid.values():
        if "replay" in grid_params.protocols:
            for temperature in grid_params.temperatures:
                for method in grid_params.filters:
                    replay.update(incremental.get((temperature, method), ()))
    uses = []
    for name, grid_params in grid.items():
        for temperature in grid_params.temperatures:
            for method in grid_params.filters:
                trainings = []
                if "incremental" in grid_params.protocols:
                    trainings.append(("incremental", tuple(sorted(incremental[(temperature, method)]))))
                if "mixed" in grid_params.protocols:
                    trainings += [("mixed", (share,)) for share in
                                  (grid_params.mixed_shares or grid_params.synthetic_shares)]
                for protocol, shares in trainings:
                    for size in sizes:
                        uses.append(Use(name, temperature, method, protocol, shares, size["replicate"],
                                        size["n_human"], size["rate"]))
    needs: dict = {}
    item_needs: dict = {}
    items_of = {size["replicate"]: size.get("items") for size in sizes}
    for use in uses:
        need = needs.setdefault(use.temperature, {1: 0, 0: 0})
        for label, n in label_counts(use.largest_draw, use.rate).items():
            need[label] = max(need[label], n)
        weights = items_of.get(use.replicate)
        if weights:  # per item, in proportion to the replicate's human training data
            per_item = item_needs.setdefault(use.temperature, {})
            for item, counts in item_targets(label_counts(use.largest_draw, use.rate), weights).items():
                slot = per_item.setdefault(item, {1: 0, 0: 0})
                for label, n in counts.items():
                    slot[label] = max(slot[label], n)
    problems, targets = [], {}
    fixed = params.generation.pool_size_per_label
    for temperature, need in needs.items():
        if fixed == "auto":
            targets[temperature] = pool_target(need, params.generation.pool_margin)
            continue
        targets[temperature] = {1: int(fixed), 0: int(fixed)}
        for use in uses:
            if use.temperature != temperature:
                continue
            wanted = label_counts(use.largest_draw, use.rate)
            for label in (1, 0):
                if wanted[label] > fixed:
                    top = max(use.shares)
                    problems.append(
                        f"experiments.{use.experiment}: condition {use.name()} (replicate {use.replicate}) needs "
                        f"{wanted[label]} synthetic responses coded {label} at share {top:g} "
                        f"({use.n_human} human training responses, {use.rate:.0%} positive), but "
                        f"generation.pool_size_per_label is {fixed}; raise it or set it to 'auto'")
    unique = list(dict.fromkeys(problems))
    margin = params.generation.pool_margin if fixed == "auto" else 1.0
    per_item_targets = {t: {item: {label: math.ceil(n * margin) for label, n in counts.items()}
                            for item, counts in by_item.items()} for t, by_item in item_needs.items()}
    return StudyDesign(sizes, uses, {k: tuple(sorted(v)) for k, v in incremental.items()},
                       tuple(sorted(replay)), needs, targets, unique, per_item_targets)


def plan_study(params: StudyParams, params_path: str | Path, results_root: str | Path,
               only: list[str] | None = None, design: StudyDesign | None = None) -> tuple[list[Step], list[str]]:
    """Expand a study into steps in dependency order; return (steps, kinds left out as not available).

    ``only`` keeps the named kinds (e.g. ``["generate"]``); steps a kept step depends on stay in
    the plan, since their outputs are its inputs. Raises ``InputError`` when a pool of fixed size
    cannot supply a share the experiments ask for.
    """
    params_path = Path(params_path).resolve()
    design = design or study_design(params, params_path)
    if design.problems:
        raise InputError([f"{params_path}: {p}" for p in design.problems])
    study_dir = Path(results_root).resolve() / params.study
    cache_path = str(Path(results_root).resolve() / "llm_cache.sqlite")
    base_cache_dir = str(Path(results_root).resolve() / ".cache" / "base_teachers")
    fingerprints = _input_fingerprints(params, params_path)
    available = available_kinds()
    compute = params.compute.model_dump()
    gpu = params.compute.device == "cuda"
    steps: dict[str, Step] = {}
    members: dict[str, set[str]] = {}

    def add(kind: str, condition: str, identity: dict, parameters: dict, depends: tuple[Step, ...] = (),
            experiment: str | None = None, uses_compute: bool = False) -> Step | None:
        if kind not in available:
            return None
        if uses_compute:
            identity = {**identity, "compute": compute}
        digest = io.stable_hash({"kind": kind, **identity, "inputs": [d.digest for d in depends]}, length=10)
        output_dir = study_dir / f"{NOTEBOOKS[kind][:2]}_{kind}" / f"{condition}-{digest}"
        step = Step(kind=kind, condition=condition, notebook=NOTEBOOKS[kind],
                    parameters={"params_file": str(params_path), **parameters, "output_dir": str(output_dir)},
                    output_dir=str(output_dir), outputs=OUTPUTS[kind],
                    depends_on=tuple(d.id for d in depends), digest=digest,
                    threads=params.compute.threads if uses_compute else 1, needs_gpu=gpu and uses_compute)
        steps.setdefault(step.id, step)
        if experiment is not None:
            members.setdefault(step.id, set()).add(experiment)
        return step

    generation = params.generation.model_dump(exclude=NOT_IN_POOL_IDENTITY)
    teacher_settings = params.teacher.model_dump(exclude={"protocols", "synthetic_shares"})
    human = {"dataset": params.dataset.model_dump(), "data": fingerprints["dataset"], "teacher": teacher_settings}
    per_replicate = params.generation.per_replicate
    from_human = params.generation.examples == "human_train"
    distilled = {name for name, grid_params in params.experiment_grid().items() if grid_params.distill}

    def pool_step(temperature: float, replicate: int, experiment: str) -> Step | None:
        target = design.targets[temperature]
        own = replicate if per_replicate or from_human else None
        condition = f"t{temperature:g}" + (f"-r{replicate}" if own is not None else "")
        seed_offset = GENERATION_SEED_STRIDE * replicate if own is not None else 0
        by_item = {item: [counts[1], counts[0]] for item, counts in design.item_targets.get(temperature, {}).items()}
        identity = {"generation": generation, "rubric": fingerprints["rubric"], "temperature": temperature,
                    "targets": target, "seed_offset": seed_offset}
        if by_item:  # a multi-item data set: each item's own responses (part of the pool's identity)
            identity |= {"item_targets": by_item, "data": fingerprints["dataset"]}
        if from_human:  # prompts show the replicate's own human training responses: its split is the input
            identity |= {"dataset": params.dataset.model_dump(), "data": fingerprints["dataset"], "replicate": replicate}
        return add("generate", condition, identity,
                   {"temperature": temperature, "target_positive": target[1], "target_negative": target[0],
                    "item_targets": by_item, "seed_offset": seed_offset,
                    "replicate": replicate if from_human else -1, "cache_path": cache_path},
                   experiment=experiment)

    def filter_step(pool: Step, temperature: float, method: str, replicate: int, experiment: str) -> Step | None:
        identity = {"method": method, "filter": params.filter.model_dump(exclude={"methods", "judge_concurrency"})}
        condition = f"t{temperature:g}-{method}"
        if method == "teacher_agreement":  # each replicate's own grader, trained on its own human split
            identity |= {**human, "replicate": replicate}
            condition += f"-r{replicate}"
        if method == "llm_judge":
            identity |= {"generation": generation, "rubric": fingerprints["rubric"]}
        return add("filter", condition, identity,
                   {"method": method, "replicate": replicate if method == "teacher_agreement" else -1,
                    "pool_dir": pool.output_dir, "cache_path": cache_path,
                    "base_cache_dir": base_cache_dir}, (pool,), experiment,
                   uses_compute=method == "teacher_agreement")

    def teacher_step(condition: str, protocol: str, shares, replicate: int, depends: tuple, experiment: str,
                     filtered: Step | None, pool: Step | None) -> Step | None:
        teacher = add("train_teacher", condition,
                      {**human, "protocol": protocol, "shares": list(shares), "replicate": replicate,
                       "label_balance": params.generation.label_balance},
                      {"protocol": protocol, "synthetic_shares": [float(s) for s in shares], "replicate": replicate,
                       "filtered_dir": filtered.output_dir if filtered else "",
                       "pool_dir": pool.output_dir if pool else "", "base_cache_dir": base_cache_dir},
                      depends, experiment, uses_compute=True)
        if teacher is not None and experiment in distilled:
            add("distill", condition, {"student": params.student.model_dump(), "replicate": replicate},
                {"replicate": replicate, "teacher_dir": teacher.output_dir}, (teacher,), experiment,
                uses_compute=True)
        return teacher

    for use in design.uses:
        pool = pool_step(use.temperature, use.replicate, use.experiment)
        if pool is None:
            continue
        filtered = filter_step(pool, use.temperature, use.method, use.replicate, use.experiment)
        if filtered is None:
            continue
        teacher_step(f"{use.name()}-r{use.replicate}", use.protocol, use.shares, use.replicate,
                     (filtered, pool), use.experiment, filtered, pool)
    for name, grid_params in params.experiment_grid().items():
        if "replay" in grid_params.protocols:
            for size in design.replicates:
                teacher_step(f"replay-r{size['replicate']}", "replay", design.replay_shares, size["replicate"],
                             (), name, None, None)

    for step_id, names in members.items():
        steps[step_id] = replace(steps[step_id], experiments=tuple(sorted(names)))
    upstream = tuple(steps.values())
    analyze = add("analyze", "study", {"all": [s.digest for s in upstream]}, {"study_dir": str(study_dir)}, upstream)
    if analyze is not None:
        steps[analyze.id] = replace(analyze, experiments=tuple(sorted(params.experiment_grid())))

    missing = [kind for kind in NOTEBOOKS if kind not in available]
    planned = list(steps.values())
    if only:
        unknown = sorted(set(only) - set(NOTEBOOKS))
        if unknown:
            raise InputError(f"--only: unknown step {', '.join(unknown)}; expected some of {', '.join(NOTEBOOKS)}")
        keep = {s.id for s in planned if s.kind in only}
        for step in reversed(planned):
            if step.id in keep:
                keep.update(step.depends_on)
        planned = [s for s in planned if s.id in keep]
    return planned, missing


def default_results_root(params_file: str | Path) -> Path:
    """The ``results/`` folder beside a params file's folder (``params/x.yaml`` → ``results/``):
    where a notebook opened with its default parameters builds what it needs."""
    return Path(params_file).resolve().parent.parent / "results"
