"""A study as a graph of steps: params → conditions → one notebook execution per step.

A ``Step`` is a plain, picklable record whose inputs and outputs are paths, so any executor
(in-process, a process pool, Dask workers on other machines) can run it with
``synthmix.runner.execute_step``. Each step's output folder is named by a hash of its own
parameters and its inputs' hashes: a changed parameter reruns only what depends on it.

    generate(temperature)                          one pool per temperature, shared
      └─ filter(pool, method)                      none | llm_judge | teacher_agreement
           └─ train_teacher(protocol, share, seed) per condition and seed
                └─ distill(teacher, seed)
    analyze(all of the above)                      once per study
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from synthmix import io
from synthmix.data import dataset_path
from synthmix.params import StudyParams
from synthmix.rubric import rubric_path

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
    data = dataset_path(params.dataset, params_path)
    rubric = rubric_path(params.dataset, params_path)
    return {
        "dataset": io.file_hash(data) if isinstance(data, Path) and data.is_file() else str(data),
        "rubric": io.file_hash(rubric) if rubric.is_file() else str(rubric),
    }


def plan_study(params: StudyParams, params_path: str | Path, results_root: str | Path,
               only: list[str] | None = None) -> tuple[list[Step], list[str]]:
    """Expand a study into steps in dependency order; return (steps, kinds left out as not available).

    ``only`` keeps the named kinds (e.g. ``["generate"]``); steps a kept step depends on stay in
    the plan, since their outputs are its inputs.
    """
    params_path = Path(params_path).resolve()
    study_dir = Path(results_root).resolve() / params.study
    cache_path = str(Path(results_root).resolve() / "llm_cache.sqlite")
    base_cache_dir = str(Path(results_root).resolve() / ".cache" / "base_teachers")
    fingerprints = _input_fingerprints(params, params_path)
    available = available_kinds()
    steps: dict[str, Step] = {}

    def add(kind: str, condition: str, identity: dict, parameters: dict, depends: tuple[Step, ...] = ()) -> Step | None:
        if kind not in available:
            return None
        digest = io.stable_hash({"kind": kind, **identity, "inputs": [d.digest for d in depends]}, length=10)
        output_dir = study_dir / f"{NOTEBOOKS[kind][:2]}_{kind}" / f"{condition}-{digest}"
        step = Step(kind=kind, condition=condition, notebook=NOTEBOOKS[kind],
                    parameters={"params_file": str(params_path), **parameters, "output_dir": str(output_dir)},
                    output_dir=str(output_dir), outputs=OUTPUTS[kind],
                    depends_on=tuple(d.id for d in depends), digest=digest)
        steps[step.id] = step
        return step

    generation = params.generation.model_dump(exclude={"temperatures", "max_retries", "request_timeout_s",
                                                       "server_threads"})
    teacher_settings = params.teacher.model_dump(exclude={"protocols", "synthetic_shares"})
    members: dict[str, set[str]] = {}

    def add_in(experiment: str, *args, **kwargs) -> Step | None:
        step = add(*args, **kwargs)
        if step is not None:
            members.setdefault(step.id, set()).add(experiment)
        return step

    for experiment, grid in params.experiment_grid().items():
        trainings = [("incremental", None)] if "incremental" in grid.protocols else []
        if "mixed" in grid.protocols:
            trainings += [("mixed", share) for share in grid.synthetic_shares]
        for temperature in grid.temperatures:
            pool = add_in(experiment, "generate", f"t{temperature}",
                          {"generation": generation, "rubric": fingerprints["rubric"], "temperature": temperature},
                          {"temperature": temperature, "cache_path": cache_path})
            if pool is None:
                continue
            for method in grid.filters:
                identity = {"method": method, "filter": params.filter.model_dump(exclude={"methods"})}
                if method == "teacher_agreement":
                    identity |= {"dataset": params.dataset.model_dump(), "data": fingerprints["dataset"],
                                 "teacher": teacher_settings}
                if method == "llm_judge":
                    identity |= {"generation": generation, "rubric": fingerprints["rubric"]}
                filtered = add_in(experiment, "filter", f"t{temperature}-{method}", identity,
                                  {"method": method, "pool_dir": pool.output_dir, "cache_path": cache_path,
                                   "base_cache_dir": base_cache_dir}, (pool,))
                if filtered is None:
                    continue
                for protocol, share in trainings:
                    name = protocol if share is None else f"mixed{share}"
                    for seed in params.seeds:
                        condition = f"t{temperature}-{method}-{name}-s{seed}"
                        teacher = add_in(
                            experiment, "train_teacher", condition,
                            {"dataset": params.dataset.model_dump(), "data": fingerprints["dataset"],
                             "teacher": teacher_settings, "protocol": protocol, "share": share, "seed": seed},
                            {"protocol": protocol, "synthetic_share": share if share is not None else -1.0,
                             "seed": seed, "filtered_dir": filtered.output_dir, "pool_dir": pool.output_dir,
                             "base_cache_dir": base_cache_dir},
                            (filtered, pool))
                        if teacher is not None:
                            add_in(experiment, "distill", condition, {"student": params.student.model_dump(), "seed": seed},
                                   {"seed": seed, "teacher_dir": teacher.output_dir}, (teacher,))
    for step_id, names in members.items():
        steps[step_id] = replace(steps[step_id], experiments=tuple(sorted(names)))
    upstream = tuple(steps.values())
    add("analyze", "study", {"all": [s.digest for s in upstream]}, {"study_dir": str(study_dir)}, upstream)
    if "analyze" in available:
        analyze = steps[next(reversed(steps))]
        steps[analyze.id] = replace(analyze, experiments=tuple(sorted(params.experiment_grid())))

    missing = [kind for kind in NOTEBOOKS if kind not in available]
    planned = list(steps.values())
    if only:
        unknown = sorted(set(only) - set(NOTEBOOKS))
        if unknown:
            from synthmix.errors import InputError

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


def upstream_output(params_file: str | Path, kind: str, results_root: str | Path | None = None,
                    include_target: bool = True, **match) -> str:
    """The output folder of a study's first ``kind`` step whose parameters match ``match``.

    Runs what that step depends on (and, with ``include_target``, the step itself) when it is not
    complete, so a notebook opened in JupyterLab with its default parameters builds its inputs offline.
    """
    from synthmix.params import load_params
    from synthmix.runner import run_steps

    params = load_params(params_file)
    steps, _ = plan_study(params, params_file, results_root or default_results_root(params_file), only=[kind])
    chosen = [s for s in steps if s.kind == kind and all(s.parameters.get(k) == v for k, v in match.items())]
    if not chosen:
        raise ValueError(f"{params_file}: no '{kind}' step with {match}")
    target = chosen[0]
    needed, frontier = {target.id}, [target]
    by_id = {s.id: s for s in steps}
    while frontier:
        for parent in frontier.pop().depends_on:
            if parent not in needed:
                needed.add(parent)
                frontier.append(by_id[parent])
    if not include_target:
        needed.discard(target.id)
    run_steps([s for s in steps if s.id in needed], show_progress=False)
    return target.output_dir
