"""How much human coding synthetic data replaces: the human-size experiment as curves, exchange rates and claim 4.

Read top to bottom:

1. ``human_size_table``: the experiment's teacher checkpoints as tidy rows (replicate, human size,
   arm, responses added, AUC, gain over the human-only teacher of the same replicate and size).
   The arms at each size share one human-only fine-tune (checkpoint 0) and one test split, so
   gains are paired within a replicate.
2. ``exchange_rates``: at each human size, the number of extra human responses that gives the same
   AUC gain as the synthetic responses added, read off the human learning curve of that size (the
   extra-human arm, made monotone), and that number per synthetic response (the exchange rate).
3. ``judge_human_size``: claim 4, "augmentation helps more when human data is scarce": the gain at
   the smallest size minus the gain at the largest, judged one-sidedly against the margin
   (``verdicts.judge_paired``), and the human size above which the gain is below the margin.

Intervals. A per-replicate difference is judged with the corrected resampled t of
``verdicts.judge_paired``. The exchange rate and the crossover size are not means but functions of
the mean gains, so their intervals come from draws of the vector of mean gains: a multivariate t on
R - 1 df centred on the observed means, with the replicates' covariance scaled by (1/R + rho/(1 - rho)),
the same correction ``judge_paired`` applies to one difference; each draw is read off the curve and
the (alpha, 1 - alpha) quantiles of the results form the 1 - 2 alpha interval. That interval is for the
exchange rate (or size) of the *expected* curves of this data set at these sizes: over training
subsamples, seeds, synthetic draws and test responses, not for one replicate's curve.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

from synthmix.analysis.results import collect_steps, noted, steps_by_name
from synthmix.analysis.verdicts import Judgement, ResamplingDesign, judge_paired, not_tested
from synthmix.core import io

EXPERIMENT = "human_size"
BASE, SYNTHETIC, HUMAN = "human only", "synthetic", "extra human"
TABLE_COLUMNS = ("size", "n_human", "replicate", "arm", "n_added", "target_share", "checkpoint", "auc", "base_auc",
                 "gain", "step")
CLAIM = "Augmentation helps more when human data is scarce (gain at the smallest human size minus the largest)."


# ============================================================================ 1. the table
def _size_label(value) -> str:
    return "all" if pd.isna(value) else str(int(value))


def human_size_table(summary: pd.DataFrame, experiment: str = EXPERIMENT) -> pd.DataFrame:
    """Teacher checkpoints of a human-size experiment, one row per replicate, size, arm and count added.

    ``arm`` is 'human only' (checkpoint 0, the fine-tune on the size's subsample), 'synthetic'
    (protocol incremental) or 'extra human' (protocol extra_human); ``gain`` is AUC minus the
    human-only AUC of the same replicate and size; ``size`` is the subsample asked for ('all': the
    whole training split, whose count ``n_human`` may differ by a response between replicates).
    """
    teachers = summary[summary["model"] == "teacher"] if "model" in summary.columns else summary
    member = teachers["experiments"].fillna("").astype(str).str.split(",").map(lambda names: experiment in names)
    runs = teachers[member & teachers["protocol"].isin(["incremental", "extra_human"])].copy()
    if runs.empty:
        return noted(pd.DataFrame(columns=TABLE_COLUMNS), f"no run of an experiment named '{experiment}'")
    runs["size"] = runs["human_size"].map(_size_label) if "human_size" in runs.columns else "all"
    runs["arm"] = np.where(runs["protocol"] == "extra_human", HUMAN, SYNTHETIC)
    first = runs[runs["checkpoint"] == 0].sort_values(["replicate", "size", "arm"], ascending=[True, True, False])
    base = first.drop_duplicates(["replicate", "size"]).assign(arm=BASE)
    base_auc = base.set_index(["replicate", "size"])["auc"]
    rows = pd.concat([base, runs[runs["checkpoint"] > 0]], ignore_index=True)
    rows["base_auc"] = [base_auc.get((r, s), np.nan) for r, s in zip(rows["replicate"], rows["size"])]
    rows["gain"] = rows["auc"] - rows["base_auc"]
    out = rows.reindex(columns=TABLE_COLUMNS)
    order = out.groupby("size")["n_human"].mean().sort_values()
    out["size"] = pd.Categorical(out["size"], list(order.index), ordered=True)
    return noted(out.sort_values(["size", "replicate", "arm", "n_added"]).reset_index(drop=True))


def sizes_of(table: pd.DataFrame) -> list[str]:
    """The sizes of a human-size table, smallest first."""
    present = set(table["size"].astype(str))
    categories = table["size"].cat.categories if hasattr(table["size"], "cat") else sorted(present)
    return [str(s) for s in categories if str(s) in present]


def rows_at_share(table: pd.DataFrame, share: float):
    """Per size, smallest first: ``(size, that size's rows, its synthetic arm's rows at exactly share)``, for
    the sizes whose synthetic arm ran at that share."""
    for size in sizes_of(table):
        at = table[table["size"].astype(str) == size]
        synthetic = at[(at["arm"] == SYNTHETIC) & ((at["target_share"] - share).abs() < 1e-9)]
        if not synthetic.empty:
            yield size, at, synthetic


def synthetic_gains(table: pd.DataFrame, share: float) -> pd.DataFrame:
    """replicate x size: the synthetic arm's gain over human-only at exactly ``share`` (NaN where not run)."""
    rows = table[(table["arm"] == SYNTHETIC) & ((table["target_share"] - share).abs() < 1e-9)]
    wide = rows.pivot_table(index="replicate", columns="size", values="gain", aggfunc="first", observed=True)
    return wide.reindex(columns=[s for s in sizes_of(table) if s in set(wide.columns.astype(str))])


# ============================================================================ 2. exchange rate
def monotone_curve(counts, gains) -> tuple[np.ndarray, np.ndarray]:
    """The human learning curve through (0, 0) and (count, gain) made non-decreasing (pool-adjacent
    violators, ``scipy.optimize.isotonic_regression``): in expectation more human responses do not
    lower the AUC, so a dip between checkpoints is noise, not a second answer to read off."""
    counts, gains = np.asarray(counts, dtype=float), np.asarray(gains, dtype=float)
    fitted = optimize.isotonic_regression(np.concatenate([[0.0], gains])).x
    return np.concatenate([[0.0], counts]), fitted - fitted[0]


def read_off(gain: float, counts, human_gains) -> float:
    """Extra human responses whose gain on the human curve equals ``gain``: 0 when ``gain`` <= 0,
    linear between checkpoints, ``inf`` when the curve never reaches it."""
    if not np.isfinite(gain) or gain <= 0:
        return 0.0 if np.isfinite(gain) else float("nan")
    xs, ys = monotone_curve(counts, human_gains)
    above = np.flatnonzero(ys >= gain)
    if not above.size:
        return float("inf")
    j = int(above[0])
    if j == 0:
        return 0.0
    return float(xs[j - 1] + (gain - ys[j - 1]) / (ys[j] - ys[j - 1]) * (xs[j] - xs[j - 1]))


def mean_draws(values: np.ndarray, design: ResamplingDesign | None, draws: int, seed) -> np.ndarray:
    """Draws of the mean over replicates of each column of ``values`` (replicates x quantities): a
    multivariate t on R - 1 df around the means, with the covariance scaled by (1/R + rho/(1 - rho))."""
    values = np.asarray(values, dtype=float)
    replicates = values.shape[0]
    inflation = (design or ResamplingDesign()).inflation
    shape = np.atleast_2d(np.cov(values, rowvar=False, ddof=1)) * (1 / replicates + inflation)
    if not np.any(shape):  # no spread at all: every draw is the mean
        return np.repeat(values.mean(axis=0)[None, :], draws, axis=0)
    sampler = sps.multivariate_t(values.mean(axis=0), shape, df=replicates - 1, allow_singular=True)
    return np.atleast_2d(sampler.rvs(size=draws, random_state=np.random.default_rng(seed))).reshape(draws, -1)


def _quantiles(samples: np.ndarray, alpha: float) -> tuple[float, float]:
    samples = samples[~np.isnan(samples)]
    if not samples.size:
        return float("nan"), float("nan")
    low, high = np.quantile(samples, [alpha, 1 - alpha], method="inverted_cdf")
    return float(low), float(high)


def _count(value: float, curve_to: float) -> str:
    return f"above {curve_to:.0f}" if value == float("inf") else f"{value:.0f}"


def exchange_rates(table: pd.DataFrame, share: float, margin: float, *, alpha: float = 0.05, power: float = 0.8,
                   design: ResamplingDesign | None = None, draws: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Per human size: what the synthetic responses at ``share`` are worth in human-coded responses.

    Columns: size, n_human, synthetic (responses added), gain and its interval (the synthetic arm
    minus human-only, ``judge_paired``), worth (extra human responses with the same gain, read off
    the size's human curve, ``read_off``) with its interval, rate (worth per synthetic response)
    with its interval, curve_to (the largest count the human curve reached; a worth above it is
    ``inf``: 'more than the curve reaches'), replicates, status and text. ``status`` is 'harmful'
    (the gain's interval lies below 0), 'worth nothing' (gain <= 0), 'no extra human responses'
    (the training split has none left at that size), or 'measured'. Intervals are 1 - 2 alpha, for
    the expected curves (see the module docstring).
    """
    level = 1 - 2 * alpha
    rows = []
    for size, at, synthetic in rows_at_share(table, share):
        count = int(round(synthetic["n_added"].median()))
        gain_by_replicate = synthetic.set_index("replicate")["gain"]
        gain = judge_paired(gain_by_replicate.to_numpy(), "helps", margin, alpha=alpha, power=power, design=design)
        human = at[at["arm"] == HUMAN].pivot_table(index="replicate", columns="n_added", values="gain",
                                                   aggfunc="first").dropna(axis=1)
        replicates = sorted(set(gain_by_replicate.dropna().index) & set(human.index))
        row = {"size": size, "n_human": float(at["n_human"].mean()), "synthetic": count, "gain": gain.estimate,
               "gain_low": gain.ci_low, "gain_high": gain.ci_high, "worth": np.nan, "worth_low": np.nan,
               "worth_high": np.nan, "rate": np.nan, "rate_low": np.nan, "rate_high": np.nan,
               "curve_to": float(human.columns.max()) if human.shape[1] else 0.0, "ci_level": level,
               "replicates": len(replicates)}
        if gain.verdict != "not tested" and np.isfinite(gain.ci_high) and gain.ci_high < 0:
            status = "harmful"
        elif gain.verdict != "not tested" and gain.estimate <= 0:
            status = "worth nothing"
        elif human.shape[1] == 0 or not replicates:
            status = "no extra human responses"
        else:
            status = "measured"
        if human.shape[1] and replicates:
            counts = human.columns.to_numpy(dtype=float)
            values = np.column_stack([gain_by_replicate.loc[replicates].to_numpy(),
                                      human.loc[replicates].to_numpy()])
            means = values.mean(axis=0)
            row["worth"] = read_off(means[0], counts, means[1:])
            if len(replicates) >= 2:
                sampled = mean_draws(values, design, draws, seed)
                worth = np.array([read_off(d[0], counts, d[1:]) for d in sampled])
                row["worth_low"], row["worth_high"] = _quantiles(worth, alpha)
            for key in ("", "_low", "_high"):
                row[f"rate{key}"] = row[f"worth{key}"] / count if count else np.nan
        if status in ("harmful", "worth nothing") and not np.isfinite(row["worth"]):  # no curve needed: worth 0
            row["worth"], row["rate"] = 0.0, 0.0
        row["status"] = status
        row["text"] = _exchange_words(row, share)
        rows.append(row)
    columns = ["size", "n_human", "synthetic", "gain", "gain_low", "gain_high", "worth", "worth_low", "worth_high",
               "rate", "rate_low", "rate_high", "curve_to", "ci_level", "replicates", "status", "text"]
    return noted(pd.DataFrame(rows, columns=columns), "" if rows else f"no synthetic run at exactly {share:.0%}")


def _exchange_words(row: dict, share: float) -> str:
    gain = (f"{row['gain']:+.3f} AUC" + (f" ({row['ci_level']:.0%} CI {row['gain_low']:+.3f} to {row['gain_high']:+.3f})"
                                         if np.isfinite(row["gain_low"]) else ""))
    size = f"all ({row['n_human']:.0f})" if row["size"] == "all" else row["size"]
    start = f"At {size} human responses, {row['synthetic']} synthetic ({share:.0%}) change AUC by {gain}"
    if row["status"] == "harmful":
        return start + ": harmful (the interval lies below no change)."
    if row["status"] == "worth nothing":
        return start + ": worth nothing (not above the human-only teacher)."
    if row["status"] == "no extra human responses":
        return start + "; the training split has no extra human responses to compare with at this size."
    curve = row["curve_to"]
    interval = (f" ({row['ci_level']:.0%} interval {_count(row['worth_low'], curve)} to "
                f"{_count(row['worth_high'], curve)})" if np.isfinite(row["worth_low"]) else "")
    rate = (f"{row['rate']:.2f} human responses per synthetic one" if np.isfinite(row["rate"]) else
            f"more than {curve / row['synthetic']:.2f} per synthetic one")
    worth = (f"more than the {curve:.0f} extra human-coded responses its human curve reaches"
             if row["worth"] == float("inf") else f"{row['worth']:.0f} extra human-coded responses")
    return start + f": worth {worth}{interval}, {rate} (human curve read up to {curve:.0f} extra)."


# ============================================================================ 3. claim 4
def crossover_size(sizes_n, gains, margin: float) -> float:
    """The human size at which the gain curve first falls below ``margin`` (interpolated on log size):
    0 when it is below already at the smallest size, ``inf`` when it never falls below."""
    sizes_n, gains = np.asarray(sizes_n, dtype=float), np.asarray(gains, dtype=float)
    below = np.flatnonzero(gains < margin)
    if not below.size:
        return float("inf")
    j = int(below[0])
    if j == 0:
        return 0.0
    t = (gains[j - 1] - margin) / (gains[j - 1] - gains[j])
    return float(np.exp(np.log(sizes_n[j - 1]) + t * (np.log(sizes_n[j]) - np.log(sizes_n[j - 1]))))


def _size_words(value: float, smallest: float, largest: float) -> str:
    if not np.isfinite(value):
        return f"above {largest:.0f}"
    if value == 0:
        return f"at or below {smallest:.0f}"
    return f"{value:.0f}"


def judge_human_size(table: pd.DataFrame, share: float, margin: float, *, alpha: float = 0.05, power: float = 0.8,
                     design: ResamplingDesign | None = None, draws: int = 4000, seed: int = 1) -> list[dict]:
    """Claim 4 as claims.json records (``Judgement.as_dict()`` plus id, claim, part, text).

    Part 1, the verdict: per replicate, the synthetic gain at ``share`` at the smallest human size
    minus that at the largest, judged "helps" against ``margin`` (``judge_paired``). Part 2, an
    estimate with its interval and no verdict of its own: the human size above which the mean gain is
    below ``margin`` (``crossover_size``; interval from ``mean_draws``, see the module docstring).
    """
    gains = synthetic_gains(table, share).dropna()
    sizes = list(gains.columns.astype(str))
    if len(sizes) < 2 or gains.empty:
        why = f"needs synthetic runs at {share:.0%} at two human sizes or more in experiment '{EXPERIMENT}'"
        return [_record("gain at the smallest size minus the largest", not_tested("helps", margin, why),
                        f"Not tested: {why}.")]
    n_of = table.groupby("size", observed=True)["n_human"].mean()
    small, large = sizes[0], sizes[-1]
    difference = gains[small] - gains[large]
    j = judge_paired(difference.to_numpy(), "helps", margin, alpha=alpha, power=power, design=design)
    means = ", ".join(f"{s}: {gains[s].mean():+.3f}" for s in sizes)
    text = (f"Mean gain of {share:.0%} synthetic over the human-only teacher by human size: {means}. The gain at "
            f"{small} minus the gain at {large} is {j.estimate:+.3f} AUC ({j.ci_level:.0%} CI {j.ci_low:+.3f} to "
            f"{j.ci_high:+.3f}) over {j.replicates} replicates; margin {margin:g}. {j.what_would_decide} "
            f"Verdict: {j.verdict}.")
    records = [_record(f"gain at {small} minus at {large} human responses, {share:.0%} synthetic", j, text)]
    sizes_n = np.array([n_of[s] for s in sizes], dtype=float)
    estimate = crossover_size(sizes_n, gains.mean(axis=0).to_numpy(), margin)
    low = high = float("nan")
    if len(gains) >= 2:
        sampled = mean_draws(gains.to_numpy(), design, draws, seed)
        low, high = _quantiles(np.array([crossover_size(sizes_n, d, margin) for d in sampled]), alpha)
    level = 1 - 2 * alpha
    words = (f"The mean gain falls below the margin ({margin:g} AUC) at a human size of "
             f"{_size_words(estimate, sizes_n[0], sizes_n[-1])} ({level:.0%} interval "
             f"{_size_words(low, sizes_n[0], sizes_n[-1])} to {_size_words(high, sizes_n[0], sizes_n[-1])}; "
             f"sizes run: {', '.join(f'{n:.0f}' for n in sizes_n)}; interpolated on log size). An estimate, "
             "not a verdict: the interval is for the size at which the expected gain curve crosses the margin.")
    crossing = Judgement("estimate", "does_not_help", estimate, low, high, level, margin, "", len(gains),
                         method="crossing of the mean gain curve (log size); interval from multivariate-t draws of "
                         "the mean gains, covariance scaled by the corrected resampled t's 1/R + rho/(1 - rho)",
                         scale="human responses")
    record = _record("human size above which the gain is below the margin", crossing, words)
    record |= {"estimate": _finite(estimate), "ci_low": _finite(low), "ci_high": _finite(high),
               "censored": {"estimate": _censor(estimate), "ci_low": _censor(low), "ci_high": _censor(high)}}
    return [*records, record]


def _finite(value: float):
    return float(value) if np.isfinite(value) and value > 0 else None


def _censor(value: float) -> str:
    return "above the largest size" if value == float("inf") else "at or below the smallest size" if value == 0 else ""


def _record(part: str, judgement: Judgement, text: str) -> dict:
    return {"id": "4", "claim": CLAIM, "part": part, **judgement.as_dict(), "text": text}


# ============================================================================ the design
def resampling_design(human, study_dir, summary: pd.DataFrame, experiment: str = EXPERIMENT) -> ResamplingDesign:
    """How the experiment's replicates overlap (``verdicts.ResamplingDesign``): the resplit data set of
    ``human`` (one replicate's train/validation/test) and, when the replicates share the synthetic
    pool, its size and the largest draw from it."""
    n_train = len(human["train"]) + len(human["validation"])
    n_test = len(human["test"])
    runs = summary[summary["experiments"].fillna("").astype(str).str.contains(experiment, regex=False)
                   & (summary["protocol"] == "incremental")]
    steps = collect_steps(study_dir)
    teachers, filters, generates = (steps_by_name(steps, kind) for kind in ("train_teacher", "filter", "generate"))
    pool_size, shared = None, False
    for step in runs["step"].dropna().unique():
        parameters = teachers.get(Path(str(step)).name, {}).get("parameters", {})
        filtered = filters.get(Path(str(parameters.get("filtered_dir", ""))).name, {})
        generate = generates.get(Path(str(filtered.get("parameters", {}).get("pool_dir", ""))).name)
        pool_file = Path(filtered.get("folder", "")) / "filtered_pool.parquet"
        if generate and not generate["parameters"].get("own_pool") and filtered and pool_file.is_file():
            pool_size, shared = len(io.read_table(pool_file)), True
            break
    draw = int(runs["n_added"].max()) if shared and len(runs) else None
    if shared and draw is not None and draw > pool_size:
        shared = False
    return ResamplingDesign(n_train=n_train, n_test=n_test, n_total=n_train + n_test,
                            pool_size=pool_size if shared else None, draw_size=draw if shared else None,
                            shared_pool=shared)


def curve_words(rates: pd.DataFrame) -> str:
    """One sentence per size of an exchange-rate table (for the notebook and the index)."""
    return " ".join(rates["text"]) if len(rates) else "No exchange rate: " + rates.attrs.get("note", "no data") + "."


def judged_share(params, experiment: str = EXPERIMENT) -> float | None:
    """The share claim 4 and the exchange rate are judged at: ``claims.human_size_share``, else the
    experiment's largest synthetic share; None when the study has no such experiment."""
    grid = (getattr(params, "experiments", None) or {}).get(experiment)
    if grid is None:
        return None
    chosen = getattr(params.claims, "human_size_share", None)
    return float(chosen) if chosen is not None else float(max(grid.synthetic_shares))


def judged_margin(params) -> float:
    """Claim 4's margin: ``claims.human_size_margin``, else ``claims.margin``."""
    return float(getattr(params.claims, "human_size_margin", None) or params.claims.margin)
