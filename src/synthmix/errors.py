"""Errors raised for bad input: each names the file, key, column or row and what was expected."""

from __future__ import annotations


class InputError(Exception):
    """Bad user input (params file, dataset, rubric). Holds one line per problem.

    The CLI prints each problem on its own line and exits with status 2.
    """

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class GenerationError(RuntimeError):
    """An LLM call failed after all retries; it never becomes a row of data."""
