"""The results index page: one static HTML page of every study under a results folder.

``write_index`` renders ``templates/index.html.j2`` with jinja2. Per study the page shows its
claims as a table, one row per verdict naming its claim and part (role, direction, verdict, position
against the margin, estimate, interval with its level, margin, power, replicates needed) read from the
``claims.json`` beside the analysis step's ``figures/`` folder, each verdict's text, then the figures
with their captions, then every step by experiment and condition, linked to its rendered notebook.
Links are relative, so the page reads in a browser without a server.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from synthmix.analysis.results import KIND_ORDER, collect_steps
from synthmix.core import io
from synthmix.core.layout import MARKER

TEMPLATE = "index.html.j2"
CLAIM_KEYS = ("id", "claim", "part", "role", "direction", "verdict", "position", "estimate", "ci_low", "ci_high",
              "ci_level", "margin", "power", "replicates_needed", "text")
DIRECTION_WORDS = {"helps": "helps (lower bound > margin)", "does_not_help": "does not help (upper bound < margin)"}


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader("synthmix.analysis", "templates"), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _signed(value, ratio: bool = False) -> str:
    number = _finite(value)
    if number is None:
        return ""
    return f"{number:.2f}" if ratio else f"{number:+.3f}"


def _plain(value, ratio: bool = False) -> str:
    number = _finite(value)
    if number is None:
        return ""
    return f"{number:g}" if ratio else f"{number:.3f}"


def _count(value) -> str:
    if isinstance(value, str):  # e.g. "more than 1000"
        return value
    number = _finite(value)
    if number is None:
        return ""
    return "∞" if math.isinf(number) else f"{math.ceil(number):d}"


def _percent(value) -> str:
    number = _finite(value)
    return "" if number is None else f"{number:.0%}"


def claim_row(entry: dict) -> dict:
    """One claims.json entry as the strings the claims table shows (a missing key renders blank).

    A tested verdict without a number of replicates that decides it reads "none decides" (the overlap
    floor). An entry of the older form (``supported``, ``evidence``) shows its verdict and evidence.
    """
    verdict = entry.get("verdict")
    if verdict is None and "supported" in entry:
        verdict = {True: "supported", False: "not supported"}.get(entry["supported"], "inconclusive")
    ratio = entry.get("scale") == "ratio"
    low, high = _signed(entry.get("ci_low"), ratio), _signed(entry.get("ci_high"), ratio)
    level = _finite(entry.get("ci_level"))
    needed = _count(entry.get("replicates_needed"))
    if not needed and verdict not in (None, "not tested") and "replicates_needed" in entry \
            and _finite(entry.get("estimate")) is not None:
        needed = "none decides"
    return {
        "id": str(entry.get("id") or ""),
        "claim": str(entry.get("claim") or ""),
        "part": str(entry.get("part") or ""),
        "role": str(entry.get("role") or ""),
        "direction": DIRECTION_WORDS.get(entry.get("direction"), str(entry.get("direction") or "")),
        "verdict": str(verdict or ""),
        "verdict_class": "-".join(str(verdict or "").split()),
        "position": str(entry.get("position") or "") if verdict != "not tested" else "",
        "estimate": _signed(entry.get("estimate"), ratio),
        "ci": (f"[{low}, {high}]" + (f" ({level:.1%})".replace(".0%)", "%)") if level else "")) if low and high else "",
        "margin": _plain(entry.get("margin"), ratio),
        "power": _percent(entry.get("power")),
        "replicates_needed": needed,
        "text": str(entry.get("text") or entry.get("evidence") or ""),
    }


# ------------------------------------------------- human-size experiment (issue 16): its own block
def _cell(value, digits: int = 3, signed: bool = False) -> str:
    if isinstance(value, str):
        return value
    number = _finite(value)
    if number is None:
        return "∞" if value == float("inf") else ""
    if math.isinf(number):
        return "∞"
    return f"{number:+.{digits}f}" if signed else f"{number:.{digits}f}"


def human_size_context(analysis_dir: Path) -> dict:
    """The exchange rates and the cost table written by 05_analyze (``exchange_rates.csv``, ``costs.csv``)
    as rows of strings for the index; empty lists when the study has no human-size experiment."""
    rates, costs = [], []
    rates_file, costs_file = analysis_dir / "exchange_rates.csv", analysis_dir / "costs.csv"
    if rates_file.is_file():
        for row in pd.read_csv(rates_file).to_dict(orient="records"):
            rates.append({"size": str(row["size"]), "synthetic": _cell(row["synthetic"], 0),
                          "gain": _cell(row["gain"], signed=True),
                          "worth": _cell(row["worth"], 0), "rate": _cell(row["rate"], 2),
                          "interval": (f"[{_cell(row['rate_low'], 2)}, {_cell(row['rate_high'], 2)}]"
                                       if _finite(row["rate_low"]) is not None else ""),
                          "status": str(row["status"]), "text": str(row["text"])})
    if costs_file.is_file():
        for row in pd.read_csv(costs_file).to_dict(orient="records"):
            currency = row.get("currency") if isinstance(row.get("currency"), str) else ""
            costs.append({"size": str(row["size"]), "synthetic": _cell(row["synthetic"], 0),
                          "tokens": f"{_cell(row['prompt_tokens'], 0)} / {_cell(row['completion_tokens'], 0)}",
                          "llm_money": _cell(row["llm_money"], 4), "llm_seconds": _cell(row["llm_seconds"], 1),
                          "human_money": _cell(row["human_money"], 2), "human_seconds": _cell(row["human_seconds"], 0),
                          "gain_synthetic": _cell(row["gain_synthetic"], signed=True),
                          "gain_human": _cell(row["gain_human"], signed=True),
                          "per_hour": f"{_cell(row['auc_per_hour_synthetic'])} / {_cell(row['auc_per_hour_human'])}",
                          "per_money": f"{_cell(row['auc_per_money_synthetic'])} / {_cell(row['auc_per_money_human'])}",
                          "currency": currency})
    return {"rates": rates, "costs": costs}


def _figures_dir(study_dir: Path, steps: pd.DataFrame) -> Path | None:
    analyzed = steps[steps["kind"] == "analyze"]
    candidates = [Path(f) / "figures" for f in analyzed["folder"]]
    candidates += sorted(study_dir.glob("05_analyze/*/figures"), key=lambda p: p.stat().st_mtime, reverse=True)
    return next((c for c in candidates if any(c.glob("*.png"))), None)


def _link(target: Path, root: Path) -> str:
    return Path(os.path.relpath(target, root)).as_posix()


def _study_context(study_dir: Path, root: Path, figures_dir: Path | None) -> dict:
    steps = collect_steps(study_dir)
    counts = steps["kind"].value_counts().reindex(KIND_ORDER).dropna().astype(int)
    folder = figures_dir or _figures_dir(study_dir, steps)
    claims, figures, claim_names = [], [], []
    human_size = {"rates": [], "costs": []}
    if folder is not None and folder.is_dir():
        human_size = human_size_context(folder.parent)
        claims_file = folder.parent / "claims.json"
        if claims_file.is_file():
            entries = io.read_json(claims_file)
            claims = [claim_row(entry) for entry in entries]
            claim_names = list(dict.fromkeys(f"{str(e.get('id', ''))[:1]}: {e['claim']}".lstrip(": ")
                                             for e in entries if e.get("claim")))
        for png in sorted(folder.glob("*.png"), key=lambda p: (p.stat().st_mtime, p.name)):  # in the order saved
            text = png.with_suffix(".txt")
            figures.append({"src": _link(png, root), "name": png.stem,
                            "caption": text.read_text().strip() if text.is_file() else png.stem})
    expanded = steps.assign(experiment=steps["experiments"].map(lambda e: e or ["(no experiment named)"]))
    experiments = []
    for experiment, group in expanded.explode("experiment").groupby("experiment", sort=True):
        rows = []
        for row in group.sort_values("condition", kind="mergesort").to_dict(orient="records"):
            rows.append({"condition": row["condition"], "kind": row["kind"],
                         "link": _link(study_dir / row["notebook"], root) if row["notebook"] else "",
                         "link_name": Path(row["notebook"]).name if row["notebook"] else "",
                         "seconds": f"{row['seconds']:.1f}", "finished": str(row["finished"])})
        experiments.append({"name": str(experiment), "rows": rows})
    summary = study_dir / "summary.csv"
    return {"name": study_dir.name, "step_count": len(steps),
            "counts": ", ".join(f"{n} {kind}" for kind, n in counts.items()),
            "summary_link": _link(summary, root) if summary.is_file() else "",
            "claims": claims, "claim_names": claim_names, "figures": figures, "experiments": experiments,
            "human_size": human_size}


def render_index(results_root, figures: dict | None = None) -> str:
    """The index page of every study under ``results_root`` as HTML text (see ``write_index``)."""
    root = Path(results_root).resolve()
    figures = {k: Path(v).resolve() for k, v in (figures or {}).items()}
    studies = sorted(d for d in root.iterdir() if d.is_dir() and any(d.glob(f"*/*/{MARKER}"))) if root.is_dir() else []
    context = [_study_context(study, root, figures.get(study.name)) for study in studies]
    return _environment().get_template(TEMPLATE).render(studies=context)


def write_index(results_root, figures: dict | None = None) -> Path:
    """Write ``results_root/index.html``, a static page of every study under it, and return its path.

    Per study: its claims table (from ``claims.json`` beside the figures folder), its figures, and its steps
    by experiment and condition, linked to their rendered notebooks. ``figures`` optionally maps a study
    name to its figures folder (else the analysis step's ``figures/``).
    """
    root = Path(results_root).resolve()
    return io.write_text(root / "index.html", render_index(root, figures))
