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

import pandas as pd

from synthmix.data.sampling import (
    HUMAN_SIZE_SEED,
    extra_human_shares,
    increment_schedule,
    item_targets,
    label_counts,
    largest_supplied,
    nested_order,
    pool_target,
    positive_rate,
    synthetic_count,
)
from synthmix.params import StudyParams


# ------------------------------------------------------------------------- the design
def share_tag(shares) -> str:
    """Shares as a readable part of a condition name: (0.2, 0.4) -> '20-40' (percent, sorted)."""
    return "-".join(f"{round(100 * s, 2):g}" for s in sorted(shares))


@dataclass(frozen=True)
class PoolKey:
    """Which pool a use draws from: the temperature's pool shared by every replicate, or a replicate's own."""

    temperature: float
    own: bool = False

    def name(self, replicate: int | None = None) -> str:
        """The pool's condition name: t0.7 (shared) or t0.7-r3 (replicate 3's own)."""
        return f"t{self.temperature:g}" + (f"-r{replicate}" if self.own else "")


@dataclass(frozen=True)
class Use:
    """One way a pool is used: an experiment's condition for one replicate, and what it draws.

    ``like`` names the filter method whose filtered pool (same replicate) this arm's pool is thinned to
    per label, so the arms a consistency claim compares draw from pools of the same size.
    """

    experiment: str
    temperature: float
    method: str
    protocol: str
    shares: tuple[float, ...]
    replicate: int
    n_human: int
    rate: float
    own_pool: bool = False
    like: str | None = None
    human_size: int | None = None  # a human-size experiment's subsample (None: the whole training split)

    @property
    def pool(self) -> PoolKey:
        """The pool this use draws from."""
        return PoolKey(self.temperature, self.own_pool)

    @property
    def largest_draw(self) -> int:
        """Synthetic responses this use draws at most (the end of its schedule, or its mixture)."""
        if self.protocol == "mixed":
            return max(synthetic_count(self.n_human, s) for s in self.shares)
        schedule = increment_schedule(self.n_human, self.shares, 1)
        return schedule[-1] if schedule else 0

    def name(self) -> str:
        """The condition's name without the replicate, unique per schedule and pool
        (e.g. t0.7-none-incremental20-40-60-80, t0.7-ownpool-none-incremental40, t0.7-none~teacher_agreement-incremental40)."""
        protocol = f"mixed{self.shares[0]:g}" if self.protocol == "mixed" else f"{self.protocol}{share_tag(self.shares)}"
        pool = "-ownpool" if self.own_pool else ""
        method = self.method + (f"~{self.like}" if self.like else "")
        return f"t{self.temperature:g}{pool}-{method}-{protocol}" + size_tag(self.human_size)


def size_tag(human_size: int | None) -> str:
    """A human-size subsample as part of a condition name: '-h24' (nothing for the whole training split)."""
    return "" if human_size is None else f"-h{human_size}"


@dataclass(frozen=True)
class ReplayUse:
    """The training-steps control of one experiment and replicate: its incremental schedule on human responses."""

    experiment: str
    shares: tuple[float, ...]
    replicate: int

    def name(self) -> str:
        """The control's condition name without the replicate (e.g. replay20-40-60-80)."""
        return f"replay{share_tag(self.shares)}"


@dataclass(frozen=True)
class ExtraHumanUse:
    """The human arm of a human-size experiment for one replicate and size: after the human-only fine-tune on
    ``human_size`` responses, the synthetic arm's schedule continued on extra human responses from the rest
    of the replicate's training split (up to ``extent`` times the largest synthetic draw, where it has them)."""

    experiment: str
    shares: tuple[float, ...]
    replicate: int
    human_size: int
    extent: float

    def name(self) -> str:
        """The arm's condition name without the replicate (e.g. extrahuman40-h24)."""
        return f"extrahuman{share_tag(self.shares)}{size_tag(self.human_size)}"


