"""SemEval-2013 Task 7 data (Beetle, SciEntsBank) read straight from its XML layout.

One XML file per question: ``<question id=…><questionText/><referenceAnswers>…</referenceAnswers>
<studentAnswers><studentAnswer id=… accuracy=…>text</studentAnswer>…</studentAnswers></question>``.
``dataset.source: semeval:FOLDER`` (FOLDER holds the XML files, e.g. ``training/2way/beetle``)
reads it as a table with the columns below, so a params file maps them like any CSV:

    response_id  the studentAnswer id           item        the question id
    question     the question text              reference   the reference answers, joined by ' || '
    response     the student's answer           label       the annotators' code (correct/incorrect/…)

Reading in place (rather than converting to a CSV first) keeps one copy of the data, so the
study always uses what is in the folder and no converted file can go stale or be committed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pandas as pd

from synthmix.errors import InputError

#: Several reference answers of one item in one cell (``dataset.reference_column``).
REFERENCE_SEPARATOR = " || "
COLUMNS = ("response_id", "item", "question", "reference", "response", "label")

#: The dataset keys that map the table's columns (paste into params under ``dataset:``).
DATASET_KEYS = {"text_column": "response", "label_column": "label", "id_column": "response_id",
                "item_column": "item", "item_text_column": "question", "reference_column": "reference"}


def _xml_folders(folder: Path) -> list[str]:
    return sorted(str(p.parent.relative_to(folder)) for p in folder.rglob("*.xml") if p.parent != folder)


def read_semeval(folder: str | Path) -> pd.DataFrame:
    """Every student answer of the question files in ``folder``, one row each (columns: ``COLUMNS``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: SemEval folder not found (dataset.source semeval:FOLDER)")
    files = sorted(folder.glob("*.xml"))
    if not files:
        inside = sorted(set(_xml_folders(folder)))
        hint = f"; folders below it that hold XML files: {', '.join(inside)}" if inside else ""
        raise InputError(f"{folder}: no SemEval question files (*.xml) in this folder{hint}")
    rows = []
    for path in files:
        try:
            question = ElementTree.parse(path).getroot()
        except ElementTree.ParseError as exc:
            raise InputError(f"{path}: not valid XML: {exc}") from None
        item = question.get("id")
        text = question.findtext("questionText")
        if question.tag != "question" or not item or text is None:
            raise InputError(f"{path}: expected a <question id=…> element with a <questionText>")
        references = [(r.text or "").strip() for r in question.iter("referenceAnswer") if (r.text or "").strip()]
        for answer in question.iter("studentAnswer"):
            rows.append({"response_id": answer.get("id"), "item": item, "question": " ".join(text.split()),
                         "reference": REFERENCE_SEPARATOR.join(references),
                         "response": (answer.text or "").strip(), "label": answer.get("accuracy")})
    return pd.DataFrame(rows, columns=list(COLUMNS))
