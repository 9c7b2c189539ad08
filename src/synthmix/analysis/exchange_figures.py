"""Figures of the human-size experiment: AUC against human training size per arm, and the exchange rate.

Each ``plot_*`` returns ``(figure, caption)`` like ``analysis.figures``; save them with
``figures.save_figure``. Points are replicates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthmix.analysis.exchange import BASE, HUMAN, SYNTHETIC, sizes_of
from synthmix.analysis.figures import _message_figure, _plt

ARM_COLOURS = {BASE: "#555555", SYNTHETIC: "#2b8cbe", HUMAN: "#e6550d"}


def plot_auc_by_human_size(table: pd.DataFrame, share: float):
    """Test AUC against the human training size: human-only, + synthetic at ``share``, and + as many extra
    human responses; one dot per replicate, a line through the means."""
    title = "AUC against human training size"
    if table.empty:
        return _message_figure(title, table.attrs.get("note") or "no human-size runs"), f"{title}: no runs."
    plt, _ = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    rng = np.random.default_rng(0)
    at_share = (table["target_share"] - share).abs() < 1e-9
    arms = {BASE: table[table["arm"] == BASE], SYNTHETIC: table[(table["arm"] == SYNTHETIC) & at_share],
            HUMAN: table[(table["arm"] == HUMAN) & at_share]}
    sizes = sizes_of(table)
    n_of = table.groupby("size", observed=True)["n_human"].mean()
    for offset, (arm, rows) in zip((-0.03, 0.0, 0.03), arms.items()):
        if rows.empty:
            continue
        label = {BASE: BASE, SYNTHETIC: f"+ synthetic ({share:.0%} of training)",
                 HUMAN: "+ as many extra human"}[arm]
        x = np.log2(rows["size"].astype(str).map(n_of).to_numpy(dtype=float)) + offset
        ax.scatter(x + rng.uniform(-0.02, 0.02, len(x)), rows["auc"], color=ARM_COLOURS[arm], alpha=0.45, s=20,
                   linewidths=0)
        means = rows.groupby("size", observed=True)["auc"].mean().reindex(sizes).dropna()
        ax.plot(np.log2(means.index.astype(str).map(n_of).to_numpy(dtype=float)) + offset, means.to_numpy(),
                marker="o", color=ARM_COLOURS[arm], label=label)
    ticks = [n_of[s] for s in sizes]
    ax.set_xticks(np.log2(ticks), [f"{s} ({n:.0f})" if s == "all" else s for s, n in zip(sizes, ticks)])
    ax.set(xlabel="human training responses (log scale)", ylabel="test AUC", title=title)
    ax.legend(fontsize=8, loc="lower right")
    replicates = table["replicate"].nunique()
    caption = (f"Test AUC against the human training size (nested stratified subsamples of each replicate's "
               f"training split): human-only, + synthetic responses at {share:.0%}, and + the same number of extra "
               f"human responses from the rest of the split; dots are {replicates} replicates, lines their means.")
    return fig, caption


def plot_exchange_rate(rates: pd.DataFrame):
    """Human-coded responses per synthetic response against human size, with the 1 - 2 alpha interval.

    A rate beyond what the size's human curve reaches is drawn at that ceiling as a triangle, an interval
    running beyond it as an arrow; a synthetic arm worth nothing (or harmful) sits at 0, and a size whose
    training split has no extra human responses is named at the bottom.
    """
    title = "Exchange rate: human responses each synthetic response is worth"
    if rates.empty:
        return _message_figure(title, rates.attrs.get("note") or "no human-size runs"), f"{title}: nothing measured."
    plt, _ = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    colour = "#2b8cbe"
    ceiling_of = rates["curve_to"] / rates["synthetic"]
    for (_, row), ceiling in zip(rates.iterrows(), ceiling_of):
        x = np.log2(row["n_human"])
        if row["status"] == "no extra human responses":
            ax.annotate("no extra human\nresponses", (x, 0), fontsize=8, ha="center", va="bottom", color="#777777")
            continue
        rate, low, high = (float(row[k]) for k in ("rate", "rate_low", "rate_high"))
        if np.isfinite(low):
            ax.vlines(x, low, high if np.isfinite(high) else ceiling, color=colour, lw=2)
            if not np.isfinite(high):  # the interval runs beyond what the human curve reaches
                ax.annotate("", xy=(x, ceiling * 1.2), xytext=(x, ceiling),
                            arrowprops={"arrowstyle": "->", "color": colour})
        ax.plot(x, rate if np.isfinite(rate) else ceiling, "o" if np.isfinite(rate) else "^", color=colour,
                markersize=8)
        if row["status"] in ("worth nothing", "harmful"):
            ax.annotate(row["status"], (x, 0), fontsize=8, ha="center", va="top", xytext=(0, -4),
                        textcoords="offset points")
    tops = [v for v in (*ceiling_of, *rates["rate_high"], *rates["rate"], 1.0) if np.isfinite(v)]
    ax.set_ylim(-0.15, 1.3 * max(tops))
    ax.margins(x=0.12)
    ax.axhline(1.0, color="#555555", ls="--", lw=1, label="1: as good as a human-coded response")
    ax.axhline(0.0, color="#b42318", ls=":", lw=1)
    ax.set_xticks(np.log2(rates["n_human"].to_numpy(dtype=float)), rates["size"].astype(str))
    ax.set(xlabel="human training responses (log scale)", ylabel="human responses per synthetic response",
           title=title)
    ax.legend(fontsize=8)
    level = float(rates["ci_level"].iloc[0])
    caption = (f"Extra human-coded responses with the same AUC gain as each synthetic response added, read off "
               f"each size's human learning curve, with {level:.0%} intervals for the expected curves (draws of the "
               "mean gains, corrected for the replicates' overlap); a triangle or arrow: beyond what the human "
               "curve reaches.")
    return fig, caption
