"""Build what a notebook opened by hand needs: the upstream steps of its default condition.

Notebooks 02–05 call these only when a folder parameter is left empty (Run All in JupyterLab
with the defaults); under the driver every folder is given, so nothing here runs and, since the
planner and executors are imported inside the functions, nothing of them is loaded either.
"""

from __future__ import annotations

from pathlib import Path


def upstream_output(params_file: str | Path, kind: str, results_root: str | Path | None = None,
                    include_target: bool = True, **match) -> str:
    """The output folder of a study's first ``kind`` step whose parameters match ``match``.

    Runs what that step depends on (and, with ``include_target``, the step itself) when it is not
    complete, so a notebook opened in JupyterLab with its default parameters builds its inputs offline.
    """
    from synthmix.params import load_params
    from synthmix.run.executors import run_steps
    from synthmix.run.graph import default_results_root, plan_study

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


def default_study_dir(params_file, build: bool = True) -> Path:
    """``results/<study>`` of a params file; with ``build``, first runs steps 01–04 when none is complete."""
    from synthmix.analysis.results import collect_steps
    from synthmix.params import load_params
    from synthmix.run.graph import default_results_root

    study_dir = default_results_root(params_file) / load_params(params_file).study
    if build and collect_steps(study_dir).empty:
        upstream_output(params_file, "analyze", include_target=False)
    return study_dir
