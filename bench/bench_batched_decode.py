"""Would a batching llama.cpp server make the managed backend faster here? Decode steps of 1-4 sequences.

    .venv/bin/python bench/bench_batched_decode.py [--threads 1 2] [--steps 60]

llama-cpp-python's server answers one request at a time, so ``generation.concurrency`` cannot batch
the managed backend's calls; a server with parallel slots would decode several sequences in one
step. This measures what that could gain on this CPU, with the llama.cpp library the study uses:
SmolLM2-135M-Instruct (the managed model), one context with ``n_seq_max`` 4, a short prompt per
sequence, then ``--steps`` decode steps of one token for each of 1, 2, 3 and 4 sequences at once.
Prints milliseconds per step, tokens per second, and each batch's throughput over one sequence's
(a batching server's best case at that concurrency: no prompt, sampling or HTTP time).
"""

from __future__ import annotations

import argparse
import time

import llama_cpp
from llama_cpp import Llama

from synthmix.llm.server import smollm2_gguf

PROMPT = b"Write ten short answers a tutor might give about adding fractions, one per line."


def decode(ctx, tokens_per_sequence: list[list[int]], positions: list[int]) -> None:
    """One ``llama_decode`` of every sequence's tokens (sequence s at ``positions[s]`` onwards)."""
    count = sum(len(tokens) for tokens in tokens_per_sequence)
    batch = llama_cpp.llama_batch_init(count, 0, len(tokens_per_sequence))
    try:
        i = 0
        for sequence, tokens in enumerate(tokens_per_sequence):
            for j, token in enumerate(tokens):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, positions[sequence] + j, 1
                batch.seq_id[i][0], batch.logits[i] = sequence, j == len(tokens) - 1
                i += 1
        batch.n_tokens = count
        code = llama_cpp.llama_decode(ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")
    finally:
        llama_cpp.llama_batch_free(batch)


def tokens_per_second(model: Llama, threads: int, sequences: int, steps: int) -> float:
    """Decode throughput (tokens/s) of ``sequences`` sequences stepped together on ``threads`` threads."""
    params = llama_cpp.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_ubatch, params.n_seq_max = 4096, 64, 64, 4
    params.n_threads = params.n_threads_batch = threads
    ctx = llama_cpp.llama_init_from_model(model._model.model, params)
    try:
        prompt = model.tokenize(PROMPT)
        decode(ctx, [prompt] * sequences, [0] * sequences)
        positions = [len(prompt)] * sequences
        began = time.perf_counter()
        for step in range(steps):
            decode(ctx, [[prompt[step % len(prompt)]]] * sequences, positions)
            positions = [p + 1 for p in positions]
        return sequences * steps / (time.perf_counter() - began)
    finally:
        llama_cpp.llama_free(ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    model = Llama(str(smollm2_gguf()), n_ctx=512, verbose=False)
    for threads in args.threads:
        single = None
        for sequences in (1, 2, 3, 4):
            rate = tokens_per_second(model, threads, sequences, args.steps)
            single = single or rate
            print(f"threads {threads}, {sequences} sequence{'s' if sequences > 1 else ' '} per step: "
                  f"{1000 * sequences / rate:6.1f} ms per step, {rate:6.1f} tokens/s, {rate / single:.2f}x one sequence")


if __name__ == "__main__":
    main()
