"""The verdict rules checked on real coded responses: interval coverage and false verdicts against a known truth.

A verdict is only as good as its interval, and the interval's assumptions (how much replicates that
resplit one data set and share a pool depend on each other) cannot be checked on the study itself.
So the very function that decides the study's verdicts (``verdicts.judge_paired``) is run here on
simulated studies built from a large real coded data set (SemEval-2013 Beetle, 5,199 answers),
where the truth is known:

* a fast stand-in for the teacher (frozen MiniLM sentence embeddings, or TF-IDF, with a logistic
  regression head) and pairs of training arms whose true difference is known from the whole
  population: more real human responses (a gain), label-flipped copies of real responses (a loss),
  duplicates of the training responses (about none). ``true_difference`` estimates each truth
  from many draws of a training set of the study's size, scored on the rest of the population;
* ``simulate_study``: the default study's size and resampling structure: ``StudyShape.n_study``
  responses drawn from the population, R replicates each resplit with the project's own splitter
  (one third trains, a quarter of it validates, two thirds test), the treatment arm's extra
  responses drawn without replacement from one pool per study that every replicate shares
  (``pool_margin`` times the largest draw, as the default sizes pools; responses whose text is not
  in the study, as a generated pool's are), per item in proportion to the replicate's training
  responses, as the study splits its synthetic draws across items (``StudyShape.match_items``), one
  paired difference per replicate scored on its own test split;
* ``calibrate``: many simulated studies per arm through the new rule and through the old one
  (``old_rule_interval``, a labelled copy of the two-level bootstrap it replaces), and
  ``calibration_table``: per truth, rule and R the coverage of the 90% interval, the verdict rates at
  the margin, and the false verdicts at the margin boundary (the margin set to the truth).
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from synthmix.analysis.verdicts import ResamplingDesign, decide, evaluation_noise, judge_paired, power_at
from synthmix.data.semeval import read_semeval
from synthmix.data.loading import normalise_text
from synthmix.data.sampling import item_targets, label_counts
from synthmix.data.splits import split_indices

BEETLE_FOLDERS = ("training/2way/beetle", "test/2way/beetle/test-unseen-answers",
                  "test/2way/beetle/test-unseen-questions")
LEARNERS = ("minilm", "tfidf")


# ============================================================================ the population
@dataclass
class Population:
    """Every response of the data set as features for the stand-in learner, with its 0/1 label."""

    features: object  # (n, d) array or sparse matrix
    labels: np.ndarray
    texts: list[str]
    items: list[str]
    learner: str
    keys: np.ndarray  # one integer per distinct text after ``normalise_text`` (identical responses share it)

    def __len__(self) -> int:
        return int(self.labels.size)


def read_beetle(folder) -> pd.DataFrame:
    """All Beetle 2-way answers under ``folder`` (training and both test sets), with ``label`` 1 for correct."""
    folder = Path(folder)
    frame = pd.concat([read_semeval(folder / part) for part in BEETLE_FOLDERS], ignore_index=True)
    unknown = sorted(set(frame["label"]) - {"correct", "incorrect"})
    if unknown:
        raise ValueError(f"{folder}: Beetle 2-way labels should be correct/incorrect; found {unknown}")
    return frame.assign(label=(frame["label"] == "correct").astype(int))


def minilm_embeddings(texts: list[str], cache_dir: Path | None = None, batch_size: int = 64) -> np.ndarray:
    """Mean-pooled, normalised all-MiniLM-L6-v2 embeddings of ``texts`` (frozen), cached as .npy by content."""
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"minilm-{key}.npy" if cache_dir else None
    if cache is not None and cache.is_file():
        return np.load(cache)
    import torch
    from transformers import AutoModel, AutoTokenizer

    from synthmix.steps.models import resolve_model

    path = resolve_model("minilm-l6")
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=128,
                              return_tensors="pt")
            hidden, mask = model(**batch).last_hidden_state, batch["attention_mask"].unsqueeze(-1).float()
            chunks.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1).numpy())
    embeddings = np.vstack(chunks).astype(np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, embeddings)
    return embeddings


def beetle_population(folder, learner: str = "minilm", cache_dir=None, subset: int | None = None,
                      seed: int = 0) -> Population:
    """The Beetle answers as a ``Population`` for ``learner`` ("minilm": frozen embeddings, computed once and
    cached in ``cache_dir``; "tfidf": word 1-2-gram TF-IDF fitted on the population's texts, no labels).
    ``subset``: a random subset of that many answers (fast tests)."""
    if learner not in LEARNERS:
        raise ValueError(f"learner must be one of {LEARNERS}; got {learner!r}")
    frame = read_beetle(folder)
    if subset is not None and subset < len(frame):
        frame = frame.sample(subset, random_state=seed).reset_index(drop=True)
    texts = [str(t) for t in frame["response"]]
    if learner == "tfidf":
        from sklearn.feature_extraction.text import TfidfVectorizer

        features = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(
            [t.lower() for t in texts]).tocsr()
    else:
        features = minilm_embeddings(texts, cache_dir)
    _, keys = np.unique([normalise_text(t) for t in texts], return_inverse=True)
    return Population(features, frame["label"].to_numpy(dtype=int), texts, [str(i) for i in frame["item"]], learner,
                      keys.astype(np.int64))


# ================================================================================ the arms
@dataclass(frozen=True)
class Arm:
    """A treatment whose effect on the stand-in learner is known from the population.

    kind "more_human": ``added`` more real human responses; "flipped": ``added`` real responses with
    their labels flipped; "duplicates": ``added`` copies of training responses. The control arm
    trains on the replicate's training responses alone.
    """

    name: str
    kind: str
    added: int

    @property
    def uses_pool(self) -> bool:
        """Whether the arm's extra responses come from a pool (else from the training responses)."""
        return self.kind in ("more_human", "flipped")


#: The default arms: truths near 0, near the margin (0.02) and up to twice the margin, both signs (sizes
#: from a learning curve of the MiniLM stand-in at 96 training responses; the truths are measured anew).
#: With item-matched draws the gains are smaller (+64: about +0.012), and more real answers per item
#: than Beetle holds cannot be drawn, so the loss side reaches twice the margin (flipped +35).
DEFAULT_ARMS = (Arm("duplicates (+96)", "duplicates", 96), Arm("more human (+64)", "more_human", 64),
                Arm("more human (+180)", "more_human", 180), Arm("flipped (+15)", "flipped", 15),
                Arm("flipped (+23)", "flipped", 23), Arm("flipped (+35)", "flipped", 35))


def _fit_scores(population: Population, rows: np.ndarray, labels: np.ndarray, score_rows: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=1000, solver="liblinear").fit(population.features[rows], labels)
    return np.asarray(population.features[score_rows] @ model.coef_[0]).ravel()


def _auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _arms(population: Population, arm: Arm, train: np.ndarray, extra: np.ndarray | None, rng):
    """(rows, labels) of the treatment arm; the control arm is (train, labels of train)."""
    y = population.labels
    if arm.kind == "duplicates":
        copies = rng.choice(train, size=arm.added, replace=arm.added > train.size)
        rows = np.concatenate([train, copies])
        return rows, y[rows]
    labels = y[extra] if arm.kind == "more_human" else 1 - y[extra]
    return np.concatenate([train, extra]), np.concatenate([y[train], labels])


def _study_sample(population: Population, shape: "StudyShape", rng):
    """A study's responses (``n_study`` of the population) and, in random order, the rest of the population
    whose text is none of the study's (what a pool may hold: responses new to the study, so no replicate
    has to drop a copy of its test responses from its draw)."""
    order = rng.permutation(len(population))
    study, rest = order[:shape.n_study], order[shape.n_study:]
    return study, rest[~np.isin(population.keys[rest], population.keys[study])]


def _splits(population: Population, shape: "StudyShape", study: np.ndarray, seed: int, replicates) -> list:
    """Per replicate, ``(train, validation, test)`` rows: the project's own split (grouped by identical
    text, stratified by item and label), as every replicate of a study resplits its responses."""
    labels = population.labels[study]
    texts, items = [population.texts[i] for i in study], [population.items[i] for i in study]
    out = []
    for replicate in replicates:
        parts = split_indices(labels, seed, shape.train_fraction, shape.validation_fraction, texts=texts, items=items,
                              replicate=replicate)
        out.append(tuple(study[parts[name]] for name in ("train", "validation", "test")))
    return out


def _wanted(population: Population, arm: Arm, train: np.ndarray, shape: "StudyShape") -> dict:
    """The extra responses one replicate draws, per (item, true label): ``arm.added`` whose labels as
    trained on (a flipped arm's the flipped ones, like a generator's intended codes) keep the training
    positive rate (``label_balance: match_human``), split across items in proportion to the training
    responses per item (``item_targets``, what the study's per-item synthetic draws and pools follow)
    when ``shape.match_items``, else one stratum."""
    counts = label_counts(arm.added, float(population.labels[train].mean()))
    if arm.kind == "flipped":  # trained on as label 1 are true 0s, and the other way round
        counts = {1: counts[0], 0: counts[1]}
    if not shape.match_items:
        return {("", label): n for label, n in counts.items()}
    weights = Counter(population.items[i] for i in train)
    return {(item, label): n for item, by_label in item_targets(counts, weights).items() for label, n in by_label.items()}


def _stratum_of(population: Population, rows: np.ndarray, match_items: bool) -> list:
    return [(population.items[i] if match_items else "", int(population.labels[i])) for i in rows]


def _take(population: Population, candidates: np.ndarray, wanted: dict, match_items: bool, rng, what: str) -> np.ndarray:
    """``wanted[(item, label)]`` of ``candidates`` per stratum, without replacement. A stratum that holds
    fewer (an item with few distinct answers of a label) gives all it has and the rest comes from the
    same label's other candidates (any item): matched where the population allows; a label short in
    all raises ``PoolShortage``."""
    strata = _stratum_of(population, candidates, match_items)
    members: dict = {}
    for row, key in zip(candidates, strata):
        members.setdefault(key, []).append(row)
    chosen, short = [], Counter()
    for key in sorted(wanted):
        have = np.asarray(members.get(key, []), dtype=np.int64)
        n = min(wanted[key], have.size)
        short[key[1]] += wanted[key] - n
        if n:
            chosen.append(rng.choice(have, size=n, replace=False))
    taken = np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)
    for label, missing in sorted(short.items()):
        if not missing:
            continue
        rest = candidates[(population.labels[candidates] == label) & ~np.isin(candidates, taken)]
        if missing > rest.size:
            raise PoolShortage(f"{what} holds {rest.size} more responses labelled {label}; the draw needs {missing}")
        taken = np.concatenate([taken, rng.choice(rest, size=missing, replace=False)])
    return taken


