"""The ``synthmix`` command: ``validate PARAMS``, ``run PARAMS`` and ``init DATA``.

Exit status: 0 on success, 2 for bad input (one line per problem), 1 when a step fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from synthmix.errors import InputError, StorageError, storage_problem


@dataclass
class StudyCheck:
    """What ``inspect_study`` found: the params, replicate 0's split, notes to print, the design and the data."""

    params: object
    splits: object
    notes: list
    design: object
    loaded: object


def check_study(params_path: str | Path):
    """Validate a params file and everything it points at; return (params, human data, notes).

    Raises ``InputError`` with one line per problem.
    """
    checked = inspect_study(params_path)
    return checked.params, checked.splits, checked.notes


def inspect_study(params_path: str | Path) -> StudyCheck:
    """Validate a params file and everything it points at (see ``check_study``); keep the design and data."""
    from synthmix.data.loading import load_human_data
    from synthmix.data.rubric import load_rubric, load_study_rubric, rubric_path
    from synthmix.data.scaffold import todo_problems
    from synthmix.data.splits import column_values, describe_split, split_frames, split_human_data, split_report
    from synthmix.params import load_params

    params = load_params(params_path)
    problems: list[str] = todo_problems(params_path)  # values `synthmix init` left for a person to write
    loaded = None
    try:
        loaded = load_human_data(params.dataset, params_path)
    except InputError as exc:
        problems += exc.problems
    try:
        rubric = rubric_path(params.dataset, params_path)
        if rubric.is_file() and loaded is not None:
            load_study_rubric(params.dataset, params_path, loaded)  # with the items' entries and data columns
        elif rubric.is_file():
            load_rubric(rubric, question_from_data=bool(params.dataset.item_text_column))
        else:
            problems += _in_params(params_path, [f"dataset.rubric: rubric file {rubric} not found; expected a rubric "
                                                 "YAML (a path relative to the params file, or embedded:NAME)"])
    except InputError as exc:
        problems += _in_params(params_path, exc.problems)
    problems += _in_params(params_path, _check_generation(params) + _check_models(params))
    if problems:
        raise InputError(problems)
    splits = split_human_data(loaded.dataset, params.dataset)
    notes = [f"{loaded.source}: {len(loaded.dataset)} responses, {sum(column_values(loaded.dataset, 'label'))} coded 1; "
             f"split (seed {params.dataset.split_seed}, replicate 0): "
             + ", ".join(f"{n} {len(d)}" for n, d in splits.items())]
    notes += [f"split of replicate 0: {describe_split(split_report(split_frames(loaded.dataset, params.dataset)))}"]
    notes += [f"warning: {w}" for w in loaded.warnings]
    notes += [f"dedupe conflict: {c}" for c in loaded.conflicts[:5]]
    design, design_notes = _check_design(params, params_path)
    notes += design_notes
    return StudyCheck(params, splits, notes, design, loaded)


def _check_design(params, params_path):
    """Whether every pool can supply every share asked for (raises InputError naming each condition);
    returns (design, notes)."""
    from synthmix.data.design import study_design

    design = study_design(params, params_path)
    if design.problems:
        raise InputError([f"{params_path}: {problem}" for problem in design.problems])
    sizes = sorted({s["n_human"] for s in design.replicates})
    notes = [f"{params.replicates} replicates, human training responses per replicate: "
             f"{', '.join(map(str, sizes))}"]
    for arm in sorted({(u.experiment, u.human_size) for u in design.uses if u.human_size is not None}):
        extra = sum(1 for e in design.extra_humans if (e.experiment, e.human_size) == arm)
        notes.append(f"experiments.{arm[0]}: human size {arm[1]} (a nested subsample of each training split), "
                     f"an extra-human arm in {extra} of {params.replicates} replicates")
    for key in design.pool_keys():
        need, target = design.needs[key], design.targets[key]
        kind = f"one per replicate ({params.replicates})" if key.own else "shared by the replicates"
        notes.append(f"pool t={key.temperature:g}, {kind}: the largest draw needs {need[1]} coded 1 and {need[0]} "
                     f"coded 0; generation targets {target[1]} and {target[0]}")
    return design, notes


