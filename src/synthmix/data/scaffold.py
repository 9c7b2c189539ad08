"""``synthmix init DATA``: from a user's coded responses to a params file and a rubric template.

The data file is inspected, the text, label, item (and id, question text, reference) columns
and the label mapping are proposed from what it holds, and two files are written beside it:
``<name>.params.yaml`` and ``<name>.rubric.yaml``. Every key carries a comment; what only a
person can write (the task, the criteria, example responses) holds the marker
``TODO (you write this)``, and ``synthmix validate`` fails, naming each one, until it is written.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from synthmix.data.loading import FORMATS, _read_table, label_key
from synthmix.data.rubric import TODO_MARK, _todo_markers
from synthmix.errors import InputError

POSITIVE_WORDS = {"1", "true", "yes", "y", "correct", "right", "pass", "passed", "positive", "pos", "good",
                  "acceptable", "accept", "accepted", "appropriate", "high"}
NEGATIVE_WORDS = {"0", "false", "no", "n", "incorrect", "wrong", "fail", "failed", "negative", "neg", "bad",
                  "unacceptable", "reject", "rejected", "inappropriate", "low"}
HINTS = {
    "label": ("label", "code", "coded", "score", "grade", "accuracy", "correct", "rating", "class", "y"),
    "item": ("item", "question_id", "qid", "question", "prompt_id", "task", "prompt", "problem", "scenario"),
    "item_text": ("question_text", "question", "prompt_text", "prompt", "stem", "item_text"),
    "reference": ("reference", "references", "reference_answer", "model_answer", "answer_key", "key", "ideal"),
    "id": ("id", "response_id", "answer_id", "row_id", "uid"),
}


@dataclass
class Proposal:
    """What ``inspect_data`` proposes, with the evidence shown in the written comments."""

    text_column: str
    label_column: str
    id_column: str | None = None
    item_column: str | None = None
    item_text_column: str | None = None
    reference_column: str | None = None
    label_counts: dict = field(default_factory=dict)  # raw value -> count
    positive_labels: list = field(default_factory=list)
    negative_labels: list = field(default_factory=list)
    unmapped_labels: list = field(default_factory=list)
    items: dict = field(default_factory=dict)  # item -> count
    columns: list = field(default_factory=list)
    sizing: str = ""  # what init_study chose for the experiments, and why


def _hint_rank(name: str, kind: str) -> int:
    lowered = str(name).strip().lower()
    hints = HINTS[kind]
    return hints.index(lowered) if lowered in hints else (len(hints) + 1 if any(h in lowered for h in hints) else 99)


def _texts(frame: pd.DataFrame, column) -> pd.Series:
    return frame[column].map(lambda v: "" if v is None else str(v).strip())


def inspect_data(frame: pd.DataFrame, source: str = "<data>") -> Proposal:
    """Propose the text, label, item, id, question-text and reference columns and the label mapping."""
    if frame.empty or len(frame.columns) < 2:
        raise InputError(f"{source}: expected a header and rows with at least a response column and a label column")
    n = len(frame)
    stats = {}
    for column in frame.columns:
        values = _texts(frame, column)
        stats[column] = {"distinct": values.nunique(), "length": values.str.len().mean(),
                         "words": values.str.split().map(len).mean()}
    label_candidates = [c for c in frame.columns if 2 <= stats[c]["distinct"] <= 10]
    if not label_candidates:
        raise InputError(f"{source}: no column with 2 to 10 distinct values that could hold the codes; "
                         f"columns: {', '.join(map(str, frame.columns))}")
    label = min(label_candidates, key=lambda c: (_hint_rank(c, "label"), stats[c]["distinct"]))
    rest = [c for c in frame.columns if c != label]
    ids = [c for c in rest if stats[c]["distinct"] == n and _hint_rank(c, "id") < 99]
    id_column = min(ids, key=lambda c: _hint_rank(c, "id")) if ids else None
    rest = [c for c in rest if c != id_column]
    items = [c for c in rest if 2 <= stats[c]["distinct"] <= max(2, n // 3) and _hint_rank(c, "item") < 99]
    item_column = min(items, key=lambda c: (_hint_rank(c, "item"), stats[c]["length"])) if items else None
    rest = [c for c in rest if c != item_column]
    item_text_column = reference_column = None
    if item_column is not None:
        per_item = {c: frame.groupby(item_column)[c].nunique().max() for c in rest}
        constant = [c for c in rest if per_item[c] == 1 and stats[c]["words"] >= 3]
        questions = [c for c in constant if _hint_rank(c, "item_text") < 99]
        item_text_column = min(questions, key=lambda c: _hint_rank(c, "item_text")) if questions else None
        references = [c for c in rest if c != item_text_column and _hint_rank(c, "reference") < 99]
        reference_column = min(references, key=lambda c: _hint_rank(c, "reference")) if references else None
    rest = [c for c in rest if c not in (item_text_column, reference_column)]
    if not rest:
        raise InputError(f"{source}: no column is left for the responses; columns: {', '.join(map(str, frame.columns))}")
    text = max(rest, key=lambda c: (stats[c]["distinct"] > 1, stats[c]["length"]))
    counts = frame[label].value_counts(sort=True)
    label_counts = {_plain(k): int(v) for k, v in counts.items()}
    positive = [v for v in label_counts if label_key(v) in POSITIVE_WORDS]
    negative = [v for v in label_counts if label_key(v) in NEGATIVE_WORDS]
    unmapped = [v for v in label_counts if v not in positive and v not in negative]
    item_counts = {str(k): int(v) for k, v in frame[item_column].astype(str).value_counts().sort_index().items()} \
        if item_column else {}
    return Proposal(text, label, id_column, item_column, item_text_column, reference_column, label_counts,
                    positive, negative, unmapped, item_counts, [str(c) for c in frame.columns])


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _yaml(value) -> str:
    """A value as inline YAML (JSON is valid YAML and keeps strings quoted)."""
    return json.dumps(value, ensure_ascii=False)


def _counts(counts: dict, limit: int = 8) -> str:
    shown = ", ".join(f"{k} ({v})" for k, v in list(counts.items())[:limit])
    return shown + (f" and {len(counts) - limit} more" if len(counts) > limit else "")


# ------------------------------------------------------------------------------- sizing
#: Synthetic shares a proposal may judge a claim at (largest first); they read well and reach exactly.
NICE_SHARES = (0.8, 0.75, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05)
SIDE_SHARE_AT_MOST = 0.4  # variety and consistency: the default study's share (a low temperature pool stays small)


@dataclass(frozen=True)
class StudySize:
    """How big the experiments `init` proposes are: replicates and the synthetic responses a draw may use."""

    replicates: int
    size_cap: int  # synthetic responses the size experiment's largest draw may use
    side_cap: int  # the same for the variety and consistency experiments (a sixth of it or less: a filtered
    #                pool must still hold enough of each label when the filter removes most of one)
    replay: bool = True  # the size experiment's training-steps control

    def shares(self, n_train: int) -> tuple[float, float]:
        """(size share, variety/consistency share) for a human training set of ``n_train`` responses."""
        def largest(cap: int) -> float:
            fits = [s for s in NICE_SHARES if round(n_train * s / (1 - s)) <= cap]
            return fits[0] if fits else NICE_SHARES[-1]
        size = largest(self.size_cap)
        side = min(largest(self.side_cap), size, SIDE_SHARE_AT_MOST)
        return size, side


#: From the paper's scale down: `init` proposes the first the time budget allows.
SIZES = (StudySize(5, 384, 64), StudySize(5, 256, 48), StudySize(5, 160, 32), StudySize(5, 96, 16),
         StudySize(4, 64, 12), StudySize(3, 48, 8), StudySize(2, 32, 6, replay=False),
         StudySize(2, 24, 4, replay=False))
PAPER_SIZE = StudySize(10, 10_000, 10_000)  # shown in comments: the paper's 80% / 40%, ten replicates
#: Human training responses of each code below which `init` leaves the consistency experiment out: the
#: teacher-agreement filter grades synthetic responses with a classifier trained on them alone, and on 120
#: embedded responses (12 coded 1 per replicate) it rejected every synthetic response coded 1 in one
#: replicate, so the filtered arm had nothing to draw and the study stopped (measured; 200 responses, 21 coded 1, ran).
GRADER_MIN_PER_CODE = 20


def _plain_shares(size_share: float) -> list[float]:
    """The size experiment's curve: a quarter, half, three quarters of the judged share, and the share."""
    return sorted({round(size_share * k / 4, 4) for k in (1, 2, 3, 4)})