class PoolShortage(ValueError):
    """A simulated pool or its population cannot supply a draw (the study would stop with PoolShortage too)."""


def _pool(population: Population, shape: "StudyShape", outside: np.ndarray, wants: list[dict], rng) -> np.ndarray:
    """A pool from the rest of the population for replicates that draw ``wants`` (their ``_wanted``): per
    (item, label), the largest draw any of them makes times ``pool_margin`` (as ``study_design`` sizes a
    shared pool). Its texts are none of the study's, so no replicate has test copies to drop from it."""
    need: dict = {}
    for wanted in wants:
        for key, n in wanted.items():
            need[key] = max(need.get(key, 0), n)
    target = {key: int(math.ceil(n * shape.pool_margin)) for key, n in need.items() if n}
    return _take(population, outside, target, shape.match_items, rng, "the population outside the study")


def true_difference(population: Population, arm: Arm, shape: "StudyShape", draws: int = 1000, seed: int = 0):
    """``(mean, standard error)`` of AUC(treatment) - AUC(control) over ``draws`` independent replicates.

    Each draw is replicate 0 of a fresh study (its own sample, split and pool, as ``simulate_study``
    makes them) scored on every response of the population outside that study's training and
    validation responses and the extra draw whose text none of them has: the expected difference on a
    test response the models have never seen, which is what a study's test split measures.
    """
    rng = np.random.default_rng([seed, 1])
    y = population.labels
    differences = np.empty(draws)
    for d in range(draws):
        study, outside = _study_sample(population, shape, rng)
        (train, validation, _), = _splits(population, shape, study, int(rng.integers(2**31)), [0])
        extra = None
        if arm.uses_pool:
            wanted = _wanted(population, arm, train, shape)
            pool = _pool(population, shape, outside, [wanted], rng)
            extra = _take(population, pool, wanted, shape.match_items, rng, "the pool")
        seen = np.concatenate([train, validation] + ([extra] if extra is not None else []))
        scored = np.flatnonzero(~np.isin(population.keys, population.keys[seen]))
        rows, labels = _arms(population, arm, train, extra, rng)
        differences[d] = (_auc(y[scored], _fit_scores(population, rows, labels, scored))
                          - _auc(y[scored], _fit_scores(population, train, y[train], scored)))
    return float(differences.mean()), float(differences.std(ddof=1) / math.sqrt(draws))


