"""Human-coded data: load, map columns and labels, validate, and split.

Every dataset becomes a ``datasets.Dataset`` with the columns ``id`` (str), ``text`` (str),
``label`` (0/1), ``item`` (str, empty when there is no item column) and ``row`` (the 1-based
data row in the source file, so that any message or prediction points back at the source).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.data.semeval import REFERENCE_SEPARATOR, read_semeval
from synthmix.errors import InputError
from synthmix.params import DatasetParams, resolve_relative

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}
SPLITS = ("train", "validation", "test")


def embedded_dir(name: str) -> Path:
    """The folder of a dataset shipped inside the synthmix package (``embedded:NAME``)."""
    folder = Path(str(resources.files("synthmix.data") / "default_data" / name))
    if not folder.is_dir():
        shipped = sorted(p.name for p in Path(str(resources.files("synthmix.data") / "default_data")).iterdir() if p.is_dir())
        raise InputError(f"dataset.source: no embedded dataset '{name}'; shipped: {', '.join(shipped)}")
    return folder


def dataset_path(params: DatasetParams, params_path: str | Path | None) -> Path | str:
    """The file a dataset is read from (or the ``hf:`` name, unchanged)."""
    source = params.source
    if source.startswith("embedded:"):
        return embedded_dir(source.split(":", 1)[1]) / "responses.csv"
    if source.startswith("hf:"):
        return source
    if source.startswith("semeval:"):
        return resolve_relative(source.split(":", 1)[1], params_path or ".")
    return resolve_relative(source, params_path or ".")


def dataset_fingerprint(params: DatasetParams, params_path: str | Path | None) -> str:
    """A hash of the data a study reads (every XML file of a ``semeval:`` folder), or the ``hf:`` name."""
    from synthmix.core import io

    where = dataset_path(params, params_path)
    if isinstance(where, Path) and where.is_dir():
        return io.stable_hash({p.name: io.file_hash(p) for p in sorted(where.glob("*.xml"))})
    return io.file_hash(where) if isinstance(where, Path) and where.is_file() else str(where)


def _read_table(path: Path) -> pd.DataFrame:
    """Read a CSV, TSV, JSONL or parquet file; errors name the file and the line (never a byte offset)."""
    if not path.is_file():
        raise InputError(f"{path}: dataset file not found (dataset.source)")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path}: unsupported format '{path.suffix}'; expected one of {', '.join(FORMATS)} (dataset.source)"
        )
    if kind == "parquet":
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # the parser's own message, tied to the file
            raise InputError(f"{path}: could not be read as parquet: {exc}") from None
    text = _utf8_text(path)
    if kind == "jsonl":
        return _read_jsonl(path, text)
    import csv
    import io as text_io

    separator = "," if kind == "csv" else "\t"
    header = next(csv.reader(text_io.StringIO(text), delimiter=separator), [])
    repeated = [name for name, count in Counter(header).items() if count > 1]
    if repeated:
        raise InputError(f"{path}: line 1: column " + ", ".join(f"'{name}' appears {header.count(name)} times"
                                                               for name in repeated)
                         + " in the header; expected unique column names")
    try:
        return pd.read_csv(text_io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas names the line of a malformed row
        raise InputError(f"{path}: could not be read as {kind}: {exc}") from None


def _utf8_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(f"{path}: line {line}, column {column}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); "
                         "expected UTF-8 text (save the file as UTF-8)") from None


def _read_jsonl(path: Path, text: str) -> pd.DataFrame:
    import json

    def unique_keys(pairs):
        keys = [key for key, _ in pairs]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"key '{repeated[0]}' appears more than once in the object")
        return dict(pairs)

    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=unique_keys)
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise InputError(f"{path}: line {number}: not valid JSON ({reason}); expected one JSON object per line") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}: line {number}: expected a JSON object with the columns as keys, "
                             f"got {type(record).__name__}")
        records.append(record)
    return pd.DataFrame.from_records(records)


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
    items: dict[str, dict] = field(default_factory=dict)  # item -> {"question": str, "references": [str]}
    conflicts: list[str] = field(default_factory=list)  # dedupe: texts coded both 1 and 0


_NOT_WORD = re.compile(r"[^\w\s]|_")  # \w is str.isalnum() plus '_', \s is str.isspace(): so this is neither


def normalise_text(text: str) -> str:
    """Lower-case, punctuation-free, single-spaced form used to find near-identical responses
    (every character that is neither alphanumeric nor a space becomes a space)."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


_LOADED: dict = {}  # (settings, file, size, mtime) -> LoadedData: validate, design and plan read the data once


def _stamp(where) -> tuple | None:
    """What identifies a data file's current content cheaply (path, size, mtime; every file of a folder)."""
    if not isinstance(where, Path):
        return None
    try:
        files = sorted(where.glob("*.xml")) if where.is_dir() else [where]
        return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    except OSError:
        return None


_NORMALISED: dict = {}  # dataset fingerprint -> its normalised texts, so the split of every replicate reuses them


