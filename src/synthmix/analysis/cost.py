"""What synthetic responses cost against coding responses by hand, and the AUC each buys.

``pool_costs`` reads, per pool (01_generate step) and per LLM-judge filter step, the tokens and
seconds of its calls: from ``calls.parquet`` (one row per call: prompt and completion tokens as the
server reported them, wall seconds, replayed or not; issue 17's record) where the step wrote one,
else from the totals in ``generation_report.json`` (those count the calls made in that run only, so a
pool replayed from the cache is left blank, and the ``source`` column says why). ``cost_table`` then prices, per human
size of the human-size experiment, the synthetic responses added (their pool's cost per response
kept, times the responses drawn) and the same number of responses coded by hand, with the gain each
bought: the synthetic arm's, and the extra-human arm's at the same count.

Prices come from the params' ``costs`` section (``llm_price_per_million_input_tokens``,
``llm_price_per_million_output_tokens``, ``human_coding_cost_per_response``,
``human_coding_seconds_per_response``, ``currency``); a price not stated leaves its money blank,
never zero. Money of a set of calls = prompt_tokens / 1e6 x input price + completion_tokens / 1e6 x
output price.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.analysis.exchange import HUMAN, rows_at_share
from synthmix.analysis.results import collect_steps, noted, steps_by_name
from synthmix.core import io

POOL_COLUMNS = ("kind", "step", "condition", "responses", "calls", "calls_replayed", "prompt_tokens",
                "completion_tokens", "seconds", "source")
COST_KEYS = ("currency", "llm_price_per_million_input_tokens", "llm_price_per_million_output_tokens",
             "human_coding_cost_per_response", "human_coding_seconds_per_response")


def prices(costs) -> dict:
    """The params' ``costs`` section as a plain dict of ``COST_KEYS`` (None where not stated, or no section)."""
    if costs is None:
        return dict.fromkeys(COST_KEYS)
    get = costs.get if isinstance(costs, dict) else (lambda key, default=None: getattr(costs, key, default))
    return {key: get(key, None) for key in COST_KEYS}


def llm_money(price: dict, prompt_tokens: float, completion_tokens: float) -> float:
    """Money of calls with these token counts at ``price`` (``prices``); NaN when no LLM price is stated."""
    per_in, per_out = price["llm_price_per_million_input_tokens"], price["llm_price_per_million_output_tokens"]
    if per_in is None and per_out is None:
        return float("nan")
    return prompt_tokens / 1e6 * (per_in or 0.0) + completion_tokens / 1e6 * (per_out or 0.0)


def _calls_row(kind: str, step: dict, calls: pd.DataFrame, responses: int) -> dict:
    seconds = pd.to_numeric(calls.get("seconds", pd.Series(dtype=float)), errors="coerce")
    return {"kind": kind, "step": step["relative"], "condition": step["condition"], "responses": responses,
            "calls": len(calls), "calls_replayed": int(calls.get("replayed", pd.Series(dtype=bool)).sum()),
            "prompt_tokens": float(calls["prompt_tokens"].sum()),
            "completion_tokens": float(calls["completion_tokens"].sum()),
            "seconds": float(seconds.sum()) if seconds.notna().any() else float("nan"), "source": "calls.parquet"}


def pool_costs(study_dir) -> pd.DataFrame:
    """Per generate step (and LLM-judge filter step): responses, calls, tokens in and out, seconds, source."""
    steps = collect_steps(study_dir)
    rows = []
    for step in steps_by_name(steps, "generate").values():
        folder = Path(step["folder"])
        responses = len(io.read_table(folder / "pool.parquet")) if (folder / "pool.parquet").is_file() else 0
        if (folder / "calls.parquet").is_file():
            rows.append(_calls_row("generate", step, io.read_table(folder / "calls.parquet"), responses))
            continue
        report = io.read_json(folder / "generation_report.json") if (folder / "generation_report.json").is_file() else {}
        stats = report.get("stats", {})
        replayed = int(stats.get("calls_replayed", 0))
        known = replayed == 0  # the report counts the tokens and seconds of calls made in that run only
        rows.append({"kind": "generate", "step": step["relative"], "condition": step["condition"],
                     "responses": responses, "calls": int(stats.get("calls_made", 0)) + replayed,
                     "calls_replayed": replayed,
                     "prompt_tokens": float(stats.get("prompt_tokens", np.nan)) if known else np.nan,
                     "completion_tokens": float(stats.get("completion_tokens", np.nan)) if known else np.nan,
                     "seconds": float(stats.get("seconds_in_calls", np.nan)) if known else np.nan,
                     "source": "generation_report.json" + ("" if known else f" ({replayed} calls replayed from the "
                                                           "cache: their tokens are not in it; left blank)")})
    for step in steps_by_name(steps, "filter").values():
        folder = Path(step["folder"])
        if (folder / "calls.parquet").is_file():
            graded = len(io.read_table(folder / "grades.parquet")) if (folder / "grades.parquet").is_file() else 0
            rows.append(_calls_row("judge", step, io.read_table(folder / "calls.parquet"), graded))
    frame = pd.DataFrame(rows, columns=POOL_COLUMNS)
    return noted(frame, "" if rows else "no generate step")