# ============================================================================ the studies
@dataclass(frozen=True)
class StudyShape:
    """The default study's size and resampling: responses per study, split fractions, pool margin, and
    whether extra responses are drawn per item in proportion to the training responses (``match_items``,
    as the study draws synthetic responses for data with an item column) or regardless of item."""

    n_study: int = 384
    train_fraction: float = 1 / 3
    validation_fraction: float = 0.25
    pool_margin: float = 1.5
    match_items: bool = True
    shared_pool: bool = True  # False: each replicate draws from its own pool (``pool_per_replicate``)

    def design(self, arm: Arm, n_test: int, pool_size: int | None = None) -> ResamplingDesign:
        """What the study's claims code would pass for this arm (resplits, and a shared pool if it uses one:
        ``pool_size`` the pool's responses, as the claims code reads them from the pool file)."""
        shared = arm.uses_pool and self.shared_pool
        pool = (pool_size or int(math.ceil(self.pool_margin * arm.added))) if shared else None
        return ResamplingDesign(n_train=self.n_study - n_test, n_test=n_test, n_total=self.n_study, pool_size=pool,
                                draw_size=arm.added if shared else None, shared_pool=shared)


@dataclass
class SimulatedStudy:
    """What one simulated study hands the verdict code: per-replicate differences, their test noise,
    and (for the old rule) the differences on bootstrap resamples of each replicate's test responses."""

    differences: np.ndarray
    predictions: list  # per replicate (test rows, labels, treatment scores, control scores)
    inner: np.ndarray
    n_test: int
    pool_size: int | None = None  # responses in the study's pool (None: the arm uses none)

    def first(self, replicates: int) -> "SimulatedStudy":
        """The same study with only its first ``replicates`` replicates."""
        return SimulatedStudy(self.differences[:replicates], self.predictions[:replicates],
                              self.inner[:replicates], self.n_test, self.pool_size)