def normalised_texts(dataset, texts: list[str]) -> list[str]:
    """``normalise_text`` of every text of ``dataset`` (computed once per dataset, by its fingerprint)."""
    fingerprint = getattr(dataset, "_fingerprint", None)
    if fingerprint is not None and fingerprint in _NORMALISED:
        return _NORMALISED[fingerprint]
    keys = [normalise_text(t) for t in texts]
    if fingerprint is not None:
        _NORMALISED.clear()
        _NORMALISED[fingerprint] = keys
    return keys


def load_human_data(params: DatasetParams, params_path: str | Path | None = None) -> LoadedData:
    """Read the human-coded data named in ``params``, validate it, and map labels to 1/0.

    Raises ``InputError`` listing every problem (file, column, row, what was expected). The last
    file read is remembered (by its size and modification time), so reading it again is free.
    """
    where = dataset_path(params, params_path)
    stamp = _stamp(where)
    key = (params.model_dump_json(), stamp)
    if stamp is not None and key in _LOADED:
        return _LOADED[key]
    loaded = _load_human_data(params, where)
    if stamp is not None:
        _LOADED.clear()
        _LOADED[key] = loaded
    return loaded


def _load_human_data(params: DatasetParams, where) -> LoadedData:
    import datasets

    if isinstance(where, str):
        frame = _read_hf(where[3:], params.hf_split)
    elif params.source.startswith("semeval:"):
        frame = read_semeval(where)
    else:
        frame = _read_table(where)
    src = str(where)
    problems: list[str] = []

    columns = {"text_column": params.text_column, "label_column": params.label_column}
    for key in ("id_column", "item_column", "item_text_column", "reference_column"):
        if getattr(params, key):
            columns[key] = getattr(params, key)
    if (params.item_text_column or params.reference_column) and not params.item_column:
        raise InputError(f"{src}: dataset.item_text_column and dataset.reference_column need dataset.item_column "
                         "(the column naming each response's item)")
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
        values = sorted({str(v) if str(v).strip() else "(empty cell)" for v in frame[params.label_column][outside]})
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
    items = _item_table(frame, params, src, problems)
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
    conflicts: list[str] = []
    if params.dedupe:
        before = len(table)
        table, conflicts = dedupe_responses(table, src)
        warnings.append(f"{src}: dedupe kept {len(table)} of {before} responses (one per normalised text); "
                        f"{len(conflicts)} texts had conflicting codes")
    dataset = datasets.Dataset.from_pandas(table, preserve_index=False)
    if not params.dedupe:  # the split of every replicate groups by these: computed once, here
        _NORMALISED.clear()
        _NORMALISED[dataset._fingerprint] = normal.tolist()
    return LoadedData(dataset, src, warnings, items, conflicts)


def _item_table(frame: pd.DataFrame, params: DatasetParams, src: str, problems: list[str]) -> dict[str, dict]:
    """Per item: its question text and reference answers from the data's columns (empty without them)."""
    if not params.item_column or not (params.item_text_column or params.reference_column):
        return {}
    items: dict[str, dict] = {}
    for item, rows in frame.groupby(frame[params.item_column].astype(str), sort=True):
        entry: dict = {"question": None, "references": []}
        if params.item_text_column:
            texts = sorted({str(v).strip() for v in rows[params.item_text_column] if str(v).strip()})
            if len(texts) != 1:
                what = "is empty" if not texts else f"has {len(texts)} different texts"
                problems.append(f"{src}: item '{item}': column '{params.item_text_column}' (dataset.item_text_column) "
                                f"{what} in rows {_rows(frame[params.item_column].astype(str) == item)}; "
                                "expected one question text per item")
            entry["question"] = texts[0] if texts else None
        if params.reference_column:
            seen: list[str] = []
            for value in rows[params.reference_column]:
                if value is None or (isinstance(value, float) and np.isnan(value)):
                    continue
                for piece in str(value).split(REFERENCE_SEPARATOR.strip()):
                    if piece.strip() and piece.strip() not in seen:
                        seen.append(piece.strip())
            entry["references"] = seen
        items[item] = entry
    return items


def _majority(labels) -> int:
    """The majority of 0/1 labels (a tie counts as 1, so a disputed response is not hidden as 0)."""
    labels = list(labels)
    return int(2 * sum(labels) >= len(labels))


def dedupe_responses(table: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    """One row per normalised text (the first, with the majority label); lines naming each conflict.

    A conflict is one text coded both 1 and 0; its kept label is the majority (a tie counts as 1).
    """
    keys = table["text"].map(normalise_text)
    notes, keep = [], []
    for key, rows in table.groupby(keys, sort=False):
        labels = rows["label"].tolist()
        first = rows.index[0]
        keep.append(first)
        if len(set(labels)) > 1:
            majority = _majority(labels)
            notes.append(f"{source}: '{rows['text'].iloc[0][:60]}' is coded 1 {sum(labels)} times and 0 "
                         f"{len(labels) - sum(labels)} times (rows {', '.join(map(str, rows['row'][:5]))}); "
                         f"kept once, coded {majority}")
            table.loc[first, "label"] = majority
    deduped = table.loc[sorted(keep)].reset_index(drop=True)
    return deduped, notes
