"""``python -m synthmix.llm.llama_serve llama_cpp.server ARGS``: that server, each reply a function of its request.

llama-cpp-python keeps the previous request's tokens in its KV cache and, when the next prompt
shares a prefix with them, evaluates only the rest (``Llama.generate``). The logits of the
prompt's last token then come from a batch of a different size, which changes their last bits,
and sampling can take another path: the reply to a request depended on what the server had
answered before (the first time a prompt was sent, and a repeat of it, got different texts with
the same seed). Evaluating every prompt from an empty cache fixes that but costs the whole
prompt each call (467-575 tokens of the default prompts: about 8 s on one CPU thread, most of a call).

So this launcher wraps ``Llama.generate`` to reuse the cache only in whole blocks of ``n_batch``
tokens from the start of the prompt. A prompt evaluated from empty is decoded in those same blocks
([0, n_batch), [n_batch, 2 n_batch), …), so the keys and values of a reused block are bit for bit the
ones a fresh evaluation computes, and the rest of the prompt is decoded in the same batches as it
would be afresh. The reply is then a function of the request alone, the same on any server started
with the same model and settings, in any order, while the shared instructions at the head of the
prompt are evaluated once per server. It then runs the server's own ``main`` with the same arguments.
"""

from __future__ import annotations

import functools
import sys


def reusable_prefix(cached: list[int], tokens: list[int], block: int) -> int:
    """The prompt tokens whose cached keys and values equal a fresh evaluation's: the prefix ``tokens``
    shares with ``cached``, cut down to whole blocks of ``block`` tokens, leaving at least one token to decode."""
    shared = 0
    for a, b in zip(cached, tokens):
        if a != b:
            break
        shared += 1
    reuse = (min(shared, len(tokens) - 1) // block) * block if block > 0 else 0
    return max(reuse, 0)


def block_aligned_reuse() -> None:
    """Make ``llama_cpp.Llama.generate`` reuse its KV cache only in whole ``n_batch`` blocks (idempotent)."""
    from llama_cpp import llama as llama_module
    from llama_cpp import llama_cpp

    original = llama_module.Llama.generate
    if getattr(original, "synthmix_block_reuse", False):
        return

    @functools.wraps(original)
    def generate(self, tokens, *args, **kwargs):
        tokens = list(tokens)
        keep = reusable_prefix(list(self._input_ids), tokens, self.n_batch) if self.n_tokens > 0 else 0
        if keep > 0 and self._ctx.kv_cache_seq_rm(-1, keep, -1):
            self.n_tokens = keep  # generate() matches exactly these and decodes the rest in the fresh batches
        else:
            self.reset()  # n_tokens = 0: nothing of the previous request is matched or reused
            memory = llama_cpp.llama_get_memory(self._ctx.ctx)
            if memory is not None:
                llama_cpp.llama_memory_clear(memory, True)
        return (yield from original(self, tokens, *args, **kwargs))

    generate.synthmix_block_reuse = True
    llama_module.Llama.generate = generate


SERVER_MODULE = "llama_cpp.server"


def main(argv: list[str] | None = None) -> None:
    """Run ``python -m llama_cpp.server ARGS`` with block-aligned cache reuse; ``argv`` (default: this process's
    arguments) is ``["llama_cpp.server", *ARGS]``, so the command line still names the server it runs."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] != SERVER_MODULE:
        raise SystemExit(f"usage: python -m synthmix.llm.llama_serve {SERVER_MODULE} [server arguments]")
    block_aligned_reuse()
    from llama_cpp.server.__main__ import main as serve

    sys.argv = argv
    serve()


if __name__ == "__main__":
    main()
