"""Prompt building, reply parsing, and generation against the real llama.cpp server."""

from __future__ import annotations

import httpx
import pytest

from synthmix.generate import build_messages, generate_pool, parse_reply
from synthmix.llm_client import ChatClient, ReplyCache
from synthmix.params import GenerationParams
from synthmix.rubric import load_rubric
from conftest import REPO

RUBRIC = load_rubric(REPO / "src/synthmix/default_data/tutor_error_feedback/rubric.yaml")


def test_prompt_has_the_paper_form():
    system, user = build_messages(RUBRIC, label=0, count=7)
    assert system == {"role": "system", "content": RUBRIC.persona}
    assert user["role"] == "user"
    assert user["content"].endswith("Draft 7 negative responses to the question, one per line, no numbering.")
    for example in RUBRIC.negative_examples:
        assert example in user["content"]
    assert not any(example in user["content"] for example in RUBRIC.positive_examples)
    assert RUBRIC.negative_criteria in user["content"] and RUBRIC.scenario in user["content"]


@pytest.mark.parametrize("reply, expected", [
    ("1. Can you show me how you added them?\n2) What does the 4 stand for here?\n3 - Draw both fractions first please",
     ["Can you show me how you added them?", "What does the 4 stand for here?", "Draw both fractions first please"]),
    ("- Walk me through your steps\n* Is 4/6 bigger than 3/4?\n\u2022 Try a pizza picture for this",
     ["Walk me through your steps", "Is 4/6 bigger than 3/4?", "Try a pizza picture for this"]),
    ('"Tell me how you got 4/6."\n\u201cWhy did you add the bottoms?\u201d\n1. "Check the parts are the same size"',
     ["Tell me how you got 4/6.", "Why did you add the bottoms?", "Check the parts are the same size"]),
    ("[1] What is 3/4 of a pizza?\n[2] How big is each piece?\nA positive response: Show me your steps", ["What is 3/4 of a pizza?", "How big is each piece?", "Show me your steps"]),
    ("", []),
    ("\n\n   \n", []),
    ("1. Explain your first step to me 2. Are the pieces the same size? 3. What would a picture show?",
     ["Explain your first step to me", "Are the pieces the same size?", "What would a picture show?"]),
    ("Here are 3 positive responses:\nHow did you get the 6 at the bottom?\nOk\nSure! Let's see.\nPositive responses:",
     ["How did you get the 6 at the bottom?"]),
])
def test_parse_reply_handles_awkward_replies(reply, expected):
    responses, _ = parse_reply(reply)
    assert responses == expected


def test_parse_reply_counts_rejects_by_reason():
    prompt_line = "Draft 3 positive responses to the question, one per line, no numbering."
    responses, rejects = parse_reply(f"{prompt_line}\n\nHere are some:\nNo\nWhat did you do with the denominators?",
                                     echo_lines=(prompt_line,))
    assert responses == ["What did you do with the denominators?"]
    assert dict(rejects) == {"echo_of_prompt": 1, "blank": 1, "preamble": 1, "too_short": 1}


def test_truncated_reply_drops_its_cut_last_line():
    responses, rejects = parse_reply("How did you add these?\nWhat does the bottom number mean in", truncated=True)
    assert responses == ["How did you add these?"] and rejects["truncated"] == 1


def test_one_long_line_without_numbers_stays_one_response():
    line = "Maya, look at step 2. What happens to the denominators when you add? " * 3
    responses, _ = parse_reply(line)
    assert len(responses) == 1


SMALL = GenerationParams(pool_size_per_label=4, responses_per_call=5, max_tokens=160, max_calls_per_label=6)


def counting_http_client():
    """An httpx client that counts the HTTP requests the openai package sends."""
    sent = []
    client = httpx.Client(event_hooks={"request": [lambda request: sent.append(str(request.url))]})
    return client, sent


def test_real_server_same_seed_same_text(llama_server, tmp_path):
    messages = build_messages(RUBRIC, label=1, count=3)
    texts = []
    for name in ("a", "b"):  # two caches, so both calls really go to the server
        client = ChatClient("llama.cpp:test", "smollm2-135m", ReplyCache(tmp_path / f"{name}.sqlite"),
                            connect=lambda: llama_server.base_url)
        texts.append(client.complete(messages, temperature=0.7, seed=11, max_tokens=80).text)
        assert client.stats.calls_made == 1
    assert texts[0] == texts[1] and texts[0].strip()
    other = ChatClient("llama.cpp:test", "smollm2-135m", ReplyCache(tmp_path / "c.sqlite"), connect=lambda: llama_server.base_url)
    assert other.complete(messages, temperature=0.7, seed=12, max_tokens=80).text != texts[0]


def test_rerun_replays_cache_without_http_requests(llama_server, tmp_path):
    from synthmix import generate

    cache = tmp_path / "llm.sqlite"
    def run(http_client):
        settings = SMALL.model_copy(update={"backend": "openai", "base_url": llama_server.base_url, "model": "smollm2-135m"})
        return generate.generate_pool(settings, RUBRIC, 0.7, cache, http_client=http_client)

    first_client, first_sent = counting_http_client()
    pool, report = run(first_client)
    assert report["stats"]["calls_made"] == len(first_sent) > 0
    assert set(pool["label"]) == {0, 1} and len(pool) <= 8
    assert not pool["text"].duplicated().any()

    second_client, second_sent = counting_http_client()
    again, report_again = run(second_client)
    assert second_sent == []
    assert report_again["stats"]["calls_made"] == 0
    assert report_again["stats"]["calls_replayed"] == report["stats"]["calls_made"]
    assert again.equals(pool)


def test_managed_backend_starts_and_stops_its_own_server(tmp_path):
    settings = SMALL.model_copy(update={"pool_size_per_label": 2, "max_calls_per_label": 3})
    pool, report = generate_pool(settings, RUBRIC, 0.5, tmp_path / "llm.sqlite")
    assert report["server_start_s"] is not None and report["stats"]["calls_made"] >= 2
    assert len(pool) >= 2
    # a rerun replays everything and starts no server
    _, again = generate_pool(settings, RUBRIC, 0.5, tmp_path / "llm.sqlite")
    assert again["server_start_s"] is None and again["stats"]["calls_made"] == 0


def test_failed_calls_never_become_data(tmp_path):
    from synthmix.errors import GenerationError
    from synthmix.llm_server import free_port

    settings = SMALL.model_copy(update={"backend": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
                                        "max_retries": 1, "request_timeout_s": 2})
    with pytest.raises(GenerationError, match="failed after 2 attempt"):
        generate_pool(settings, RUBRIC, 0.7, tmp_path / "llm.sqlite")
    assert len(ReplyCache(tmp_path / "llm.sqlite")) == 0


def test_api_key_never_reaches_cache_or_errors(tmp_path, monkeypatch):
    from synthmix.errors import GenerationError
    from synthmix.llm_server import free_port

    secret = "sk-test-" + "x7" * 16
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    settings = SMALL.model_copy(update={"backend": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
                                        "max_retries": 0, "request_timeout_s": 2})
    with pytest.raises(GenerationError) as failure:
        generate_pool(settings, RUBRIC, 0.7, tmp_path / "llm.sqlite")
    assert secret not in str(failure.value)
    assert secret.encode() not in (tmp_path / "llm.sqlite").read_bytes()