def experiments_and_claims(size_share: float, side_share: float, stable: float, variable: float,
                           replay: bool = True, consistency: bool = True) -> tuple[dict, dict]:
    """The three experiments of the paper's claims and the claims section, as plain mappings checked against
    the schema (``ExperimentParams``, ``ClaimsParams``): size (the curve to ``size_share`` at the variable
    temperature, with the replay control), variety (``stable`` against ``variable`` at ``side_share``) and,
    unless ``consistency`` is False, consistency (teacher agreement filtered against unfiltered at ``side_share``)."""
    from synthmix.params import ClaimsParams, ExperimentParams

    experiments = {
        "size": ExperimentParams(
            description=f"Synthetic share up to {size_share:.0%} at temperature {variable:g}: the incremental curve"
                        + (" and its replay control (the same number of added human responses)." if replay else
                           " (add 'replay' to protocols for the training-steps control)."),
            temperatures=[variable], filters=["none"], protocols=["incremental", "replay"] if replay else ["incremental"],
            synthetic_shares=_plain_shares(size_share), distill=False),
        "variety": ExperimentParams(
            description=f"Temperature {stable:g} against {variable:g}, compared at {side_share:.0%} synthetic.",
            temperatures=[stable, variable], filters=["none"], protocols=["incremental"],
            synthetic_shares=[side_share], distill=False),
        "consistency": ExperimentParams(
            description=f"Inconsistent synthetic responses filtered out (teacher agreement) or kept, at "
                        f"{side_share:.0%} synthetic, temperature {variable:g}.",
            temperatures=[variable], filters=["none", "teacher_agreement"], protocols=["incremental"],
            synthetic_shares=[side_share], distill=False),
    }
    if not consistency:
        del experiments["consistency"]
    claims = ClaimsParams(size_share=size_share, variety_share=side_share, consistency_share=side_share,
                          stable_temperature=stable, variable_from=variable)
    return ({name: e.model_dump() for name, e in experiments.items()}, claims.model_dump())


