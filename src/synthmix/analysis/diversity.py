"""Lexical diversity of a set of responses: distinct-n and mean pairwise Jaccard similarity.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from synthmix.data.loading import normalise_text


def distinct_n(texts: list[str], n: int) -> float:
    """Share of n-grams that are distinct across ``texts`` (1.0 = no n-gram repeats)."""
    grams = [tuple(words[i:i + n]) for words in (normalise_text(t).split() for t in texts)
             for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def mean_pairwise_jaccard(texts: list[str], max_pairs: int = 20000, seed: int = 0) -> float:
    """Mean Jaccard similarity of word sets over pairs of texts (sampled when there are many)."""
    sets = [set(normalise_text(t).split()) for t in texts]
    pairs = list(combinations(range(len(sets)), 2))
    if not pairs:
        return float("nan")
    if len(pairs) > max_pairs:
        picks = np.random.default_rng(seed).choice(len(pairs), size=max_pairs, replace=False)
        pairs = [pairs[i] for i in picks]
    return float(np.mean([len(sets[a] & sets[b]) / max(1, len(sets[a] | sets[b])) for a, b in pairs]))


def diversity_table(frame: pd.DataFrame, by: list[str] | str = "label", text: str = "text") -> pd.DataFrame:
    """Per group: count, mean words, distinct-1, distinct-2 and mean pairwise Jaccard similarity."""
    rows = []
    for key, group in frame.groupby(by):
        texts = group[text].tolist()
        rows.append({**dict(zip([by] if isinstance(by, str) else by, key if isinstance(key, tuple) else (key,))),
                     "responses": len(texts),
                     "mean_words": round(float(np.mean([len(t.split()) for t in texts])), 1),
                     "distinct_1": round(distinct_n(texts, 1), 3),
                     "distinct_2": round(distinct_n(texts, 2), 3),
                     "mean_pairwise_jaccard": round(mean_pairwise_jaccard(texts), 3)})
    return pd.DataFrame(rows)