def simulate_study(population: Population, arm: Arm, shape: StudyShape, replicates: int, rng,
                   inner_resamples: int = 200) -> SimulatedStudy:
    """One simulated study of ``replicates`` replicates (see the module docstring)."""
    from synthmix.steps.metrics import _metric_values, _Prepared  # the bootstrap's own vectorised AUC

    y = population.labels
    study, outside = _study_sample(population, shape, rng)
    splits = _splits(population, shape, study, int(rng.integers(2**31)), range(replicates))
    wants = [_wanted(population, arm, train, shape) for train, _, _ in splits] if arm.uses_pool else None
    pool = _pool(population, shape, outside, wants, rng) if wants and shape.shared_pool else None
    own = replace(shape, pool_margin=1.0)  # a replicate's own pool holds its draw (as study_design sizes it)
    differences, inner, predictions, n_test = np.empty(replicates), np.empty((replicates, inner_resamples)), [], 0
    for r, (train, _, test) in enumerate(splits):
        extra = None
        if wants:
            drawn_from = pool if shape.shared_pool else _pool(population, own, outside, [wants[r]], rng)
            extra = _take(population, drawn_from, wants[r], shape.match_items, rng, "the pool")
        n_test = test.size
        rows, labels = _arms(population, arm, train, extra, rng)
        treated = _fit_scores(population, rows, labels, test)
        control = _fit_scores(population, train, y[train], test)
        differences[r] = _auc(y[test], treated) - _auc(y[test], control)
        predictions.append((test, y[test], treated, control))
        counts = rng.multinomial(test.size, np.full(test.size, 1.0 / test.size), size=inner_resamples)
        aucs = []
        for scores in (treated, control):
            prepared = _Prepared(y[test].astype(np.int64), scores, 0.5)
            aucs.append(_metric_values(counts[:, prepared.order], prepared, ["auc"])["auc"])
        inner[r] = aucs[0] - aucs[1]
    return SimulatedStudy(differences, predictions, inner, n_test, None if pool is None else int(pool.size))


# ---------------------------------------------------------------------------- the old rule
def old_rule_interval(differences, inner, alpha: float = 0.05, n_boot: int = 2000, seed=0):
    """OLD RULE, kept here only to show its failure: the two-level bootstrap with t on R - 1 df.

    A copy of ``verdicts.effect_interval`` as it stood before issue 13: replicates drawn with
    replacement, then for each one resample of its test responses, SE of the mean times
    sqrt(R / (R - 1)), Student's t on R - 1 df. Returns ``(mean, low, high)``.
    """
    estimates = np.asarray(differences, dtype=float)
    replicates = estimates.size
    mean = float(estimates.mean())
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, replicates, size=(n_boot, replicates))
    columns = rng.integers(0, inner.shape[1], size=(n_boot, replicates))
    boot = np.nanmean(inner[picks, columns], axis=1)
    se = float(np.nanstd(boot, ddof=1) * math.sqrt(replicates / (replicates - 1)))
    quantile = float(sps.t.ppf(1 - alpha, replicates - 1))
    return mean, mean - quantile * se, mean + quantile * se


def _old_outcome(low: float, high: float, margin: float) -> str:
    """The old rule's reading of an interval for a claim that something helps (four outcomes, two-sided)."""
    if low > margin:
        return "supported"
    if high < -margin:
        return "contradicted"
    if low > -margin and high < margin:
        return "no meaningful difference"
    return "inconclusive"