def render_section(name: str, values: dict, model, indent: str = "", skip: tuple = ()) -> list[str]:
    """YAML lines of one params section: every field of the pydantic ``model`` with its value from
    ``values`` (its default when absent) and its description as the comment, so the text follows the schema."""
    lines = [f"{indent}{name}:"]
    for key, info in model.model_fields.items():
        if key in skip:
            continue
        value = values.get(key, info.default)
        described = (info.description or ("one line: what it asks" if key == "description" else "")).replace("\n", " ")
        lines.append(f"{indent}  {key}: {_yaml(value)}" + (f"   # {described}" if described else "   #"))
    return lines


def params_text(proposal: Proposal, data_name: str, rubric_name: str, study: str, size: StudySize | None = None,
                n_train: int | None = None, sizing_note: str = "", max_length: int = 128,
                consistency: bool = True) -> str:
    """The params file: every key with a comment saying what it is and what was found; the experiments,
    claims and costs rendered from the schema, sized by ``size`` for ``n_train`` human training responses;
    without the consistency experiment (and its teacher-agreement filter) when ``consistency`` is False."""
    from synthmix.params import ClaimsParams, CostsParams, ExperimentParams

    size = size or SIZES[0]
    n_train = n_train if n_train is not None else max(1, round(sum(proposal.label_counts.values()) / 4))
    todo = [TODO_MARK]
    positive = proposal.positive_labels or todo
    negative = proposal.negative_labels or todo
    unmapped = (f"; values not mapped yet: {_counts({v: proposal.label_counts[v] for v in proposal.unmapped_labels})};"
                " put each in positive_labels or negative_labels (or remove those rows from the data).") \
        if proposal.unmapped_labels else ""
    item_note = f"proposed: {len(proposal.items)} items: {_counts(proposal.items, 5)}" if proposal.item_column \
        else "no column looked like an item (question) id; name it here if there is one"
    size_share, side_share = size.shares(n_train)
    stable, variable = ClaimsParams().stable_temperature, ClaimsParams().variable_from
    experiments, claims = experiments_and_claims(size_share, side_share, stable, variable, replay=size.replay,
                                                 consistency=consistency)
    margin_line = (
        "  pool_margin: 3.0                # shared pools hold 3x the largest draw: the teacher-agreement filter "
        "may remove most of one code (of one item), and the filtered arm must still draw its share; two "
        "replicates' draws overlap by about 1/3" if consistency else
        "  pool_margin: 1.5                # shared pools hold 1.5x the largest draw (no filter thins them here); "
        "two replicates' draws overlap by about 2/3")
    filter_line = (
        "  methods: [none, teacher_agreement]   # none, and a classifier trained on the human data only "
        "(llm_judge needs a capable LLM)" if consistency else
        f"  methods: [none]                 # too few human training responses of a code (fewer than "
        f"{GRADER_MIN_PER_CODE}) to train the teacher-agreement grader on; claim 3 is not tested (see the note above)")
    paper_size, paper_side = PAPER_SIZE.shares(n_train)
    lines = [
        f"# Study params written by `synthmix init` from {data_name}.",
        "# Every value below was proposed from the data: check each one. Write the parts marked",
        f"# '{TODO_MARK}' here and in {rubric_name}; `synthmix validate` fails until they are written.",
        f"# Columns found: {', '.join(proposal.columns)}",
        f"# Sized for this data ({n_train} human training responses per replicate): {sizing_note or 'see below'}",
        f"study: {_yaml(study)}                    # name; results go to results/<study>/",
        f"description: {_yaml('Synthetic responses for ' + data_name)}   # one line: what this study asks",
        "dataset:",
        f"  source: {_yaml(data_name)}              # the data file, relative to this params file",
        f"  rubric: {_yaml(rubric_name)}            # the task, criteria and examples (template written beside it)",
        f"  text_column: {_yaml(proposal.text_column)}         # proposed: the column with the longest varied text",
        f"  label_column: {_yaml(proposal.label_column)}       # proposed: values found: {_counts(proposal.label_counts)}",
        f"  id_column: {_yaml(proposal.id_column)}             # optional: a unique id per response (null: row numbers)",
        f"  item_column: {_yaml(proposal.item_column)}         # optional: {item_note}",
        f"  item_text_column: {_yaml(proposal.item_text_column)}   # optional: each item's question text "
        "(else the rubric's question, or its items entries)",
        f"  reference_column: {_yaml(proposal.reference_column)}   # optional: reference answers per item "
        "(' || ' between several); they become the item's examples coded 1",
        f"  positive_labels: {_yaml(positive)}   # raw values that count as 1{unmapped}",
        f"  negative_labels: {_yaml(negative)}   # raw values that count as 0",
        "  split_seed: 13                  # seed of the split; replicate r splits with [split_seed, r]",
        "  train_fraction: 0.3333333333    # share of the responses that trains (the paper: one third); the rest tests",
        "  validation_fraction: 0.25       # share of the training part held out for early stopping",
        "  dedupe: false                   # true: one copy per normalised response with its majority code "
        "(conflicts reported); identical responses always share a split either way",
        "generation:",
        "  backend: managed-llama-cpp      # managed-llama-cpp (offline, local) or openai (OpenAI or any "
        "OpenAI-compatible server)",
        "  model: smollm2-135m             # managed: smollm2-135m or a .gguf path; openai: e.g. gpt-4o",
        "  base_url: null                  # OpenAI-compatible server URL (vLLM, llama.cpp); null for OpenAI itself",
        f"  temperatures: {_yaml([stable, variable])}        # one synthetic pool per temperature (claim 2 compares "
        f"{stable:g} with {variable:g}; the paper ran 0.1 to 0.9)",
        "  pool_size_per_label: auto       # derived from the shares the experiments ask for and the human training size",
        margin_line,
        "  label_balance: match_human      # synthetic responses drawn at the human positive rate, or balanced",
        "  responses_per_call: 10          # 'draft 10 responses' per call (the paper's)",
        "  max_tokens: 400                 # per call; ten short responses fit",
        "  max_calls_per_label: 400        # per label (and item): a low temperature repeats itself, so allow many calls",
        "filter:",
        filter_line,
        "teacher:",
        "  model: minilm-l6                # classifier: minilm-l6 offline, or a Hugging Face id (bert-base-uncased)",
        f"  max_length: {max_length}                 # tokens per response (sized to the longest responses in the data)",
        "  increment: 25                   # the incremental curve adds 25 synthetic responses per step (the paper's)",
        "student:",
        "  epochs: 3                       # distillation epochs (no experiment below distils; set distill: true to)",
        f"replicates: {size.replicates}                     # each has its own split, training seed and synthetic draw; "
        f"the paper-sized study: {PAPER_SIZE.replicates} or more",
        "compute:",
        "  device: auto                    # auto: cuda, then mps, then cpu",
        "  threads: 1                      # CPU threads per step (fixed, so results do not depend on --workers)",
        "# The paper's three claims, each judged on its own experiment. Paper-sized alternative: size shares "
        f"{_plain_shares(paper_size)} judged at {paper_size:g}, variety and consistency at {paper_side:g}, "
        f"{PAPER_SIZE.replicates} replicates, temperatures 0.1-0.9 (see params/paper.yaml).",
        "experiments:",
    ]
    for name, values in experiments.items():
        lines += render_section(name, values, ExperimentParams, indent="  ")
    lines += render_section("claims", claims, ClaimsParams)
    lines += ["# What the study costs and when `synthmix run` asks first (estimates: `synthmix validate`)."]
    lines += render_section("costs", CostsParams().model_dump(), CostsParams)
    return "\n".join(lines) + "\n"


