"""What a study will cost before it runs: LLM calls, tokens, money and time, per pool and per step kind.

``estimate_study`` walks the planned steps. For every pool it works out the calls needed (the
responses wanted per label and item over the responses one call yields), how many of them the reply
cache already holds, the tokens and the seconds; for every other step the training and scoring work
it does. Rates come, in this order, from what was measured (the per-call records ``calls.parquet``
of earlier runs, their generation reports, the reply cache's stored call times, and the seconds in
the markers of this study's complete steps), then, for a generator and temperature the results folder
has never called, from the calls of the study this checkout ships (``results/default``, measured on a
2-core CPU), and otherwise from the ``costs:`` section of the params (``assumed_*``). Every figure says
which it used.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthmix.core import io
from synthmix.core.layout import MARKER
from synthmix.data.sampling import increment_schedule, synthetic_count
from synthmix.errors import InputError
from synthmix.params import CostsParams, StudyParams
from synthmix.run.measured import Measurements, shipped_measurements, shipped_study_for

EMBEDDED_MEAN_CHARS = 77.0  # mean response length of the embedded data, on which the assumed training rates were measured
CHARS_PER_TOKEN = 3.8  # SmolLM2's tokenizer on English prompts (measured: 2,000 characters, 526 tokens)
EXPECTED_EPOCH_SHARE = 0.7  # early stopping ended the default study's fine-tunes after 7 of 10 epochs


def llm_money(costs: CostsParams, prompt_tokens: float, completion_tokens: float) -> float | None:
    """The LLM spend of so many tokens at the params' prices; None when no price is set (a local model)."""
    prices = (costs.llm_price_per_million_input_tokens, costs.llm_price_per_million_output_tokens)
    if prices == (None, None):
        return None
    return prompt_tokens / 1e6 * (prices[0] or 0.0) + completion_tokens / 1e6 * (prices[1] or 0.0)


@dataclass
class PoolEstimate:
    """One pool: what it needs and what making it costs."""

    condition: str
    temperature: float
    positive: int
    negative: int
    calls: int
    cached_calls: int
    prompt_tokens: float
    completion_tokens: float
    seconds: float
    money: float | None
    basis: str
    done: bool
    warning: str = ""  # set when max_calls_per_label stops the pool short of its target (at this yield)

    def line(self, currency: str) -> str:
        """The pool in one line (what validate and --dry-run print)."""
        state = "done" if self.done else (f"{self.cached_calls} of the calls cached" if self.cached_calls else "to do")
        money = f", {currency} {self.money:,.2f}" if self.money is not None else ""
        return (f"pool {self.condition}: {self.positive + self.negative:,} responses needed ({self.positive:,} coded 1, "
                f"{self.negative:,} coded 0); about {self.calls:,} calls ({self.basis}); tokens "
                f"{_count(self.prompt_tokens)} prompt + {_count(self.completion_tokens)} completion; "
                f"{_duration(self.seconds)}{money} [{state}]")


