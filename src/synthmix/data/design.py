"""The study design: experiments expanded into uses of each pool, and what every pool must supply.

A replicate r is one draw of everything a conclusion should hold across: its own human split
(``split_seed`` and r), training seed r and synthetic draw. ``study_design`` works out, from
the shares the experiments ask for and each replicate's human training size, how many synthetic
responses of each label every pool must supply; a share is reached exactly or the study does
not start.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from synthmix.data.sampling import (
    increment_schedule,
    item_targets,
    label_counts,
    pool_target,
    positive_rate,
    synthetic_count,
)
from synthmix.params import StudyParams


# ------------------------------------------------------------------------- the design
@dataclass(frozen=True)
class Use:
    """One way a pool is used: an experiment's condition for one replicate, and what it draws."""

    experiment: str
    temperature: float
    method: str
    protocol: str
    shares: tuple[float, ...]
    replicate: int
    n_human: int
    rate: float

    @property
    def largest_draw(self) -> int:
        """Synthetic responses this use draws at most (the end of its schedule, or its mixture)."""
        if self.protocol == "mixed":
            return max(synthetic_count(self.n_human, s) for s in self.shares)
        schedule = increment_schedule(self.n_human, self.shares, 1)
        return schedule[-1] if schedule else 0

    def name(self) -> str:
        """The condition's name without the replicate (e.g. t0.7-none-incremental)."""
        protocol = self.protocol if self.protocol != "mixed" else f"mixed{self.shares[0]:g}"
        return f"t{self.temperature:g}-{self.method}-{protocol}"


@dataclass
class StudyDesign:
    """What a study runs and needs: the uses of every pool, each pool's target and needs per label."""

    replicates: list[dict]
    uses: list[Use]
    incremental_shares: dict
    replay_shares: tuple[float, ...]
    needs: dict
    targets: dict
    problems: list[str]
    item_targets: dict = field(default_factory=dict)


def replicate_sizes(params: StudyParams, params_path) -> list[dict]:
    """Per replicate: its human training size and the positive rate synthetic draws keep."""
    from synthmix.data.loading import load_human_data
    from synthmix.data.splits import column_values, split_part

    dataset = load_human_data(params.dataset, params_path).dataset
    sizes = []
    for replicate in range(params.replicates):
        train = split_part(dataset, params.dataset, replicate, "train")  # labels and items only: quick
        sizes.append({"replicate": replicate, "n_human": len(train),
                      "rate": positive_rate(column_values(train, "label"), params.generation.label_balance),
                      "items": item_weights(train) if params.dataset.item_column else None})
    return sizes


def item_weights(human_part) -> dict[str, int]:
    """Human responses per item in a split: what per-item synthetic draws are proportional to."""
    from synthmix.data.splits import column_values

    return dict(Counter(str(item) for item in column_values(human_part, "item")))


def study_design(params: StudyParams, params_path, sizes: list[dict] | None = None) -> StudyDesign:
    """Expand the experiments into uses of each pool and work out every pool's needs per label.

    An incremental run of a (temperature, filter) evaluates the union of the shares all
    experiments ask of it; the replay control follows the schedule of the incremental runs it
    controls. With ``pool_size_per_label: auto`` a pool's target is its largest need times
    ``pool_margin``; a fixed size that cannot supply a need is a problem naming the condition.
    """
    sizes = sizes if sizes is not None else replicate_sizes(params, params_path)
    grid = params.experiment_grid()
    incremental: dict[tuple, set] = {}
    for grid_params in grid.values():
        if "incremental" in grid_params.protocols:
            for temperature in grid_params.temperatures:
                for method in grid_params.filters:
                    incremental.setdefault((temperature, method), set()).update(grid_params.synthetic_shares)
    replay: set = set()
    for grid_params in grid.values():
        if "replay" in grid_params.protocols:
            for temperature in grid_params.temperatures:
                for method in grid_params.filters:
                    replay.update(incremental.get((temperature, method), ()))
    uses = []
    for name, grid_params in grid.items():
        for temperature in grid_params.temperatures:
            for method in grid_params.filters:
                trainings = []
                if "incremental" in grid_params.protocols:
                    trainings.append(("incremental", tuple(sorted(incremental[(temperature, method)]))))
                if "mixed" in grid_params.protocols:
                    trainings += [("mixed", (share,)) for share in
                                  (grid_params.mixed_shares or grid_params.synthetic_shares)]
                for protocol, shares in trainings:
                    for size in sizes:
                        uses.append(Use(name, temperature, method, protocol, shares, size["replicate"],
                                        size["n_human"], size["rate"]))
    needs: dict = {}
    item_needs: dict = {}
    items_of = {size["replicate"]: size.get("items") for size in sizes}
    for use in uses:
        need = needs.setdefault(use.temperature, {1: 0, 0: 0})
        for label, n in label_counts(use.largest_draw, use.rate).items():
            need[label] = max(need[label], n)
        weights = items_of.get(use.replicate)
        if weights:  # per item, in proportion to the replicate's human training data
            per_item = item_needs.setdefault(use.temperature, {})
            for item, counts in item_targets(label_counts(use.largest_draw, use.rate), weights).items():
                slot = per_item.setdefault(item, {1: 0, 0: 0})
                for label, n in counts.items():
                    slot[label] = max(slot[label], n)
    problems, targets = [], {}
    fixed = params.generation.pool_size_per_label
    for temperature, need in needs.items():
        if fixed == "auto":
            targets[temperature] = pool_target(need, params.generation.pool_margin)
            continue
        targets[temperature] = {1: int(fixed), 0: int(fixed)}
        for use in uses:
            if use.temperature != temperature:
                continue
            wanted = label_counts(use.largest_draw, use.rate)
            for label in (1, 0):
                if wanted[label] > fixed:
                    top = max(use.shares)
                    problems.append(
                        f"experiments.{use.experiment}: condition {use.name()} (replicate {use.replicate}) needs "
                        f"{wanted[label]} synthetic responses coded {label} at share {top:g} "
                        f"({use.n_human} human training responses, {use.rate:.0%} positive), but "
                        f"generation.pool_size_per_label is {fixed}; raise it or set it to 'auto'")
    unique = list(dict.fromkeys(problems))
    margin = params.generation.pool_margin if fixed == "auto" else 1.0
    per_item_targets = {t: {item: {label: math.ceil(n * margin) for label, n in counts.items()}
                            for item, counts in by_item.items()} for t, by_item in item_needs.items()}
    return StudyDesign(sizes, uses, {k: tuple(sorted(v)) for k, v in incremental.items()},
                       tuple(sorted(replay)), needs, targets, unique, per_item_targets)