def _pool_of(study_dir, teacher_step: str, steps: pd.DataFrame) -> tuple[str, str]:
    """(generate step, judge filter step or '') behind one teacher step, by relative folder."""
    teachers, filters, generates = (steps_by_name(steps, kind) for kind in ("train_teacher", "filter", "generate"))
    parameters = teachers.get(Path(str(teacher_step)).name, {}).get("parameters", {})
    filtered = filters.get(Path(str(parameters.get("filtered_dir", ""))).name, {})
    generate = generates.get(Path(str(filtered.get("parameters", {}).get("pool_dir", ""))).name, {})
    judge = filtered.get("relative", "") if filtered.get("parameters", {}).get("method") == "llm_judge" else ""
    return generate.get("relative", ""), judge


def cost_table(study_dir, table: pd.DataFrame, rates: pd.DataFrame, costs, share: float) -> pd.DataFrame:
    """Per human size: the synthetic responses added at ``share`` and as many coded by hand, what each costs
    (tokens in and out, money, seconds) and the AUC each bought, per unit of money and per hour.

    A synthetic response costs its pool's tokens and seconds divided by the responses the pool kept (the
    calls that wrote rejected lines included), plus its share of an LLM judge where the pool was judged;
    ``worth_by_hand`` is what coding the exchange rate's worth of responses by hand would cost. Means over
    the replicates' runs.
    """
    price = prices(costs)
    steps = collect_steps(study_dir)
    pools = pool_costs(study_dir).set_index("step")
    rows = []
    for size, at, synthetic in rows_at_share(table, share):
        count = float(synthetic["n_added"].mean())
        spent = {"prompt_tokens": [], "completion_tokens": [], "seconds": []}
        for step in synthetic["step"]:
            generate, judge = _pool_of(study_dir, step, steps)
            for source in (generate, judge):
                if source and source in pools.index and pools.loc[source, "responses"]:
                    pool = pools.loc[source]
                    for key in spent:
                        spent[key].append(count * pool[key] / pool["responses"])
        tokens_in, tokens_out, seconds = (float(np.sum(spent[k]) / len(synthetic)) if spent[k] else float("nan")
                                          for k in ("prompt_tokens", "completion_tokens", "seconds"))
        human = at[(at["arm"] == HUMAN) & ((at["target_share"] - share).abs() < 1e-9)]
        gain_synthetic = float(synthetic["gain"].mean())
        gain_human = float(human["gain"].mean()) if len(human) else float("nan")
        money = llm_money(price, tokens_in, tokens_out)
        per_response = price["human_coding_cost_per_response"]
        per_response_s = price["human_coding_seconds_per_response"]
        human_money = count * per_response if per_response is not None else float("nan")
        human_seconds = count * per_response_s if per_response_s is not None else float("nan")
        worth = rates.set_index("size")["worth"].get(size, np.nan) if len(rates) else np.nan
        rows.append({
            "size": size, "synthetic": count, "prompt_tokens": tokens_in, "completion_tokens": tokens_out,
            "llm_money": money, "llm_seconds": seconds, "gain_synthetic": gain_synthetic,
            "auc_per_money_synthetic": _per(gain_synthetic, money), "auc_per_hour_synthetic": _per(gain_synthetic, seconds / 3600),
            "human_money": human_money, "human_seconds": human_seconds, "gain_human": gain_human,
            "auc_per_money_human": _per(gain_human, human_money), "auc_per_hour_human": _per(gain_human, human_seconds / 3600),
            "worth": worth, "worth_by_hand_money": worth * per_response if per_response is not None else float("nan"),
            "currency": price["currency"] or ""})
    return noted(pd.DataFrame(rows), "" if rows else f"no synthetic run at exactly {share:.0%}")


def _per(gain: float, cost: float) -> float:
    """AUC gained per unit of cost; inf when the cost is zero (a free local model), NaN when unknown."""
    if not (np.isfinite(gain) and np.isfinite(cost)):
        return float("nan")
    return float("inf") if cost == 0 else gain / cost


def cost_words(costs) -> str:
    """What the cost table assumes, in one paragraph (which prices are stated, where tokens come from)."""
    price = prices(costs)
    stated = [f"{key} = {price[key]}" for key in COST_KEYS if price[key] not in (None, "")]
    missing = [key for key in COST_KEYS[1:] if price[key] is None]
    words = ("Prices from the params' costs section: " + ", ".join(stated) + "." if stated else
             "The params state no costs section: money is left blank; tokens and seconds are measured.")
    if missing and stated:
        words += " Not stated (left blank): " + ", ".join(missing) + "."
    return words + (" A synthetic response costs its pool's tokens and seconds divided by the responses the pool "
                    "kept (rejected lines included); by hand costs the stated price per response coded.")
