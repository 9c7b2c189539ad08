"""The names of the results tree: step notebooks, their declared outputs and the completion marker.

Every layer that reads or writes step folders (the runner, the analysis, the report) takes
these names from here, so none of them has to import another to find a file.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Step kind → its numbered notebook (the order is the study's).
NOTEBOOKS = {
    "generate": "01_generate.ipynb",
    "filter": "02_filter.ipynb",
    "train_teacher": "03_train_teacher.ipynb",
    "distill": "04_distill.ipynb",
    "analyze": "05_analyze.ipynb",
}

#: Step kind → the files its notebook must write (checksummed in the marker).
OUTPUTS = {
    "generate": ("pool.parquet", "calls.parquet", "generation_report.json"),
    "filter": ("filtered_pool.parquet", "grades.parquet", "filter_report.json"),
    "train_teacher": ("metrics.parquet", "test_predictions.parquet", "transfer_logits.parquet", "teacher_report.json"),
    "distill": ("student_metrics.json", "student_predictions.parquet"),
    "analyze": ("summary.csv",),
}

#: Written last into a step's folder: the step is complete (see ``synthmix.run.markers``).
MARKER = "_complete.json"


def notebooks_dir() -> Path:
    """The folder holding the numbered notebooks (the checkout's ``notebooks/``, or ``$SYNTHMIX_NOTEBOOKS``)."""
    if os.environ.get("SYNTHMIX_NOTEBOOKS"):
        return Path(os.environ["SYNTHMIX_NOTEBOOKS"])
    return Path(__file__).resolve().parents[3] / "notebooks"
