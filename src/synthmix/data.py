"""Human-coded data: load, map columns and labels, validate, and split.

Every dataset becomes a ``datasets.Dataset`` with the columns ``id`` (str), ``text`` (str),
``label`` (0/1), ``item`` (str, empty when there is no item column) and ``row`` (the 1-based
data row in the source file, so that any message or prediction points back at the source).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.errors import InputError
from synthmix.params import DatasetParams, StudyParams, resolve_relative

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}
SPLITS = ("train", "validation", "test")


def embedded_dir(name: str) -> Path:
    """The folder of a dataset shipped inside the synthmix package (``embedded:NAME``)."""
    folder = Path(str(resources.files("synthmix") / "default_data" / name))
    if not folder.is_dir():
        shipped = sorted(p.name for p in Path(str(resources.files("synthmix") / "default_data")).iterdir() if p.is_dir())
        raise InputError(f"dataset.source: no embedded dataset '{name}'; shipped: {', '.join(shipped)}")
    return folder


def dataset_path(params: DatasetParams, params_path: str | Path | None) -> Path | str:
    """The file a dataset is read from (or the ``hf:`` name, unchanged)."""
    source = params.source
    if source.startswith("embedded:"):
        return embedded_dir(source.split(":", 1)[1]) / "responses.csv"
    if source.startswith("hf:"):
        return source
    return resolve_relative(source, params_path or ".")


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: dataset file not found (dataset.source)")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path}: unsupported format '{path.suffix}'; expected one of {', '.join(FORMATS)} (dataset.source)"
        )
    try:
        if kind in ("csv", "tsv"):
            return pd.read_csv(path, sep="," if kind == "csv" else "\t", dtype=str, keep_default_na=False)
        if kind == "jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        return pd.read_parquet(path)
    except Exception as exc:  # the parser's own message, tied to the file
        raise InputError(f"{path}: could not be read as {kind}: {exc}") from None


def _read_hf(name: str, split: str) -> pd.DataFrame:
    import datasets

    try:
        return datasets.load_dataset(name, split=split).to_pandas()
    except Exception as exc:
        raise InputError(
            f"dataset.source: Hugging Face dataset '{name}' (split '{split}') could not be loaded "
            f"(needs a hub connection or a local cache): {exc}"
        ) from None


def label_key(value) -> str:
    """A comparable form of a raw label value: 1, 1.0, '1' and ' 1 ' match; 'Correct' matches 'correct'."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip().lower()
    try:
        number = float(text)
        return str(int(number)) if number.is_integer() else text
    except ValueError:
        return text


def _rows(mask: pd.Series, limit: int = 5) -> str:
    rows = [str(i + 1) for i in np.flatnonzero(mask.to_numpy())]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(rows[:limit]) + more


@dataclass
class LoadedData:
    """A validated dataset with any non-fatal findings (duplicates) worth reporting."""

    dataset: "datasets.Dataset"  # noqa: F821
    source: str
    warnings: list[str] = field(default_factory=list)


def normalise_text(text: str) -> str:
    """Lower-case, punctuation-free, single-spaced form used to find near-identical responses."""
    kept = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.lower())
    return " ".join(kept.split())