def rubric_text(proposal: Proposal, name: str) -> str:
    """The rubric template: the parts only a person can write are marked, each key explained."""
    todo = _yaml(TODO_MARK)
    if proposal.item_text_column:
        question = (f"# question: omitted: each item's question comes from the data column "
                    f"'{proposal.item_text_column}'")
    else:
        question = f"question: {todo}   # the question the responses answer, as the respondents saw it"
    lines = [
        f"# Rubric template written by `synthmix init` for {name}. It feeds the generation prompt and the",
        "# LLM judge. Replace every TODO marker; `synthmix validate` names each one that is left.",
        f"name: {_yaml(name)}   # short name",
        f"title: {_yaml(name)}  # a readable title",
        f"scenario: {todo}   # the situation the respondents were in, in a few sentences",
        question,
        f"persona: {todo}    # who writes the responses (system prompt of the generator), e.g. 'You are a student ...'",
        f"positive_criteria: {todo}   # what earns a 1",
        f"negative_criteria: {todo}   # what earns a 0",
        "examples:   # example responses in the prompt; write new ones rather than copying responses from the data,",
        "            # which could land in the test set",
        "  positive:",
        f"    - {todo}",
        "  negative:",
        f"    - {todo}",
    ]
    if proposal.items and not proposal.item_text_column:
        lines += ["items:   # per item: its own question (and optionally scenario, criteria, examples); "
                  "what is left out falls back to the entries above"]
        for item in proposal.items:
            lines += [f"  {_yaml(item)}:", f"    question: {todo}"]
    elif proposal.items:
        lines += ["# items:   # optional per-item entries (scenario, criteria, examples) that override the defaults,",
                  f"#   {_yaml(next(iter(proposal.items)))}:",
                  "#     negative_criteria: ..."]
    return "\n".join(lines) + "\n"