def _in_params(params_path, problems: list[str]) -> list[str]:
    """Problems about a params key ('teacher.model: ...'), prefixed with the params file and the key's line."""
    import re

    located = []
    for problem in problems:
        key = re.match(r"([a-z_]+(?:\.[a-z_]+)*):", problem)
        if key is None or problem.startswith(str(params_path)):
            located.append(problem)
            continue
        line = _key_line(params_path, key.group(1))
        located.append(f"{params_path}: " + (f"line {line}: " if line else "") + problem)
    return located


def _key_line(params_path, dotted_key: str) -> int | None:
    """The 1-based line of a dotted key (``generation.model``) in a params YAML file, or None."""
    import yaml

    try:
        node = yaml.compose(Path(params_path).read_text())
    except (OSError, yaml.YAMLError):
        return None
    line = None
    for part in dotted_key.split("."):
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
        if match is None:
            break
        line, node = match[0].start_mark.line + 1, match[1]
    return line


def _check_generation(params) -> list[str]:
    settings = params.generation
    if settings.backend == "managed-llama-cpp":
        from synthmix.llm.server import gguf_path

        try:
            gguf_path(settings.model)
        except InputError as exc:
            return exc.problems
        return []
    from synthmix.llm.client import needs_api_key

    if needs_api_key(settings.base_url) and not os.environ.get(settings.api_key_env):
        return [f"generation: backend 'openai' needs an API key in the environment variable "
                f"{settings.api_key_env} (it is not set); or set generation.base_url to an OpenAI-compatible server"]
    return []


def _check_models(params) -> list[str]:
    from synthmix.steps.models import resolve_model, student_spec

    problems = []
    for key, name in (("teacher.model", params.teacher.model), ("student.model", params.student.model)):
        try:
            if key == "student.model" and student_spec(name) is not None:
                continue
            resolve_model(name, key=key)
        except InputError as exc:
            problems += exc.problems
    if params.compute.device not in ("auto", "cpu"):  # these always resolve; a named accelerator may be missing
        from synthmix.steps.devices import resolve_device  # imports torch (seconds), so only when needed

        try:
            resolve_device(params.compute.device)
        except InputError as exc:
            problems += exc.problems
    return problems


def _validate(args) -> int:
    from synthmix.run.graph import plan_study

    checked = inspect_study(args.params)
    print(f"{args.params}: OK")
    for note in checked.notes:
        print(f"  {note}")
    steps, _ = plan_study(checked.params, args.params, args.results, design=checked.design)
    _print_estimate(checked, args.params, args.results, steps, workers=2, indent="  ")
    return 0


def _print_estimate(checked: StudyCheck, params_path, results, steps, workers: int, indent: str = ""):
    """Print the study's estimate (per pool and per step kind) and return it."""
    from synthmix.run.estimate import estimate_study

    estimate = estimate_study(checked.params, params_path, results, steps=steps, design=checked.design,
                              human=checked.loaded.dataset)
    print(f"{indent}estimate (measured rates where the results folder {results} has them, else costs.assumed_*):")
    for line in estimate.lines(workers=workers):
        print(f"{indent}  {line}")
    return estimate


