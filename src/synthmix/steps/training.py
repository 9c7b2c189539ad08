"""The training loop shared by teacher, grader and student: seeds, batches, fine-tuning, prediction.

Training and prediction follow the model: its device (``models.model_device``) and its precision
(``devices.use_precision``; fp32 unless set). Texts are tokenised once per step by a
``TokenCache`` handed to every call (one is made per call when none is given).
"""

from __future__ import annotations

import random

import numpy as np

from synthmix.core.progress import report_progress
from synthmix.params import TeacherParams
from synthmix.steps import metrics as metrics_module
from synthmix.steps.devices import autocast, grad_scaler, inference_batch_size, model_precision, pin_memory
from synthmix.steps.models import model_device


# ------------------------------------------------------------------------------- seeding
def set_seed(seed: int) -> None:
    """Seed python ``random``, numpy and torch, and ask torch for deterministic kernels.

    Dropout draws from torch's global RNG, so this is called at the start of every training
    loop; the order of examples comes from explicit generators seeded from the same seed.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
    except Exception:  # an old or unusual build: CPU kernels used here are deterministic anyway
        pass


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(int(seed))


def make_optimizer(model, learning_rate: float):
    """AdamW over all of ``model``'s parameters; the fused CPU kernel where torch has one.

    Fused AdamW does the same update as the per-tensor loop, several times faster on CPU
    (the optimizer step dominates a small batch's training time here).
    """
    import torch

    try:
        return torch.optim.AdamW(model.parameters(), lr=learning_rate, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(model.parameters(), lr=learning_rate)


# ------------------------------------------------------------------------------ batching
def tokenize_batch(tokenizer, texts, max_length: int = 128, pad_to_max_length: bool = False) -> dict:
    """Tensors for one batch: truncated to ``max_length`` and padded to the batch's longest text.

    ``pad_to_max_length=True`` pads every batch to ``max_length`` instead; it only exists so the
    benchmark can show what per-batch padding saves.
    """
    return tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        padding="max_length" if pad_to_max_length else True,
        return_tensors="pt",
    )


class TokenCache:
    """Each text's tokens, computed once; batches are padded from them (what a step shares).

    ``batch(texts)`` gives exactly the tensors of ``tokenize_batch(tokenizer, texts, max_length)``
    (truncated to ``max_length``, padded by the tokenizer's own rule to the longest text of the
    batch), but a text already seen is not tokenised again: the human training split is batched in
    every epoch and the test split at every checkpoint.
    """

    def __init__(self, tokenizer, max_length: int = 128):
        self.tokenizer, self.max_length = tokenizer, int(max_length)
        self._encoded: dict[str, dict] = {}

    def encode(self, texts) -> list[dict]:
        """The tokens of each text (a dict of lists per text), tokenising only the texts not yet seen."""
        texts = [str(t) for t in texts]
        missing = list(dict.fromkeys(t for t in texts if t not in self._encoded))
        if missing:
            encoded = self.tokenizer(missing, truncation=True, max_length=self.max_length)
            for position, text in enumerate(missing):
                self._encoded[text] = {key: values[position] for key, values in encoded.items()}
        return [self._encoded[t] for t in texts]

    def batch(self, texts, pad_to_max_length: bool = False) -> dict:
        """The batch's tensors, padded to its longest text (or to ``max_length``)."""
        rows = self.encode(texts)
        if pad_to_max_length:
            return self.tokenizer.pad(rows, padding="max_length", max_length=self.max_length, return_tensors="pt")
        return self.tokenizer.pad(rows, padding=True, return_tensors="pt")


def token_cache(tokenizer, max_length: int, tokens: TokenCache | None = None) -> TokenCache:
    """``tokens`` when it serves ``tokenizer`` at ``max_length``, else a fresh ``TokenCache``."""
    if tokens is not None and tokens.tokenizer is tokenizer and tokens.max_length == int(max_length):
        return tokens
    return TokenCache(tokenizer, max_length)


def iterate_batches(n: int, batch_size: int, generator=None):
    """Index arrays of successive batches over ``n`` examples; shuffled when ``generator`` is given."""
    import torch

    order = torch.randperm(n, generator=generator).numpy() if generator is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def length_buckets(lengths, batch_size: int, generator) -> list[np.ndarray]:
    """Batches of similar length in a shuffled order (``training.length_bucketing``).

    The examples are shuffled, cut into windows of 50 batches, sorted by length inside each
    window and cut into batches, and the batches are shuffled: every example once per epoch,
    less padding, but different batches than ``iterate_batches`` (so not the same results).
    """
    import torch

    order = torch.randperm(len(lengths), generator=generator).numpy()
    lengths = np.asarray(lengths)
    window = batch_size * 50
    out = []
    for start in range(0, len(order), window):
        part = order[start : start + window]
        part = part[np.argsort(lengths[part], kind="stable")]
        out += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [out[i] for i in torch.randperm(len(out), generator=generator).tolist()]


def batches(tokenizer, texts, labels, batch_size: int, max_length: int = 128, generator=None,
            pad_to_max_length: bool = False, tokens: TokenCache | None = None, bucketed: bool = False):
    """``(indices, inputs)`` per batch, ``inputs`` holding the tokens and, with ``labels``, ``labels``.

    The order is shuffled by ``generator`` (a seeded ``torch.Generator``) or kept as given;
    ``bucketed`` (with a generator) batches texts of similar length (``length_buckets``).
    """
    import torch

    texts = list(texts)
    tokens = token_cache(tokenizer, max_length, tokens)
    if bucketed and generator is not None:
        order = length_buckets([len(row["input_ids"]) for row in tokens.encode(texts)], batch_size, generator)
    else:
        order = iterate_batches(len(texts), batch_size, generator)
    for index in order:
        inputs = tokens.batch([texts[i] for i in index], pad_to_max_length)
        if labels is not None:
            inputs["labels"] = torch.as_tensor(np.asarray(labels)[index], dtype=torch.long)
        yield index, inputs


# ----------------------------------------------------------------------------- predicting
def predict_logits(model, tokenizer, texts, batch_size: int = 64, max_length: int = 128,
                   tokens: TokenCache | None = None) -> np.ndarray:
    """``(n, 2)`` float logits of ``model`` for ``texts``, in the order given.

    Texts are batched in order of length (stable sort) so that little padding is computed;
    the result is put back in the input order. Runs in the model's precision.
    """
    import torch

    texts = list(texts)
    tokens = token_cache(tokenizer, max_length, tokens)
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    if not texts:
        return out
    order = np.argsort([len(t) for t in texts], kind="stable")
    was_training = model.training
    model.eval()
    device = model_device(model)
    batch_size = inference_batch_size(device, batch_size)
    with torch.inference_mode(), autocast(device, model_precision(model)):
        for start in range(0, len(texts), batch_size):
            index = order[start : start + batch_size]
            inputs = to_device(tokens.batch([texts[i] for i in index]), device)
            out[index] = model(**inputs).logits.float().cpu().numpy()
    model.train(was_training)
    return out


def to_device(inputs: dict, device) -> dict:
    """A batch's tensors on ``device`` (unchanged on the CPU; pinned and copied asynchronously to CUDA)."""
    if device.type == "cpu":
        return inputs
    pin = pin_memory(device)
    return {k: (v.pin_memory() if pin else v).to(device, non_blocking=pin) for k, v in inputs.items()}


def softmax_positive(logits: np.ndarray) -> np.ndarray:
    """P(label 1) from ``(n, 2)`` logits (computed in float64)."""
    logits = np.asarray(logits, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(logits[:, 0] - logits[:, 1]))


def predict_proba(model, tokenizer, texts, batch_size: int = 64, max_length: int = 128,
                  tokens: TokenCache | None = None) -> np.ndarray:
    """P(label 1) for each text: the teacher's score, as ``metrics.evaluate`` wants it."""
    return softmax_positive(predict_logits(model, tokenizer, texts, batch_size, max_length, tokens))


# ----------------------------------------------------------------------------- fine-tuning
def fine_tune(
    model,
    tokenizer,
    train_texts,
    train_labels,
    params: TeacherParams,
    seed: int,
    validation=None,
    epochs: int | None = None,
    pad_to_max_length: bool = False,
    tokens: TokenCache | None = None,
) -> dict:
    """Train ``model`` in place with AdamW (``params.learning_rate``, constant) and return a history.

    Each epoch is one shuffled pass (order from a generator seeded by ``seed``) in batches of
    ``params.batch_size``, padded per batch. With ``validation=(texts, labels)``: after every
    epoch the mean cross-entropy on the validation texts is computed; training stops once it
    has not improved for ``params.patience`` epochs, and the weights of the best epoch (lowest
    validation loss) are restored. Validation *loss* rather than AUC is used because it still
    moves when a small validation split is already perfectly ranked. Without validation the
    model trains exactly ``epochs`` passes (default ``params.max_epochs``); ``epochs=1`` is one
    pass, as used for each synthetic increment. A fresh optimizer is made on every call. The
    forward pass runs in the model's precision (``devices.use_precision``); ``tokens`` is the
    step's ``TokenCache``; ``params.length_bucketing`` batches texts of similar length.

    Returns ``{"epochs_run", "best_epoch", "train_losses", "validation_losses",
    "validation_auc", "stopped_early", "n_train"}`` (losses are per-epoch means).
    """
    import torch

    train_texts, train_labels = list(train_texts), np.asarray(train_labels, dtype=np.int64)
    max_epochs = int(epochs if epochs is not None else params.max_epochs)
    history = {
        "epochs_run": 0,
        "best_epoch": 0,
        "train_losses": [],
        "validation_losses": [],
        "validation_auc": [],
        "stopped_early": False,
        "n_train": len(train_texts),
    }
    if not train_texts:
        return history
    set_seed(seed)
    generator = _generator(seed)
    optimizer = make_optimizer(model, params.learning_rate)
    device, precision = model_device(model), model_precision(model)
    scaler = grad_scaler(device, precision)  # disabled (a pass-through) except for fp16 on CUDA
    tokens = token_cache(tokenizer, params.max_length, tokens)
    bucketed = bool(getattr(params, "length_bucketing", False))
    best_loss, best_state, waited = float("inf"), None, 0

    for epoch in range(1, max_epochs + 1):
        model.train()
        losses = []
        for _, inputs in batches(tokenizer, train_texts, train_labels, params.batch_size, params.max_length, generator,
                                 pad_to_max_length, tokens, bucketed):
            with autocast(device, precision):
                loss = model(**to_device(inputs, device)).loss
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.item())
        model.eval()
        if validation is not None:  # the long, early-stopped fine-tunes; one-pass increments report below
            report_progress(epoch, max_epochs, "fine-tune epoch (early stopping may end it sooner)")
        history["epochs_run"] = epoch
        history["train_losses"].append(float(np.mean(losses)))
        if validation is None:
            history["best_epoch"] = epoch
            continue

        val_texts, val_labels = list(validation[0]), np.asarray(validation[1], dtype=np.int64)
        logits = predict_logits(model, tokenizer, val_texts, max(params.batch_size, 32), params.max_length, tokens)
        val_loss = float(
            torch.nn.functional.cross_entropy(torch.as_tensor(logits), torch.as_tensor(val_labels))
        )
        history["validation_losses"].append(val_loss)
        history["validation_auc"].append(
            metrics_module.classification_metrics(val_labels, softmax_positive(logits))["auc"]
        )
        if val_loss < best_loss:
            best_loss, waited, history["best_epoch"] = val_loss, 0, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= params.patience:
                history["stopped_early"] = epoch < max_epochs
                break

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