def init_study(data_path: str | Path, force: bool = False, estimate_minutes=None,
               budget_minutes: float = 60.0) -> tuple[Path, Path, Proposal]:
    """Inspect ``data_path`` and write ``<name>.params.yaml`` and ``<name>.rubric.yaml`` beside it.

    The experiments are sized to the data: with ``estimate_minutes`` (a function of a params path
    returning the estimated minutes of a run, or None when it cannot tell), the largest of ``SIZES``
    whose estimate fits ``budget_minutes`` is written. Returns (params path, rubric path, proposal);
    ``proposal.sizing`` says what was chosen. Refuses to overwrite existing files unless ``force``.
    """
    data_path = Path(data_path)
    if data_path.suffix.lower() not in FORMATS:
        raise InputError(f"{data_path}: unsupported format '{data_path.suffix}'; expected one of {', '.join(FORMATS)}")
    frame = _read_table(data_path)
    proposal = inspect_data(frame, str(data_path))
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", data_path.stem) or "study"
    params_path = data_path.with_name(f"{stem}.params.yaml")
    rubric_path = data_path.with_name(f"{stem}.rubric.yaml")
    existing = [str(p) for p in (params_path, rubric_path) if p.exists()]
    if existing and not force:
        raise InputError(f"{', '.join(existing)}: already exists; pass --force to overwrite")
    rubric_path.write_text(rubric_text(proposal, stem))
    n_train = _train_size(proposal)
    per_code = _train_per_code(proposal)
    consistency = min(per_code.values()) >= GRADER_MIN_PER_CODE
    max_length = _max_length(frame[proposal.text_column])
    chosen, note = SIZES[-1], "the smallest proposal (no estimate)"
    for size in SIZES:
        params_path.write_text(params_text(proposal, data_path.name, rubric_path.name, stem, size, n_train,
                                           max_length=max_length, consistency=consistency))
        minutes = estimate_minutes(params_path) if estimate_minutes else None
        if minutes is None:
            chosen, note = size, "no estimate was possible yet (map every label value, then `synthmix validate`)"
            break
        chosen, note = size, f"about {minutes:.0f} min (estimate; budget {budget_minutes:g} min)"
        if minutes <= budget_minutes:
            break
    else:
        note += ": the smallest proposal is still over the budget; lower replicates or the shares"
    side = "variety and consistency" if consistency else "variety"
    proposal.sizing = (f"{chosen.replicates} replicates, size judged at {chosen.shares(n_train)[0]:g}, {side} "
                       f"at {chosen.shares(n_train)[1]:g}; {note}")
    if not consistency:
        proposal.sizing += (f"; the consistency experiment (claim 3) is left out: a replicate trains on about "
                            f"{per_code[1]} human responses coded 1 and {per_code[0]} coded 0, fewer than the "
                            f"{GRADER_MIN_PER_CODE} of each its teacher-agreement grader needs")
    params_path.write_text(params_text(proposal, data_path.name, rubric_path.name, stem, chosen, n_train,
                                       sizing_note=proposal.sizing, max_length=max_length, consistency=consistency))
    return params_path, rubric_path, proposal