@dataclass
class StudyDesign:
    """What a study runs and needs: the uses of every pool, each pool's target and needs per label.

    ``needs``, ``targets`` and ``item_targets`` are keyed by ``PoolKey`` (a temperature's shared pool,
    or the pools replicates own); ``replays`` lists the training-steps controls.
    """

    replicates: list[dict]
    uses: list[Use]
    replays: list[ReplayUse]
    needs: dict
    targets: dict
    problems: list[str]
    item_targets: dict = field(default_factory=dict)
    extra_humans: list[ExtraHumanUse] = field(default_factory=list)

    def pool_keys(self) -> list[PoolKey]:
        """Every pool the study generates (a key per temperature and kind), in a stable order."""
        return sorted(self.targets, key=lambda key: (key.temperature, key.own))


def replicate_sizes(params: StudyParams, params_path) -> list[dict]:
    """Per replicate: its human training size, the positive rate synthetic draws keep, and (``train``)
    the labels and items of its training split, which a human-size experiment subsamples."""
    from synthmix.data.loading import load_human_data
    from synthmix.data.splits import column_values, split_part

    dataset = load_human_data(params.dataset, params_path).dataset
    sizes = []
    for replicate in range(params.replicates):
        train = split_part(dataset, params.dataset, replicate, "train")  # labels and items only: quick
        sizes.append({"replicate": replicate, "n_human": len(train),
                      "rate": positive_rate(column_values(train, "label"), params.generation.label_balance),
                      "items": item_weights(train) if params.dataset.item_column else None,
                      "train": pd.DataFrame({"label": column_values(train, "label"),
                                            "item": [str(i) for i in column_values(train, "item")]})})
    return sizes


def item_weights(human_part) -> dict[str, int]:
    """Human responses per item in a split: what per-item synthetic draws are proportional to."""
    from synthmix.data.splits import column_values

    return dict(Counter(str(item) for item in column_values(human_part, "item")))


def study_design(params: StudyParams, params_path, sizes: list[dict] | None = None) -> StudyDesign:
    """Expand the experiments into uses of each pool and work out every pool's needs per label.

    Each experiment's conditions get their own runs, so the arms one claim compares share one
    increment schedule (the same checkpoints and optimiser passes); an identical condition asked
    for by two experiments is one run. The replay control follows the schedule of its experiment's
    incremental runs. In an experiment that compares filters, the unfiltered arm is paired with
    each filtered one (its pool thinned to that filtered pool's size). With
    ``pool_size_per_label: auto`` a pool's target is its largest need times ``pool_margin``; a fixed
    size that cannot supply a need is a problem naming the condition.
    """
    sizes = sizes if sizes is not None else replicate_sizes(params, params_path)
    own_everywhere = params.generation.per_replicate or params.generation.examples == "human_train"
    uses, replays, extra_humans, problems = [], [], [], []
    subsample_items: dict = {}
    for name, grid_params in params.experiment_grid().items():
        own = own_everywhere or grid_params.pool_per_replicate
        if grid_params.human_sizes is not None:
            found = human_size_uses(name, grid_params, sizes, params, own)
            uses += found["uses"]
            extra_humans += found["extra_humans"]
            problems += found["problems"]
            subsample_items.update(found["items"])
            continue
        filtered = [m for m in grid_params.filters if m != "none"]
        arms = [(m, None) for m in grid_params.filters if m != "none" or not filtered]
        arms += [("none", m) for m in filtered if "none" in grid_params.filters]
        shares = tuple(sorted(set(grid_params.synthetic_shares)))
        for temperature in grid_params.temperatures:
            for method, like in arms:
                trainings = [("incremental", shares)] if "incremental" in grid_params.protocols else []
                if "mixed" in grid_params.protocols:
                    trainings += [("mixed", (share,)) for share in (grid_params.mixed_shares or shares)]
                for protocol, trained in trainings:
                    for size in sizes:
                        uses.append(Use(name, temperature, method, protocol, trained, size["replicate"],
                                        size["n_human"], size["rate"], own_pool=own, like=like))
        if "replay" in grid_params.protocols:
            replays += [ReplayUse(name, shares, size["replicate"]) for size in sizes]
    needs: dict = {}
    item_needs: dict = {}
    items_of = {size["replicate"]: size.get("items") for size in sizes}
    for use in uses:
        need = needs.setdefault(use.pool, {1: 0, 0: 0})
        for label, n in label_counts(use.largest_draw, use.rate).items():
            need[label] = max(need[label], n)
        weights = subsample_items.get((use.replicate, use.human_size), items_of.get(use.replicate))
        if weights:  # per item, in proportion to the replicate's human training data
            per_item = item_needs.setdefault(use.pool, {})
            for item, counts in item_targets(label_counts(use.largest_draw, use.rate), weights).items():
                slot = per_item.setdefault(item, {1: 0, 0: 0})
                for label, n in counts.items():
                    slot[label] = max(slot[label], n)
    targets = {}
    fixed = params.generation.pool_size_per_label
    for key, need in needs.items():
        if fixed == "auto":  # a replicate's own pool is drawn by that replicate alone: no margin needed
            targets[key] = pool_target(need, 1.0 if key.own else params.generation.pool_margin)
            continue
        targets[key] = {1: int(fixed), 0: int(fixed)}
        for use in uses:
            if use.pool != key:
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
    def margin(key: PoolKey) -> float:
        return params.generation.pool_margin if fixed == "auto" and not key.own else 1.0

    per_item_targets = {key: {item: {label: math.ceil(n * margin(key)) for label, n in counts.items()}
                              for item, counts in by_item.items()} for key, by_item in item_needs.items()}
    return StudyDesign(sizes, uses, replays, needs, targets, unique, per_item_targets, extra_humans)


