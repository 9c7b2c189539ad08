"""A study as a graph of steps: params → conditions → one notebook execution per step.

A ``Step`` is a plain, picklable record whose inputs and outputs are paths, so any executor
(in-process, a process pool, Dask workers on other machines) can run it with
``synthmix.run.runner.execute_step``. Each step's output folder is named by a hash of its own
parameters and its inputs' hashes: a changed parameter reruns only what depends on it.

    generate(temperature[, replicate])                 one pool per temperature (per replicate on request)
      └─ filter(pool, method[, replicate])             none | llm_judge | teacher_agreement (own grader per replicate)
           └─ train_teacher(protocol, shares, replicate)
                └─ distill(teacher)                    for experiments with distill: true
    train_teacher(replay, shares, replicate)           the training-steps control (human responses only)
    train_teacher(extra_human, shares, size, replicate) human-size experiment: extra human responses, same schedule
    analyze(all of the above)                          once per study

A replicate r is one draw of everything a conclusion should hold across: its own human split
(``split_seed`` and r), training seed r and synthetic draw. ``study_design`` works out, from
the shares the experiments ask for and each replicate's human training size, how many synthetic
responses of each label every pool must supply; a share is reached exactly or the study does
not start.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from synthmix.core import io
from synthmix.core.layout import NOTEBOOKS, OUTPUTS, notebooks_dir
from synthmix.data.design import PoolKey, StudyDesign, study_design
from synthmix.data.sampling import HUMAN_SIZE_SEED
from synthmix.data.loading import dataset_fingerprint
from synthmix.data.rubric import rubric_path
from synthmix.errors import InputError
from synthmix.params import StudyParams
from synthmix.run.snapshot import snapshot_path, snapshot_text

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
    params_text: str = ""  # the params snapshot the kernel reads (written to parameters["params_file"] first)

    @property
    def id(self) -> str:
        """A unique, readable id: kind/condition-digest."""
        return f"{self.kind}/{self.condition}-{self.digest}"


#: Experiments whose claims read the whole learning curve (claim 2b: the instability between successive
#: checkpoints), so their teachers score the test set after every increment whatever ``teacher.evaluate`` says.
CURVE_EXPERIMENTS = ("variety",)


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
    # what every step runs on: the parameters as validated now, not the file as it may be when the step starts
    params_text = snapshot_text(params, params_path, snapshot_path(study_dir, "").parent)
    params_file = str(snapshot_path(study_dir, params_text))
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
                    parameters={"params_file": params_file, **parameters, "output_dir": str(output_dir)},
                    output_dir=str(output_dir), outputs=OUTPUTS[kind],
                    depends_on=tuple(d.id for d in depends), digest=digest,
                    threads=params.compute.threads if uses_compute else 1, needs_gpu=gpu and uses_compute,
                    params_text=params_text)
        steps.setdefault(step.id, step)
        if experiment is not None:
            members.setdefault(step.id, set()).add(experiment)
        return step

    generation = params.generation.model_dump(exclude=NOT_IN_POOL_IDENTITY)
    teacher_settings = params.teacher.model_dump(exclude={"protocols", "synthetic_shares"})
    human = {"dataset": params.dataset.model_dump(), "data": fingerprints["dataset"], "teacher": teacher_settings}
    from_human = params.generation.examples == "human_train"
    distilled = {name for name, grid_params in params.experiment_grid().items() if grid_params.distill}

    def pool_step(key: PoolKey, replicate: int, experiment: str) -> Step | None:
        target = design.targets[key]
        seed_offset = GENERATION_SEED_STRIDE * replicate if key.own else 0
        by_item = {item: [counts[1], counts[0]] for item, counts in design.item_targets.get(key, {}).items()}
        identity = {"generation": generation, "rubric": fingerprints["rubric"], "temperature": key.temperature,
                    "targets": target, "seed_offset": seed_offset}
        if by_item:  # a multi-item data set: each item's own responses (part of the pool's identity)
            identity |= {"item_targets": by_item, "data": fingerprints["dataset"]}
        if from_human:  # prompts show the replicate's own human training responses: its split is the input
            identity |= {"dataset": params.dataset.model_dump(), "data": fingerprints["dataset"], "replicate": replicate}
        return add("generate", key.name(replicate), identity,
                   {"temperature": key.temperature, "target_positive": target[1], "target_negative": target[0],
                    "item_targets": by_item, "seed_offset": seed_offset, "own_pool": key.own,
                    "replicate": replicate if from_human else -1, "cache_path": cache_path},
                   experiment=experiment)

    def filter_step(pool: Step, method: str, replicate: int, experiment: str) -> Step | None:
        identity = {"method": method, "filter": params.filter.model_dump(exclude={"methods", "judge_concurrency"})}
        condition = f"{pool.condition}-{method}"
        if method == "teacher_agreement":  # each replicate's own grader, trained on its own human split
            identity |= {**human, "replicate": replicate}
            condition += "" if condition.endswith(f"-r{replicate}-{method}") else f"-r{replicate}"
        if method == "llm_judge":
            identity |= {"generation": generation, "rubric": fingerprints["rubric"]}
        return add("filter", condition, identity,
                   {"method": method, "replicate": replicate if method == "teacher_agreement" else -1,
                    "pool_dir": pool.output_dir, "cache_path": cache_path,
                    "base_cache_dir": base_cache_dir}, (pool,), experiment,
                   uses_compute=method == "teacher_agreement")

    pending: list[dict] = []  # teacher steps, added once every experiment that shares one is known

    def teacher_step(condition: str, protocol: str, shares, replicate: int, depends: tuple, experiment: str,
                     filtered: Step | None, pool: Step | None, like: Step | None = None,
                     human_size: int | None = None, extent: float | None = None) -> None:
        identity = {**human, "protocol": protocol, "shares": list(shares), "replicate": replicate,
                    "label_balance": params.generation.label_balance}
        if human_size is not None:  # a nested subsample of the training split (human-size experiment)
            identity |= {"human_size": human_size, "human_size_seed": [params.dataset.split_seed, HUMAN_SIZE_SEED]}
        if extent is not None:
            identity |= {"extra_human_extent": extent}
        if like:
            identity |= {"pool_size_like": like.digest}
        pending.append({"condition": condition, "identity": identity, "experiment": experiment,
                        "depends": depends + ((like,) if like else ()),
                        "parameters": {"protocol": protocol, "synthetic_shares": [float(s) for s in shares],
                                       "replicate": replicate, "filtered_dir": filtered.output_dir if filtered else "",
                                       "pool_dir": pool.output_dir if pool else "", "base_cache_dir": base_cache_dir,
                                       "pool_size_like_dir": like.output_dir if like else "",
                                       **({"human_size": human_size} if human_size is not None else {}),
                                       **({"extra_human_extent": extent} if extent is not None else {})}})

    def add_teachers() -> None:
        """Each teacher step once; it computes transfer logits (``transfer_logits``, part of its identity) only
        when an experiment that shares it distils a student from it, and scores the test set after every
        increment where a claim reads the whole curve (``CURVE_EXPERIMENTS``), else at ``teacher.evaluate``."""
        def key(spec):
            return io.stable_hash([spec["identity"], [d.digest for d in spec["depends"]]], length=16)

        distilling = {key(spec) for spec in pending if spec["experiment"] in distilled}
        curves = {key(spec) for spec in pending if spec["experiment"] in CURVE_EXPERIMENTS}
        for spec in pending:
            logits = key(spec) in distilling
            evaluate = "every_increment" if key(spec) in curves else params.teacher.evaluate
            teacher = add("train_teacher", spec["condition"],
                          spec["identity"] | {"transfer_logits": logits, "evaluate": evaluate},
                          {**spec["parameters"], "transfer_logits": logits, "evaluate": evaluate}, spec["depends"],
                          spec["experiment"], uses_compute=True)
            if teacher is not None and spec["experiment"] in distilled:
                add("distill", spec["condition"], {"student": params.student.model_dump(),
                                                    "replicate": spec["parameters"]["replicate"]},
                    {"replicate": spec["parameters"]["replicate"], "teacher_dir": teacher.output_dir}, (teacher,),
                    spec["experiment"], uses_compute=True)

    for use in design.uses:
        pool = pool_step(use.pool, use.replicate, use.experiment)
        if pool is None:
            continue
        filtered = filter_step(pool, use.method, use.replicate, use.experiment)
        like = filter_step(pool, use.like, use.replicate, use.experiment) if use.like else None
        if filtered is None or (use.like and like is None):
            continue
        teacher_step(f"{use.name()}-r{use.replicate}", use.protocol, use.shares, use.replicate,
                     (filtered, pool), use.experiment, filtered, pool, like, human_size=use.human_size)
    for replay in design.replays:
        teacher_step(f"{replay.name()}-r{replay.replicate}", "replay", replay.shares, replay.replicate,
                     (), replay.experiment, None, None)
    for arm in design.extra_humans:  # human-size experiment: the same schedule on extra human responses
        teacher_step(f"{arm.name()}-r{arm.replicate}", "extra_human", arm.shares, arm.replicate, (), arm.experiment,
                     None, None, human_size=arm.human_size, extent=arm.extent)
    add_teachers()

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