def _fitted(count: int) -> int:
    """Of ``count`` responses, those a replicate trains on under the proposed split: a third, less a quarter of
    it for validation (``train_fraction`` and ``validation_fraction`` as ``params_text`` writes them)."""
    return round(count / 3 * 0.75)


def _train_size(proposal: Proposal) -> int:
    """Human training responses per replicate under the proposed split."""
    return max(1, _fitted(sum(v for k, v in proposal.label_counts.items() if k not in proposal.unmapped_labels)))


def _train_per_code(proposal: Proposal) -> dict[int, int]:
    """Human training responses per replicate of each code (1, 0) under the proposed split; a code whose raw
    values are not mapped yet counts as enough (the mapping is the researcher's to write first)."""
    if not (proposal.positive_labels and proposal.negative_labels):
        return {1: GRADER_MIN_PER_CODE, 0: GRADER_MIN_PER_CODE}
    return {code: _fitted(sum(proposal.label_counts.get(v, 0) for v in values))
            for code, values in ((1, proposal.positive_labels), (0, proposal.negative_labels))}


def _max_length(texts: pd.Series) -> int:
    """A teacher max_length that holds nearly every response: the 99th percentile of its words, as tokens."""
    words = texts.map(lambda v: len(str(v).split()))
    tokens = float(words.quantile(0.99)) * 1.4 + 8 if len(words) else 128
    return int(min(128, max(32, 2 ** math.ceil(math.log2(max(tokens, 1))))))


def todo_problems(path: str | Path) -> list[str]:
    """One problem per value of a YAML file that still holds the ``TODO (you write this)`` marker."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return []  # reported by the params/rubric loaders themselves
    return _todo_markers(path, data)
