"""The human-coded data and what the study draws from it.

``loading`` reads and validates a data set (CSV/TSV/JSONL/parquet, ``semeval:``, ``hf:``),
``splits`` splits it per replicate, ``rubric`` reads the task and its items, ``sampling`` draws
exact shares, ``design`` expands the experiments into what every pool must supply, and
``scaffold`` writes a params file and rubric for a new data set (``synthmix init``).
"""
