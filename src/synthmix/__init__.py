"""SynthMix: does LLM-generated training data help grade open responses?

A reproducible, notebook-driven study. The logic lives in this package; the numbered
notebooks in ``notebooks/`` call it, and ``synthmix run PARAMS`` executes them per condition.
"""

__version__ = "0.1.0"