@dataclass
class StudyEstimate:
    """Every pool's estimate, step seconds by kind (all and still to do), and the LLM spend."""

    pools: list[PoolEstimate]
    kinds: dict  # kind -> {"steps", "to_do", "seconds", "seconds_to_do", "basis"}
    money: float | None
    money_to_do: float | None
    currency: str
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Step seconds of the whole study."""
        return sum(k["seconds"] for k in self.kinds.values())

    @property
    def seconds_to_do(self) -> float:
        """Step seconds of the steps not complete yet."""
        return sum(k["seconds_to_do"] for k in self.kinds.values())

    def lines(self, workers: int = 1) -> list[str]:
        """The estimate as printed by validate and --dry-run."""
        out = [pool.line(self.currency) for pool in self.pools]
        for kind, info in self.kinds.items():
            out.append(f"{kind}: {info['steps']} step{'s' if info['steps'] != 1 else ''}, "
                       f"{_duration(info['seconds'])} in all, {info['to_do']} to do: {_duration(info['seconds_to_do'])} "
                       f"({info['basis']})")
        spend = (f"LLM spend {self.currency} {self.money:,.2f} in all, {self.currency} {self.money_to_do:,.2f} to do"
                 if self.money is not None else "LLM spend: none priced (costs.llm_price_* not set)")
        parallel = f", about {_duration(self.seconds_to_do / workers)} with --workers {workers}" if workers > 1 else ""
        out.append(f"total: {_duration(self.seconds)} of step time for the study, {_duration(self.seconds_to_do)} "
                   f"still to do{parallel}; {spend}")
        return out + self.notes

    def over_threshold(self, costs: CostsParams, workers: int = 1) -> str | None:
        """Why ``run`` should ask before starting (the time or money to do exceeds costs.confirm_above_*), or None."""
        reasons = []
        hours = self.seconds_to_do / max(1, workers) / 3600
        if costs.confirm_above_hours is not None and hours > costs.confirm_above_hours:
            reasons.append(f"about {_duration(hours * 3600)} (costs.confirm_above_hours: {costs.confirm_above_hours:g})")
        if (costs.confirm_above_money is not None and self.money_to_do is not None
                and self.money_to_do > costs.confirm_above_money):
            reasons.append(f"{self.currency} {self.money_to_do:,.2f} of LLM calls (costs.confirm_above_money: "
                           f"{costs.confirm_above_money:g})")
        return " and ".join(reasons) or None


def _count(value: float) -> str:
    return f"{value / 1e6:.1f}M" if value >= 1e6 else f"{value / 1e3:.1f}k" if value >= 1e4 else f"{value:,.0f}"


def _duration(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 90:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


@dataclass
class _Data:
    n_total: int
    mean_chars: float


def estimate_study(params: StudyParams, params_path, results_root, steps=None, design=None, human=None,
                   measurements: Measurements | None = None, use_shipped: bool = True) -> StudyEstimate:
    """Estimate calls, tokens, money and time of a study's planned steps (see the module's docstring).

    ``steps``/``design``: the plan and design when the caller has them (else they are made here);
    ``human``: the loaded human data (a ``datasets.Dataset`` with ``text``); ``measurements``: what
    was measured (default: gathered from ``results_root``); ``use_shipped``: whether the shipped study's calls
    stand in for a generator and temperature nothing in ``results_root`` measured.
    """
    from synthmix.data.design import study_design
    from synthmix.run.graph import plan_study
    from synthmix.run.markers import is_complete, read_marker

    design = design or study_design(params, params_path)
    steps = steps if steps is not None else plan_study(params, params_path, results_root, design=design)[0]
    measurements = measurements or Measurements.gather(results_root)
    sources = [m for m in (measurements, shipped_measurements(results_root) if use_shipped else None) if m is not None]
    if human is None:
        from synthmix.data.loading import load_human_data

        human = load_human_data(params.dataset, params_path).dataset
    from synthmix.data.splits import column_values

    texts = column_values(human, "text")
    data = _Data(len(texts), float(np.mean([len(t) for t in texts])) if texts else EMBEDDED_MEAN_CHARS)
    costs = params.costs
    rates = _training_rates(params, data)
    rubric = _rubric(params, params_path)
    pools, kinds, spent, to_do_money = [], {}, 0.0, 0.0
    pool_sizes, fine_tuned = {}, set()
    for step in steps:
        done = is_complete(step)
        if step.kind == "generate":
            pool = _pool_estimate(params, rubric, step, sources, results_root, done)
            pools.append(pool)
            pool_sizes[step.output_dir] = pool.positive + pool.negative
            seconds = pool.seconds
            if pool.money is not None:
                spent += pool.money
                to_do_money += 0.0 if done else pool.money * (1 - pool.cached_calls / max(1, pool.calls))
        else:
            seconds = _step_seconds(params, step, design, data, rates, pool_sizes, fine_tuned)
            if step.kind == "train_teacher":  # its student reads the same pool (through the teacher's folder)
                pool_sizes[step.output_dir] = pool_sizes.get(step.parameters.get("pool_dir"), 0)
        entry = kinds.setdefault(step.kind, {"steps": 0, "to_do": 0, "seconds": 0.0, "seconds_to_do": 0.0,
                                             "measured": [], "predicted": []})
        entry["steps"] += 1
        if done:
            marker = read_marker(step) or {}
            if isinstance(marker.get("seconds"), (int, float)):
                entry["measured"].append(float(marker["seconds"]))
                entry["predicted"].append(seconds)
        entry.setdefault("planned", []).append((seconds, done))
    shipped = None
    for kind, entry in kinds.items():
        factor, basis = 1.0, "assumed rates (costs.assumed_*)"
        if kind == "generate":
            basis = "calls at the rates per pool above"
        elif entry["measured"] and sum(entry["predicted"]) > 0:
            factor = sum(entry["measured"]) / sum(entry["predicted"])
            basis = f"rates scaled to {_steps(len(entry['measured']))}"
            entry["factor"], entry["scaled_steps"] = factor, len(entry["measured"])
        elif use_shipped:
            shipped = shipped if shipped is not None else shipped_step_factors(params, results_root)
            if kind in shipped:
                factor, count, where = shipped[kind]
                basis = f"rates scaled to {_steps(count)} of the shipped study ({where})"
        entry["seconds"] = sum(s for s, _ in entry["planned"]) * factor if kind != "generate" else \
            sum(s for s, _ in entry["planned"])
        entry["seconds_to_do"] = sum(s * (factor if kind != "generate" else 1.0) for s, done in entry["planned"]
                                     if not done)
        entry["to_do"] = sum(1 for _, done in entry["planned"] if not done)
        if kind == "generate":
            entry["seconds_to_do"] = sum(p.seconds * (1 - p.cached_calls / max(1, p.calls)) for p in pools if not p.done)
        entry["basis"] = basis
        for key in ("measured", "predicted", "planned"):
            entry.pop(key)
    priced = llm_money(costs, 0, 0) is not None
    notes = [f"warning: {p.warning}" for p in pools if p.warning] + [f"note: {p}" for p in measurements.problems]
    return StudyEstimate(pools, kinds, spent if priced else None, to_do_money if priced else None, costs.currency,
                         notes)


def _steps(count: int) -> str:
    return f"{count} complete step{'s' if count != 1 else ''}"


def shipped_step_factors(params: StudyParams, results_root) -> dict[str, tuple[float, int, str]]:
    """Per step kind, the measured over the predicted seconds of the shipped study's complete steps, how many,
    and where that study is (what rescales the assumed training rates of a kind the results folder has no
    complete step of): for filters and teachers when that study trained the same teacher on the same device,
    for students when it also distilled into the same student, for the analysis always; {} without one."""
    study = shipped_study_for(results_root)
    found = _shipped_factors(str(study)) if study is not None else ()
    if not found:
        return {}
    factors, (teacher, student, device) = dict(found[0]), found[1]
    same_teacher = (params.teacher.model, params.compute.device) == (teacher, device)
    wanted = {"analyze": True, "filter": same_teacher, "train_teacher": same_teacher,
              "distill": same_teacher and params.student.model == student}
    where = f"{study.parent.name}/{study.name}"
    return {kind: (*factor, where) for kind, factor in factors.items() if wanted.get(kind)}


@functools.lru_cache(maxsize=2)
def _shipped_factors(shipped_study: str) -> tuple:
    from synthmix.params import load_params

    study = Path(shipped_study)
    analysis = next(iter(sorted(study.glob("05_analyze/*/" + MARKER))), None)
    if analysis is None:
        return ()
    try:
        snapshot = io.read_json(analysis).get("parameters", {}).get("params_file")
    except (OSError, ValueError, AttributeError):
        return ()
    if not snapshot or not (study / snapshot).is_file():
        return ()
    try:  # a shipped study this checkout cannot plan (its data moved, say) is no prior, not the user's error
        shipped = load_params(study / snapshot)
        estimate = estimate_study(shipped, study / snapshot, study.parent, use_shipped=False,
                                  measurements=Measurements.gather(study.parent, studies=study.name, with_cache=False))
    except (InputError, OSError, ValueError):
        return ()
    factors = tuple((kind, (info["factor"], info["scaled_steps"])) for kind, info in estimate.kinds.items()
                    if "factor" in info)
    return factors, (shipped.teacher.model, shipped.student.model, shipped.compute.device)


def _rubric(params: StudyParams, params_path):
    """The study's rubric (None when it cannot be read: validate reports that itself)."""
    from synthmix.data.rubric import load_study_rubric

    try:
        return load_study_rubric(params.dataset, params_path)
    except Exception:  # noqa: BLE001
        return None


