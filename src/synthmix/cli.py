"""The ``synthmix`` command: ``validate PARAMS`` and ``run PARAMS``.

Exit status: 0 on success, 2 for bad input (one line per problem), 1 when a step fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from synthmix.errors import InputError


def check_study(params_path: str | Path):
    """Validate a params file and everything it points at; return (params, human data, notes).

    Raises ``InputError`` with one line per problem.
    """
    from synthmix.data import load_human_data, split_human_data
    from synthmix.params import load_params
    from synthmix.rubric import load_rubric, rubric_path

    params = load_params(params_path)
    problems: list[str] = []
    loaded = None
    try:
        loaded = load_human_data(params.dataset, params_path)
    except InputError as exc:
        problems += exc.problems
    try:
        load_rubric(rubric_path(params.dataset, params_path))
    except InputError as exc:
        problems += exc.problems
    problems += _check_generation(params)
    problems += _check_models(params)
    if problems:
        raise InputError(problems)
    splits = split_human_data(loaded.dataset, params.dataset)
    notes = [f"{loaded.source}: {len(loaded.dataset)} responses, {sum(loaded.dataset['label'])} coded 1; "
             f"split (seed {params.dataset.split_seed}): " + ", ".join(f"{n} {len(d)}" for n, d in splits.items())]
    notes += [f"warning: {w}" for w in loaded.warnings]
    return params, splits, notes


def _check_generation(params) -> list[str]:
    settings = params.generation
    if settings.backend == "managed-llama-cpp":
        from synthmix.llm_server import gguf_path

        try:
            gguf_path(settings.model)
        except InputError as exc:
            return exc.problems
        return []
    from synthmix.llm_client import needs_api_key

    if needs_api_key(settings.base_url) and not os.environ.get(settings.api_key_env):
        return [f"generation: backend 'openai' needs an API key in the environment variable "
                f"{settings.api_key_env} (it is not set); or set generation.base_url to an OpenAI-compatible server"]
    return []


def _check_models(params) -> list[str]:
    from synthmix.models import resolve_model, student_spec

    problems = []
    for key, name in (("teacher.model", params.teacher.model), ("student.model", params.student.model)):
        try:
            if key == "student.model" and student_spec(name) is not None:
                continue
            resolve_model(name, key=key)
        except InputError as exc:
            problems += exc.problems
    return problems


def _validate(args) -> int:
    _, _, notes = check_study(args.params)
    print(f"{args.params}: OK")
    for note in notes:
        print(f"  {note}")
    return 0


def _run(args) -> int:
    from synthmix.pipeline import NOTEBOOKS, plan_study
    from synthmix.runner import StepFailed, is_complete, run_steps

    params, _, notes = check_study(args.params)
    for note in notes:
        print(note)
    steps, missing = plan_study(params, args.params, args.results, only=args.only)
    complete = {s.id for s in steps if is_complete(s)}
    print(f"study '{params.study}': {len(steps)} step{'s' if len(steps) != 1 else ''} ({len(complete)} complete, {len(steps) - len(complete)} to do) "
          f"in {Path(args.results).resolve() / params.study}")
    for step in steps:
        state = "done " if step.id in complete else "to do"
        print(f"  [{state}] {step.notebook:<24} {step.condition}")
    if missing:
        print("not yet part of the study (notebook not written yet): " + ", ".join(NOTEBOOKS[k] for k in missing))
    if args.dry_run:
        return 0
    if len(complete) == len(steps):
        print("nothing to do: every step is already complete")
        return 0
    began = time.monotonic()
    try:
        results = run_steps(steps, show_progress=not args.no_progress, workers=args.workers)
    except StepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"ran {len(results)} steps, skipped {len(complete)} complete ones, in {time.monotonic() - began:.1f} s")
    if any(s.kind == "analyze" for s in steps):
        from synthmix.analysis import write_index

        print(f"index of every rendered notebook: {write_index(Path(args.results).resolve())}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``synthmix`` console script."""
    parser = argparse.ArgumentParser(prog="synthmix", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a params file and its dataset")
    validate.add_argument("params", help="study params YAML")
    validate.set_defaults(handler=_validate)
    run = commands.add_parser("run", help="run a study: every step's notebook, per condition")
    run.add_argument("params", help="study params YAML")
    run.add_argument("--only", nargs="+", metavar="STEP", help="run only these steps (and what they need): "
                     "generate, filter, train_teacher, distill, analyze")
    run.add_argument("--results", default="results", help="results folder (default: results)")
    run.add_argument("--dry-run", action="store_true", help="print the steps and their state, run nothing")
    run.add_argument("--no-progress", action="store_true", help="no progress bars inside steps")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="run up to N independent steps at once, sharing the CPU cores (default 1)")
    run.set_defaults(handler=_run)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except InputError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
