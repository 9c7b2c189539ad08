"""The LLM behind generation and judging: one OpenAI-compatible ``client`` with retries and
concurrency, its on-disk reply ``cache``, and the managed llama.cpp ``server``."""