def _pool_estimate(params: StudyParams, rubric, step, sources: list[Measurements], results_root,
                   done: bool) -> PoolEstimate:
    """Calls, cached calls, tokens, seconds and money of one generation step (rates from the first of
    ``sources`` that measured this generator at this temperature, else the assumed ones)."""
    settings, costs = params.generation, params.costs
    temperature = float(step.parameters["temperature"])
    by_item = step.parameters.get("item_targets") or {}
    targets = [(item, 1, n[0]) for item, n in by_item.items()] + [(item, 0, n[1]) for item, n in by_item.items()] \
        if by_item else [("", 1, step.parameters["target_positive"]), ("", 0, step.parameters["target_negative"])]
    measured_yield = next((found for m in sources if (found := m.yield_per_call(
        settings.model, temperature, settings.responses_per_call))), None)
    per_call_yield, yield_basis = measured_yield or (costs.assumed_yield * settings.responses_per_call,
                                                     "assumed yield (costs.assumed_yield)")
    per_call_yield = max(per_call_yield, 0.05)
    wanted = {(item, label): math.ceil(n / per_call_yield) if n else 0 for item, label, n in targets}
    calls_of = {key: min(settings.max_calls_per_label, n) for key, n in wanted.items()}
    calls = sum(calls_of.values())
    capped = [key for key, n in wanted.items() if n > settings.max_calls_per_label]
    per_call = next((found for m in sources if (found := m.per_call(settings.model, temperature, settings.max_tokens))),
                    None)
    completion = (per_call["completion_tokens"] if per_call else
                  min(settings.max_tokens, settings.responses_per_call * costs.assumed_completion_tokens_per_response))
    prompt = _prompt_tokens(params, rubric)
    if per_call and per_call["seconds"] is not None:
        seconds_per_call, time_basis = per_call["seconds"], per_call["basis"]
    else:
        seconds_per_call = completion / costs.assumed_completion_tokens_per_second + costs.assumed_seconds_per_call
        time_basis = "assumed rates"
    cached = 0 if done or rubric is None else _cached_calls(params, rubric, step, calls_of, results_root)
    if settings.backend == "managed-llama-cpp":  # its servers answer one call at a time each
        from synthmix.steps.generate import managed_servers

        in_flight = managed_servers(settings, step_threads=step.threads)[0]  # the threads the step will run with
    else:
        in_flight = settings.concurrency
    parallel = max(1, min(in_flight, calls or 1))
    seconds = costs.assumed_step_overhead_seconds + calls * seconds_per_call / parallel
    basis = f"{per_call_yield:.1f} new responses per call, {yield_basis}; time {time_basis}"
    warning = ""
    if capped and not done:
        item, label = max(capped, key=lambda key: wanted[key])
        warning = (f"pool {step.condition} may fall short: {len(capped)} label(s){' and items' if item else ''} need "
                   f"more calls than generation.max_calls_per_label ({settings.max_calls_per_label}), e.g. about "
                   f"{wanted[(item, label)]} for label {label}{f' of item {item}' if item else ''}; raise it")
    return PoolEstimate(step.condition, temperature, sum(n for _, label, n in targets if label == 1),
                        sum(n for _, label, n in targets if label == 0), calls, cached, prompt * calls,
                        completion * calls, seconds, llm_money(costs, prompt * calls, completion * calls), basis, done,
                        warning)