def load_human_data(params: DatasetParams, params_path: str | Path | None = None) -> LoadedData:
    """Read the human-coded data named in ``params``, validate it, and map labels to 1/0.

    Raises ``InputError`` listing every problem (file, column, row, what was expected).
    """
    import datasets

    where = dataset_path(params, params_path)
    frame = _read_hf(where[3:], params.hf_split) if isinstance(where, str) else _read_table(where)
    src = str(where)
    problems: list[str] = []

    columns = {"text_column": params.text_column, "label_column": params.label_column}
    if params.id_column:
        columns["id_column"] = params.id_column
    if params.item_column:
        columns["item_column"] = params.item_column
    missing = [f"'{col}' (dataset.{key})" for key, col in columns.items() if col not in frame.columns]
    if missing:
        raise InputError(
            f"{src}: column {', '.join(missing)} not found; columns are: {', '.join(map(str, frame.columns))}"
        )
    if frame.empty:
        raise InputError(f"{src}: no data rows; expected human-coded responses")

    texts = frame[params.text_column]
    not_text = ~texts.map(lambda v: isinstance(v, str))
    if not_text.any():
        problems.append(f"{src}: column '{params.text_column}' is not text in rows {_rows(not_text)}; expected a response string")
    empty = texts.map(lambda v: isinstance(v, str) and not v.strip())
    if empty.any():
        problems.append(f"{src}: column '{params.text_column}' is empty in rows {_rows(empty)}; expected a non-empty response")

    positive = {label_key(v) for v in params.positive_labels}
    negative = {label_key(v) for v in params.negative_labels}
    keys = frame[params.label_column].map(label_key)
    outside = ~keys.isin(positive | negative)
    if outside.any():
        values = sorted({str(v) for v in frame[params.label_column][outside]})
        problems.append(
            f"{src}: column '{params.label_column}' has values {{{', '.join(values)}}} in rows {_rows(outside)}; "
            f"expected one of positive_labels {list(params.positive_labels)} or negative_labels {list(params.negative_labels)}"
        )
    labels = keys.isin(positive).astype(int)
    for code, name in ((1, "positive_labels"), (0, "negative_labels")):
        count = int(((labels == code) & ~outside).sum())
        if count == 0:
            problems.append(
                f"{src}: no responses coded {code} ({name} {list(getattr(params, name))}); both classes are needed"
            )
        elif count < 3:
            problems.append(f"{src}: only {count} responses coded {code}; at least 3 are needed to split")

    if params.id_column:
        ids = frame[params.id_column].astype(str)
        repeated = ids.duplicated(keep=False)
        if repeated.any():
            problems.append(f"{src}: column '{params.id_column}' repeats ids in rows {_rows(repeated)}; expected unique ids")
    if problems:
        raise InputError(problems)

    warnings = []
    normal = texts.map(normalise_text)
    counts = Counter(normal)
    repeated_texts = {t: c for t, c in counts.items() if c > 1}
    if repeated_texts:
        rows = int(sum(repeated_texts.values()))
        worst = sorted(repeated_texts.items(), key=lambda kv: -kv[1])[:3]
        examples = "; ".join(f"'{t[:40]}' x{c}" for t, c in worst)
        warnings.append(
            f"{src}: {len(repeated_texts)} responses appear more than once ({rows} rows in all), e.g. {examples}"
        )

    table = pd.DataFrame(
        {
            "id": frame[params.id_column].astype(str) if params.id_column else [f"row{i + 1}" for i in range(len(frame))],
            "text": texts.str.strip(),
            "label": labels.astype("int64"),
            "item": frame[params.item_column].astype(str) if params.item_column else "",
            "row": np.arange(1, len(frame) + 1, dtype="int64"),
        }
    )
    return LoadedData(datasets.Dataset.from_pandas(table, preserve_index=False), src, warnings)


def split_indices(labels, split_seed: int, train_fraction: float, validation_fraction: float) -> dict[str, np.ndarray]:
    """Deterministic stratified split: positions of each class shuffled by ``split_seed``.

    ``train_fraction`` of each class goes to training; ``validation_fraction`` of that part is
    held out as validation (for early stopping); the rest is the test set, used for no decision.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(split_seed)
    parts: dict[str, list[int]] = {name: [] for name in SPLITS}
    for code in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == code))
        n_train_part = min(max(2, round(len(members) * train_fraction)), len(members) - 1)
        n_validation = min(max(1, round(n_train_part * validation_fraction)), n_train_part - 1)
        parts["validation"] += members[:n_validation].tolist()
        parts["train"] += members[n_validation:n_train_part].tolist()
        parts["test"] += members[n_train_part:].tolist()
    return {name: np.sort(np.array(rows, dtype=int)) for name, rows in parts.items()}


def split_human_data(dataset, params: DatasetParams):
    """Split a loaded dataset into a ``DatasetDict`` with train, validation and test."""
    import datasets

    indices = split_indices(dataset["label"], params.split_seed, params.train_fraction, params.validation_fraction)
    return datasets.DatasetDict({name: dataset.select(indices[name]) for name in SPLITS})


def load_study_data(params: StudyParams, params_path: str | Path | None = None):
    """The study's human-coded data, validated and split (train / validation / test)."""
    return split_human_data(load_human_data(params.dataset, params_path).dataset, params.dataset)
