"""What earlier runs measured, for the estimate: their LLM calls (per-call records, generation reports, the
reply cache's stored call times) in a results folder, and the same for the study this checkout ships.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.core import io
from synthmix.core.layout import MARKER
from synthmix.errors import StorageError

#: The rendered default study committed with this checkout (absent from an installed package): its calls are
#: the measured rates of SmolLM2-135M on a 2-core CPU, one thread per step.
SHIPPED_STUDY = Path(__file__).resolve().parents[3] / "results" / "default"


@dataclass
class Measurements:
    """Earlier LLM calls (one row per group of calls with the same settings) and the seconds of complete steps."""

    calls: pd.DataFrame  # model, temperature, max_tokens, responses_per_call, calls, responses, prompt_tokens,
    #                      completion_tokens, seconds, timed_calls, source
    problems: list[str] = field(default_factory=list)
    where: str = ""  # said after "measured on N calls" when the calls are not the results folder's own

    @classmethod
    def gather(cls, results_root: str | Path, exclude: tuple[str, ...] = (), studies: str = "*",
               with_cache: bool = True) -> "Measurements":
        """What the results folder knows: every pool's ``calls.parquet`` (or, for pools made before it
        existed, its ``generation_report.json``) and the reply cache's stored calls. ``exclude``: step
        folders to leave out (to check an estimate against a pool it did not see); ``studies``: which
        study folders (a glob); ``with_cache``: whether to read the reply cache."""
        root = Path(results_root)
        rows, problems = [], []
        excluded = {str(Path(p).resolve()) for p in exclude}
        for folder in sorted(root.glob(f"{studies}/01_generate/*")):
            if str(folder.resolve()) in excluded or not (folder / MARKER).is_file():
                continue
            rows += _pool_rows(folder)
        cache = root / "llm_cache.sqlite"
        if with_cache and cache.is_file() and not exclude:
            try:
                rows += _cache_rows(cache)
            except StorageError as exc:
                problems.append(f"the reply cache was not read: {exc}")
        columns = ["model", "temperature", "max_tokens", "responses_per_call", "calls", "responses", "prompt_tokens",
                   "completion_tokens", "seconds", "timed_calls", "source"]
        return cls(pd.DataFrame(rows, columns=columns), problems)

    def _matching(self, model: str, temperature: float | None = None, **exact) -> pd.DataFrame:
        table = self.calls[self.calls["model"] == model]
        if temperature is not None:
            table = table[(table["temperature"] - temperature).abs() < 1e-9]
        for key, value in exact.items():
            table = table[table[key] == value]
        return table

    def yield_per_call(self, model: str, temperature: float, responses_per_call: int) -> tuple[float, str] | None:
        """New distinct responses per call measured for this model, temperature and responses per call
        (pools of other responses-per-call rescaled), with where it was measured; None when never measured."""
        table = self._matching(model, temperature).dropna(subset=["responses"])
        same = table[table["responses_per_call"] == responses_per_call]
        use = same if len(same) else table
        if use.empty or use["calls"].sum() == 0:
            return None
        value = use["responses"].sum() / use["calls"].sum()
        if use is not same:  # measured asking for another number per call: scale by what is asked
            asked = float(np.average(use["responses_per_call"].fillna(responses_per_call), weights=use["calls"]))
            value *= responses_per_call / max(asked, 1.0)
        return float(value), f"measured on {int(use['calls'].sum())} calls{self.where}"

    def per_call(self, model: str, temperature: float, max_tokens: int) -> dict | None:
        """Mean completion tokens, prompt tokens and seconds of one call with these settings (the same
        max_tokens preferred), with where it was measured; None when never measured."""
        table = self._matching(model, temperature)
        same = table[table["max_tokens"] == max_tokens]
        use = same if len(same) else table[table["max_tokens"].isna()] if table["max_tokens"].isna().any() else same
        if use.empty or use["calls"].sum() == 0:
            return None
        timed = use["timed_calls"].sum()
        return {"completion_tokens": use["completion_tokens"].sum() / use["calls"].sum(),
                "prompt_tokens": use["prompt_tokens"].sum() / use["calls"].sum(),
                "seconds": use["seconds"].sum() / timed if timed else None,
                "basis": f"measured on {int(use['calls'].sum())} calls{self.where}"}


def shipped_study_for(results_root: str | Path) -> Path | None:
    """The study this checkout ships (``SHIPPED_STUDY``), as a prior for ``results_root``; None when it is
    absent (an installed package) or lies in ``results_root`` itself (its measurements are the folder's own)."""
    study = SHIPPED_STUDY
    if not study.is_dir() or Path(results_root).resolve() == study.parent.resolve():
        return None
    return study


def shipped_measurements(results_root: str | Path) -> Measurements | None:
    """The calls of the study this checkout ships, for a generator and temperature the results folder has
    not measured; None when there is none for it (``shipped_study_for``)."""
    study = shipped_study_for(results_root)
    return _shipped_calls(str(study)) if study is not None else None


@functools.lru_cache(maxsize=2)
def _shipped_calls(study: str) -> Measurements:
    """The shipped study's pools, read once per process (init estimates each proposal beside it)."""
    folder = Path(study)
    shipped = Measurements.gather(folder.parent, studies=folder.name, with_cache=False)
    shipped.where = f" in {folder.parent.name}/{folder.name} (the shipped study, 2-core CPU)"
    return shipped


def _pool_rows(folder: Path) -> list[dict]:
    """Measurement rows of one complete pool: from its calls.parquet, else its generation report."""
    calls = folder / "calls.parquet"
    if calls.is_file():
        try:
            table = io.read_table(calls)
        except Exception:  # noqa: BLE001 - an unreadable record is no measurement
            return []
        table = table[table["kind"] == "generate"]
        grouped = table.groupby(["model", "temperature", "max_tokens", "responses_per_call", "label"], dropna=False)
        return [{"model": model, "temperature": float(t), "max_tokens": mt, "responses_per_call": rpc,
                 "calls": len(g), "responses": float(g["responses"].sum()), "prompt_tokens": float(g["prompt_tokens"].sum()),
                 "completion_tokens": float(g["completion_tokens"].sum()), "seconds": float(g["seconds"].sum(skipna=True)),
                 "timed_calls": int(g["seconds"].notna().sum()), "source": str(calls)}
                for (model, t, mt, rpc, _), g in grouped]
    try:
        report = io.read_json(folder / "generation_report.json")
        stats, made = report["stats"], sum(report["calls"].values())
        replayed = stats.get("calls_replayed", 0)
        return [{"model": report["model"], "temperature": float(report["temperature"]), "max_tokens": np.nan,
                 "responses_per_call": np.nan, "calls": made, "responses": float(sum(report["collected"].values())),
                 "prompt_tokens": float(stats["prompt_tokens"]) * made / max(1, stats.get("calls_made", made)),
                 "completion_tokens": float(stats["completion_tokens"]) * made / max(1, stats.get("calls_made", made)),
                 "seconds": float(stats.get("seconds_in_calls", 0.0)) if not replayed else 0.0,
                 "timed_calls": stats.get("calls_made", 0) if not replayed else 0,
                 "source": str(folder / "generation_report.json")}]
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return []


def _cache_rows(cache_path: Path) -> list[dict]:
    """Measurement rows from the reply cache: tokens and stored call seconds per model, temperature, max_tokens."""
    from synthmix.llm.cache import ReplyCache

    cache = ReplyCache(cache_path)
    try:
        records = pd.DataFrame(cache.call_records())
    finally:
        cache.close()
    if records.empty:
        return []
    rows = []
    for (model, temperature, max_tokens), group in records.groupby(["model", "temperature", "max_tokens"], dropna=True):
        rows.append({"model": model, "temperature": float(temperature), "max_tokens": max_tokens,
                     "responses_per_call": np.nan, "calls": len(group), "responses": np.nan,
                     "prompt_tokens": float(group["prompt_tokens"].sum()),
                     "completion_tokens": float(group["completion_tokens"].sum()),
                     "seconds": float(group["seconds"].sum(skipna=True)), "timed_calls": int(group["seconds"].notna().sum()),
                     "source": str(cache_path)})
    return rows


# ================================================================== the estimate