# ============================================================================ calibration
def calibrate(population: Population, arms=DEFAULT_ARMS, replicate_counts=(5, 10), studies: int = 500,
              truth_draws: int = 1000, shape: StudyShape = StudyShape(), margin: float = 0.02,
              alpha: float = 0.05, seed: int = 0, progress=None):
    """Run every arm's truth and ``studies`` simulated studies through the new and the old rule.

    Returns ``(truths, outcomes)``: one row per arm with its true difference and standard error, and
    one row per (arm, study, rule, R) with the interval, the verdict at ``margin`` and what the rule
    predicted. The R = 5 studies are the first five replicates of the R = 10 ones. Each arm's random
    streams follow from ``seed`` and its name, so arms run apart (on two cores) give what they give together.
    """
    truths, rows = [], []
    for arm in arms:
        a = zlib.crc32(arm.name.encode())  # each arm's own random streams, whichever arms run together
        truth, truth_se = true_difference(population, arm, shape, truth_draws, seed=seed + a)
        truths.append({"arm": arm.name, "truth": truth, "truth_se": truth_se, "draws": truth_draws})
        rng = np.random.default_rng([seed, a, 2])
        for s in range(studies):
            whole = simulate_study(population, arm, shape, max(replicate_counts), rng)
            design = shape.design(arm, whole.n_test, whole.pool_size)
            for replicates in replicate_counts:
                study = whole.first(replicates)
                noise = evaluation_noise(study.predictions)
                new = judge_paired(study.differences, "helps", margin, alpha=alpha, design=design, noise=noise)
                rows.append({**_outcome(arm, s, "new: overlap-corrected t", replicates, new.estimate, new.ci_low,
                                        new.ci_high, truth, margin, new.verdict, power_at(new, abs(truth - margin))),
                             "sd2": float(np.var(study.differences, ddof=1)), "noise_variance": noise.variance,
                             "noise_covariance": noise.covariance, "se": new.se, "df": new.df})
                mean, low, high = old_rule_interval(study.differences, study.inner, alpha, seed=s)
                rows.append(_outcome(arm, s, "old: two-level bootstrap", replicates, mean, low, high, truth, margin,
                                     _old_outcome(low, high, margin), float("nan")))
            if progress is not None:
                progress(arm, s)
    return pd.DataFrame(truths), pd.DataFrame(rows)


def _outcome(arm, study, rule, replicates, estimate, low, high, truth, margin, verdict, predicted) -> dict:
    return {"arm": arm.name, "study": study, "rule": rule, "R": replicates, "estimate": estimate, "ci_low": low,
            "ci_high": high, "covers": low <= truth <= high, "low_above_truth": low > truth,
            "high_below_truth": high < truth, "verdict": verdict,
            "boundary_helps": decide(low, high, "helps", truth) if math.isfinite(truth) else "",
            "width": high - low, "predicted_decisive": predicted}


def calibration_table(truths: pd.DataFrame, outcomes: pd.DataFrame, margin: float = 0.02) -> pd.DataFrame:
    """Per arm (truth), rule and R: coverage of the interval, its misses on each side (the false supported /
    contradicted rates at the margin boundary), the mean width and estimate (its bias against the truth),
    the verdict rates at ``margin``, and for the new rule the observed rate of the right decisive verdict
    beside the power the rule predicted for it."""
    table = []
    for (arm, rule, replicates), group in outcomes.groupby(["arm", "rule", "R"], sort=False):
        truth = float(truths.loc[truths["arm"] == arm, "truth"].iloc[0])
        verdicts = group["verdict"].value_counts(normalize=True)
        right = "supported" if truth > margin else "contradicted"
        row = {"arm": arm, "truth": truth, "rule": rule, "R": replicates, "studies": len(group),
               "coverage": group["covers"].mean(),
               "false supported at boundary": group["low_above_truth"].mean(),
               "false contradicted at boundary": group["high_below_truth"].mean(),
               "mean width": group["width"].mean(), "mean estimate": group["estimate"].mean()}
        outcomes_named = ("supported", "contradicted", "inconclusive") + (
            ("no meaningful difference",) if rule.startswith("old") else ())
        row.update({verdict: float(verdicts.get(verdict, 0.0)) for verdict in outcomes_named})
        row["right decisive verdict"] = right
        row["observed"] = float((group["verdict"] == right).mean())
        row["predicted"] = float(group["predicted_decisive"].mean())
        table.append(row)
    return pd.DataFrame(table)
