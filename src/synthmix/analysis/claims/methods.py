"""The methods text of 05_analyze: the estimand, what varies per replicate, and how verdicts are decided."""

from __future__ import annotations


def _pool_words(params) -> str:
    """How the replicates' synthetic draws relate, per experiment, from the params (no claim that they differ)."""
    generation = params.generation
    shared, own = [], []
    for name, experiment in params.experiment_grid().items():
        per_replicate = (generation.per_replicate or generation.examples == "human_train"
                         or bool(getattr(experiment, "pool_per_replicate", False)))
        (own if per_replicate else shared).append(name)
    words = []
    if own:
        words.append(f"in {', '.join(own)} each replicate has its own synthetic pool (generated afresh), so generation "
                     "variance is in the estimate")
    if shared:
        words.append(f"in {', '.join(shared)} every replicate draws, without replacement, from one pool per "
                     "temperature (and filter) shared by all replicates, so draws overlap: a draw of k responses from "
                     "a pool of M shares about k/M of them with another replicate's draw (pools hold "
                     f"{generation.pool_margin:g} times the largest draw, so at the largest share about "
                     f"{1 / generation.pool_margin:.0%}); generation variance is not in the estimate")
    return "; ".join(words)


def methods_text(params, sizes: list[dict]) -> str:
    """What varies per replicate, the estimand, and how the verdicts are decided, in plain words (Markdown)."""
    claims, dataset = params.claims, params.dataset
    human = ", ".join(sorted({str(s["n_human"]) for s in sizes})) if sizes else "?"
    test_share = 1 - dataset.train_fraction
    primary = 1 - 2 * claims.alpha / 3 if claims.multiplicity == "bonferroni" else 1 - 2 * claims.alpha
    return "\n".join([
        f"**Estimand.** {claims.estimand.strip()} Human training responses per replicate: {human}. Every interval "
        "of a difference is an interval for this expected difference; the spread of claim 2a is the SD across "
        "replicates of this data set (resplits, training seeds, synthetic draws).",
        f"**Replicates.** {params.replicates} replicate{'s' if params.replicates != 1 else ''}. Replicate r has its "
        f"own stratified human split (seed from "
        f"split_seed {dataset.split_seed} and r; identical responses kept in one split; {dataset.train_fraction:.0%} "
        f"trains, {dataset.validation_fraction:.0%} of that validates for early stopping, {test_share:.0%} tests), its "
        "own human-only teacher, its own training seed (head initialisation, data order, dropout) and its own synthetic "
        f"draw; {_pool_words(params)}. Replicates resplit the same responses, so any two test sets share about "
        f"{test_share:.0%} of their responses and any two training sets about {dataset.train_fraction:.0%}: the "
        "replicates are not independent.",
        "**Arms.** The arms a verdict compares are alike in everything but the treatment: the same replicate (split, "
        "seed, human-only teacher), the same increment schedule, and for filtering the same synthetic count and "
        "label balance. The replay arm continues training on as many responses drawn afresh from the human "
        "training data, so a gain of synthetic over replay is not just more training.",
        f"**Decisions.** Each claim has a direction and is decided one-sidedly at alpha = {claims.alpha:g} against a "
        f"smallest effect of interest stated before the run ({claims.margin:g} AUC for differences, an SD ratio of "
        f"{claims.sd_ratio_margin:g} for spread, an instability ratio of {claims.instability_ratio_margin:g}), from "
        "the 1 - 2 alpha interval: a claim that something helps is *supported* when the lower bound exceeds the "
        "margin and *contradicted* when the upper bound is below it; a claim that something does not help is "
        "*supported* when the upper bound is below the margin and *contradicted* when the lower bound exceeds it; "
        "otherwise *inconclusive*. Where the interval lies against the band of no meaningful effect (beyond, "
        "within, crosses) is shown beside it as a description. Each claim has one primary verdict (1: incremental "
        "protocol at the claim's share; 2a: spread; 3: the first filter), decided "
        + (f"at alpha / 3 (Bonferroni over the three claims: {primary:.1%} intervals), so the chance of any false "
           f"primary verdict is at most {claims.alpha:g}" if claims.multiplicity == "bonferroni" else
           "at alpha (no error control across the claims: multiplicity none)")
        + "; every other verdict is secondary (alpha, descriptive of the claim's parts). A claim about every part "
        "(every other share, every high temperature) is decided by intersection–union: supported only when every "
        "part is, with the opposite bound Bonferroni-adjusted over the parts.",
        "**Intervals.** Each replicate's difference is scored on its own test split, so the spread across replicates "
        "already carries test-sampling noise and nothing is added on top. Because the replicates resplit one data "
        "set (and may share a pool), their mean has a floor of variance that more replicates do not remove: the "
        "standard error is sqrt(sd^2 / R + floor) with Student's t on R - 1 df (the corrected resampled t of "
        "Nadeau & Bengio 2003, with a measured floor). The floor's test part is measured: the covariance of two "
        "replicates' test noise over the responses both test on (DeLong placements of the paired AUCs); its other "
        "part (training responses, shared pool draws) is the rest of the spread times rho / (1 - rho), rho being "
        "that overlap scaled by how alike replicates respond to a shared test response. Without test predictions "
        "(the instability of 2b) rho is the largest overlap (Nadeau & Bengio, conservative). Spread (2a) uses "
        "Pitman–Morgan's interval for the ratio of SDs of paired values. The rule's coverage and false verdicts "
        "are measured on real data by bench/calibrate_verdicts.py.",
        f"**Power.** For the rule actually used: the probability of a decisive verdict when the truth lies one margin "
        f"beyond the boundary (a difference of 0 or twice the margin), by the noncentral t of the corrected "
        f"statistic; the replicates needed are those giving {claims.power:.0%} of it. Where the floor leaves that "
        "out of reach at any number of replicates, the verdict says so and how many human-coded responses would "
        "reach it.",
    ])