def _prompt_tokens(params: StudyParams, rubric) -> float:
    """Prompt tokens of one generation call, from the length of the prompt the rubric makes."""
    from synthmix.steps.generate import build_messages

    if rubric is None:
        return 500.0
    messages = build_messages(rubric, 1, params.generation.responses_per_call)
    return sum(len(m["content"]) / CHARS_PER_TOKEN + 8 for m in messages)


def _cached_calls(params: StudyParams, rubric, step, calls_of: dict, results_root) -> int:
    """How many of the calls a pool would make first are in the reply cache already (0 when unknown)."""
    cache_path = Path(results_root) / "llm_cache.sqlite"
    if not cache_path.is_file() or params.generation.examples == "human_train":
        return 0
    from synthmix.llm.cache import ReplyCache
    from synthmix.llm.client import ChatClient
    from synthmix.steps.generate import build_messages, client_family

    settings = params.generation
    try:
        cache = ReplyCache(cache_path)
        client = ChatClient(client_family(settings), settings.model, cache, connect=lambda: None)
    except Exception:  # noqa: BLE001 - a cache that cannot be read is reported by the step itself
        return 0
    hits, seed = 0, settings.seed + int(step.parameters.get("seed_offset", 0))
    try:
        for (item, label), count in calls_of.items():
            task = rubric.for_item(item) if item else rubric
            messages = build_messages(task, label, settings.responses_per_call)
            for number in range(count):
                request = {"model": settings.model, "messages": messages, "temperature": step.parameters["temperature"],
                           "seed": seed + number, "max_tokens": settings.max_tokens}
                hits += cache.get(client.request_key(request)) is not None
    finally:
        cache.close()
    return hits


