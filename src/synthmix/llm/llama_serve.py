"""``python -m synthmix.llm.llama_serve llama_cpp.server ARGS``: that server, each request evaluated afresh.

llama-cpp-python keeps the previous request's tokens in its KV cache and, when the next prompt
shares a prefix with them, evaluates only the rest (``Llama.generate``). The logits of the
prompt's last token then come from a batch of a different size, which changes their last bits,
and sampling can take another path: the reply to a request depended on what the server had
answered before (the first time a prompt was sent, and a repeat of it, got different texts with
the same seed). There is no setting to turn that reuse off, so this launcher wraps
``Llama.generate`` to clear the model's state (token count and KV memory) before every request,
and then runs the server's own ``main`` with the same arguments. Every request's prompt is
evaluated from an empty cache, in the same batches, so its reply is a function of the request
alone: the same on any server started with the same model and settings, in any order.
"""

from __future__ import annotations

import functools
import sys


def fresh_state_per_request() -> None:
    """Make ``llama_cpp.Llama.generate`` start every request from an empty KV cache (idempotent)."""
    from llama_cpp import llama as llama_module
    from llama_cpp import llama_cpp

    original = llama_module.Llama.generate
    if getattr(original, "synthmix_fresh_state", False):
        return

    @functools.wraps(original)
    def generate(self, tokens, *args, **kwargs):
        self.reset()  # n_tokens = 0: no prefix of the previous request is matched or reused
        memory = llama_cpp.llama_get_memory(self._ctx.ctx)
        if memory is not None:
            llama_cpp.llama_memory_clear(memory, True)
        return (yield from original(self, tokens, *args, **kwargs))

    generate.synthmix_fresh_state = True
    llama_module.Llama.generate = generate


SERVER_MODULE = "llama_cpp.server"


def main(argv: list[str] | None = None) -> None:
    """Run ``python -m llama_cpp.server ARGS`` afresh per request; ``argv`` (default: this process's
    arguments) is ``["llama_cpp.server", *ARGS]``, so the command line still names the server it runs."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] != SERVER_MODULE:
        raise SystemExit(f"usage: python -m synthmix.llm.llama_serve {SERVER_MODULE} [server arguments]")
    fresh_state_per_request()
    from llama_cpp.server.__main__ import main as serve

    sys.argv = argv
    serve()


if __name__ == "__main__":
    main()