def human_size_uses(name: str, grid_params, sizes: list[dict], params: StudyParams, own: bool) -> dict:
    """The uses of a human-size experiment: per replicate and size, the synthetic arm (a nested stratified
    subsample of the training split, ``sampling.nested_order``) and the extra-human arm where the rest of
    the split can supply it. Returns ``uses``, ``extra_humans``, ``problems`` (a size larger than a
    replicate's training split) and ``items`` ((replicate, size) -> the subsample's item weights).
    """
    out = {"uses": [], "extra_humans": [], "problems": [], "items": {}}
    shares = tuple(sorted(set(grid_params.synthetic_shares)))
    method = grid_params.filters[0]
    for size in sizes:
        replicate, train = size["replicate"], size.get("train")
        if train is None:  # sizes given without the split (tests of other experiments)
            raise ValueError("human_size_uses: replicate sizes lack the training split ('train'); use replicate_sizes")
        order = nested_order(train["label"], train["item"] if params.dataset.item_column else None,
                             [params.dataset.split_seed, replicate, HUMAN_SIZE_SEED])
        for wanted in grid_params.human_sizes:
            if wanted != "all" and wanted > len(train):
                out["problems"].append(
                    f"experiments.{name}.human_sizes: human size {wanted} is larger than replicate {replicate}'s "
                    f"human training split ({len(train)} responses: the training part of split_seed "
                    f"{params.dataset.split_seed}, replicate {replicate}, after validation is held out); "
                    f"ask for at most {len(train)}, or 'all'")
                continue
            count = len(train) if wanted == "all" else int(wanted)
            subsample, rest = train.iloc[order[:count]], train.iloc[order[count:]]
            rate = positive_rate(subsample["label"], params.generation.label_balance)
            weights = item_weights(subsample) if params.dataset.item_column else None
            tag = None if wanted == "all" else count
            out["items"][(replicate, tag)] = weights
            for temperature in grid_params.temperatures:
                out["uses"].append(Use(name, temperature, method, "incremental", shares, replicate, count, rate,
                                       own_pool=own, human_size=tag))
            schedule = increment_schedule(count, shares, params.teacher.increment)
            upto = int(round(grid_params.extra_human_extent * schedule[-1])) if schedule else 0
            available = largest_supplied(rest, rate, upto, weights)
            if extra_human_shares(count, shares, params.teacher.increment, grid_params.extra_human_extent, available):
                out["extra_humans"].append(ExtraHumanUse(name, shares, replicate, count, grid_params.extra_human_extent))
    return out