# ========================================================== training, filters, analysis
def _training_rates(params: StudyParams, data: _Data) -> dict:
    """Seconds per response trained and scored, for this data's response length and thread count."""
    costs = params.costs
    length = min(max(data.mean_chars / EMBEDDED_MEAN_CHARS, 0.25), params.teacher.max_length * CHARS_PER_TOKEN /
                 EMBEDDED_MEAN_CHARS)
    threads = max(1, params.compute.threads) ** 0.7  # more threads help, not linearly
    return {"train": costs.assumed_train_seconds_per_response * length / threads,
            "eval": costs.assumed_eval_seconds_per_response * length / threads,
            "overhead": costs.assumed_step_overhead_seconds}


def _split_sizes(params: StudyParams, data: _Data, n_train: int) -> tuple[float, float]:
    """(validation, test) responses of a replicate."""
    dataset = params.dataset
    return n_train * dataset.validation_fraction / (1 - dataset.validation_fraction), data.n_total * (1 - dataset.train_fraction)


def _step_seconds(params: StudyParams, step, design, data: _Data, rates: dict, pool_sizes: dict,
                  fine_tuned: set) -> float:
    """Predicted seconds of one filter, teacher, student or analysis step (at the assumed rates). A
    replicate's human-only fine-tune is counted once, in the first step that needs it (``fine_tuned``
    holds the replicates counted so far): the others load it from the shared cache."""
    sizes = {s["replicate"]: s["n_human"] for s in design.replicates}
    replicate = int(step.parameters.get("replicate", 0) or 0)
    n_train = sizes.get(max(replicate, 0), next(iter(sizes.values()), 0))
    validation, test = _split_sizes(params, data, n_train)
    teacher = params.teacher
    epochs = max(1.0, teacher.max_epochs * EXPECTED_EPOCH_SHARE)
    base = n_train * epochs * rates["train"] + validation * epochs * rates["eval"]  # the human-only fine-tune

    def fine_tune() -> float:
        if replicate in fine_tuned:
            return 0.0
        fine_tuned.add(replicate)
        return base
    pool = pool_sizes.get(step.parameters.get("pool_dir") or step.parameters.get("teacher_dir"), 0)
    if step.kind == "filter":
        method = step.parameters.get("method")
        if method == "teacher_agreement":  # the replicate's grader (shared with its teachers) scores the pool
            return rates["overhead"] + fine_tune() + pool * rates["eval"]
        if method == "llm_judge":
            return rates["overhead"] + pool * (params.filter.judge_max_tokens /
                                               params.costs.assumed_completion_tokens_per_second)
        return rates["overhead"] / 3
    if step.kind == "train_teacher":
        shares = step.parameters.get("synthetic_shares") or [0.0]
        protocol = step.parameters.get("protocol")
        transfer = (n_train + pool) * rates["eval"]
        if protocol == "mixed":
            n = n_train + synthetic_count(n_train, float(shares[0]))
            return rates["overhead"] + n * epochs * rates["train"] + validation * epochs * rates["eval"] + \
                test * rates["eval"] + transfer
        schedule = increment_schedule(n_train, shares, teacher.increment)
        added = schedule[-1] if schedule else 0
        return rates["overhead"] + fine_tune() + added * rates["train"] + (len(schedule) + 1) * test * rates["eval"] + \
            transfer
    if step.kind == "distill":
        student = params.student
        layers = float(student.model.split(":")[1]) / 6 if student.model.startswith("teacher-layers:") else 1.0
        transfer = n_train + pool
        return rates["overhead"] + transfer * student.epochs * rates["train"] * max(layers, 0.2) + \
            test * rates["eval"] * 2 + 5.0
    return rates["overhead"] / 2 + 0.05 * len(step.depends_on)