def _confirmed(reason: str, args) -> bool:
    """Whether the user agrees to start a study whose estimate is above a threshold (``--yes`` agrees)."""
    if args.yes:
        return True
    if not sys.stdin or not sys.stdin.isatty():
        print(f"not started: the steps to do need {reason}; pass --yes to run anyway (stdin is not a terminal, so "
              "nobody can be asked)", file=sys.stderr)
        return False
    answer = input(f"The steps to do need {reason}. Start? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _check_results_folder(results: str) -> None:
    """Raise ``InputError`` when ``--results`` (or a folder above it) exists but is not a folder."""
    path = Path(results).expanduser().absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise InputError(f"--results {results}: {candidate} is a file, not a folder; "
                                 "expected a results folder (it is created when missing)")
            return


def _run(args) -> int:
    from synthmix.core.layout import NOTEBOOKS
    from synthmix.run.code_versions import stale_steps
    from synthmix.run.executors import make_executor
    from synthmix.run.graph import plan_study
    from synthmix.run.markers import incomplete_reason, is_complete
    from synthmix.run.runner import StepFailed, forget_completion

    _check_results_folder(args.results)
    executor = make_executor(args.executor, workers=args.workers, cluster=args.cluster, scheduler=args.scheduler,
                             cluster_config=args.cluster_config)
    checked = inspect_study(args.params)
    params = checked.params
    for note in checked.notes:
        print(note)
    steps, missing = plan_study(params, args.params, args.results, only=args.only, design=checked.design)
    complete = {s.id for s in steps if is_complete(s)}
    stale = stale_steps(steps) if complete else {}  # complete, but their code or inputs changed since
    print(f"study '{params.study}': {len(steps)} step{'s' if len(steps) != 1 else ''} ({len(complete)} complete, {len(steps) - len(complete)} to do) "
          f"in {Path(args.results).resolve() / params.study}")
    for step in steps:
        state = "stale" if step.id in stale else "done " if step.id in complete else "to do"
        why = stale.get(step.id) or (None if step.id in complete else incomplete_reason(step))
        print(f"  [{state}] {step.notebook:<24} {step.condition}" + (f"  ({why})" if why and why != "not run" else ""))
    if stale:
        print(f"{len(stale)} complete step{'s' if len(stale) != 1 else ''} stale (code or inputs changed since); "
              + ("rerunning them (--rerun-stale)" if args.rerun_stale else "--rerun-stale reruns them"))
    if missing:
        print("not yet part of the study (notebook not written yet): " + ", ".join(NOTEBOOKS[k] for k in missing))
    estimate = _print_estimate(checked, args.params, args.results, steps, workers=args.workers)
    if args.dry_run:
        return 0
    reason = estimate.over_threshold(params.costs, workers=args.workers)
    if reason and len(complete) < len(steps) and not _confirmed(reason, args):
        return 2
    if args.rerun_stale:
        for step in steps:
            if step.id in stale:
                forget_completion(step)
        complete -= set(stale)
    if len(complete) == len(steps):
        print("nothing to do: every step is already complete")
        return 0
    from synthmix.core.lifetime import Interrupted, stop_on_signals

    began = time.monotonic()
    try:
        with stop_on_signals():  # SIGINT/SIGTERM stop the kernels, workers and servers of this run
            results = executor.run(steps, show_progress=not args.no_progress)
    except StepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Interrupted as exc:
        print(f"stopped by {exc.name}: running steps were stopped (their kernels and servers too); completed steps "
              f"are kept, and `synthmix run` again redoes the rest", file=sys.stderr)
        return exc.exit_code
    print(f"ran {len(results)} steps, skipped {len(complete)} complete ones, in {time.monotonic() - began:.1f} s")
    if any(s.kind == "analyze" for s in steps):
        from synthmix.analysis.report import write_index

        print(f"index of every rendered notebook: {write_index(Path(args.results).resolve())}")
    return 0


def _estimated_minutes(params_path, results: str, workers: int = 2) -> float | None:
    """Minutes a study would take with ``workers`` steps at a time (None when it cannot be estimated yet,
    e.g. while a label value is still unmapped): what ``init`` sizes its proposal with."""
    from synthmix.data.design import study_design
    from synthmix.params import load_params
    from synthmix.run.estimate import estimate_study
    from synthmix.run.graph import plan_study

    try:
        params = load_params(params_path)
        design = study_design(params, params_path)
        if design.problems:
            return None
        steps, _ = plan_study(params, params_path, results, design=design)
        return estimate_study(params, params_path, results, steps=steps, design=design).seconds / workers / 60
    except InputError:
        return None


def _init(args) -> int:
    from synthmix.data.scaffold import init_study

    params_path, rubric_path, proposal = init_study(
        args.data, force=args.force, budget_minutes=args.budget_minutes,
        estimate_minutes=lambda path: _estimated_minutes(path, args.results))
    print(f"{args.data}: text '{proposal.text_column}', label '{proposal.label_column}' "
          f"(values: {', '.join(f'{k} x{v}' for k, v in proposal.label_counts.items())}), "
          f"item '{proposal.item_column}'" + (f" ({len(proposal.items)} items)" if proposal.items else ""))
    print(f"sized: {proposal.sizing}")
    print(f"wrote {params_path}\nwrote {rubric_path}")
    print("next: write every 'TODO (you write this)' in both files, check the proposed columns and labels, then\n"
          f"  synthmix validate {params_path}\n  synthmix run {params_path} --workers 2")
    return 0


class _StdoutThatOutlivesItsReader:
    """``sys.stdout`` for the command: when its reader goes away (``synthmix run … | head -3``), what
    is printed afterwards goes nowhere, quietly, and the command goes on (a study keeps running)."""

    def __init__(self, stream):
        self._stream = stream

    def _closed(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())  # Python's own flush at exit then succeeds too
        os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._closed()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._closed()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``synthmix`` console script."""
    if not isinstance(sys.stdout, _StdoutThatOutlivesItsReader) and hasattr(sys.stdout, "fileno"):
        try:
            sys.stdout.fileno()
            sys.stdout = _StdoutThatOutlivesItsReader(sys.stdout)
        except (OSError, ValueError):  # no real file behind stdout (captured by a test): nothing to guard
            pass
    parser = argparse.ArgumentParser(prog="synthmix", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a params file and its dataset; estimate what a run costs")
    validate.add_argument("params", help="study params YAML")
    validate.add_argument("--results", default="results",
                          help="results folder whose earlier runs and LLM cache the estimate reads (default: results)")
    validate.set_defaults(handler=_validate)
    run = commands.add_parser("run", help="run a study: every step's notebook, per condition")
    run.add_argument("params", help="study params YAML")
    run.add_argument("--only", nargs="+", metavar="STEP", help="run only these steps (and what they need): "
                     "generate, filter, train_teacher, distill, analyze")
    run.add_argument("--results", default="results", help="results folder (default: results)")
    run.add_argument("--dry-run", action="store_true", help="print the steps and their state, run nothing")
    run.add_argument("--rerun-stale", action="store_true",
                     help="rerun complete steps whose notebook or src/synthmix code changed since they ran "
                          "(and the steps that depend on them)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars inside steps")
    run.add_argument("--yes", action="store_true",
                     help="start even when the estimate exceeds costs.confirm_above_hours or confirm_above_money")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="run up to N independent steps at once, sharing the CPU cores (default 1)")
    run.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="local: this machine (--workers); dask: a Dask cluster (--cluster or --scheduler)")
    run.add_argument("--cluster", metavar="local:N|slurm",
                     help="with dask: a LocalCluster of N worker processes, or a SLURM cluster (--cluster-config)")
    run.add_argument("--scheduler", metavar="ADDRESS", help="with dask: the address of a running scheduler")
    run.add_argument("--cluster-config", metavar="FILE",
                     help="with --cluster slurm: YAML of SLURMCluster keyword arguments and jobs "
                          "(see params/cluster-slurm.example.yaml)")
    run.set_defaults(handler=_run)
    init = commands.add_parser("init", help="propose a params file and a rubric template for a data file")
    init.add_argument("data", help="coded responses: CSV, TSV, JSONL or parquet")
    init.add_argument("--force", action="store_true", help="overwrite the params and rubric files if they exist")
    init.add_argument("--budget-minutes", type=float, default=60.0, metavar="M",
                      help="size the experiments to run in about M minutes with --workers 2 (default 60)")
    init.add_argument("--results", default="results",
                      help="results folder whose earlier runs and LLM cache give measured rates (default: results)")
    init.set_defaults(handler=_init)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except InputError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except StorageError as exc:  # a corrupt cache, a full or read-only disk: one line, the path and the remedy
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        line = storage_problem(exc)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
