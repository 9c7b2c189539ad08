"""The cached LLM client against a real local HTTP server: retries, Retry-After, concurrency, no failure as data."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from conftest import REPO
from fault_server import ERROR_TEXT, REFUSAL_TEXT, fault_server, reply_content

from synthmix.data.rubric import load_rubric
from synthmix.errors import GenerationError
from synthmix.llm.cache import ChatReply, ReplyCache
from synthmix.llm.client import ChatClient, content_problem, managed_server_timeout, retry_after_seconds
from synthmix.steps.filtering import judge_pool

RUBRIC = load_rubric(REPO / "src/synthmix/data/default_data/tutor_error_feedback/rubric.yaml")
MESSAGES = [{"role": "user", "content": "Draft 3 positive responses to the question, one per line, no numbering."}]


def make_client(server, cache_path, **options) -> ChatClient:
    """A client of the fault server with fast backoff (the server's own Retry-After is still honoured)."""
    options = {"max_retries": 3, "timeout_s": 5.0, "backoff_s": 0.05, **options}
    return ChatClient("openai:fault-server", "fake-llm", ReplyCache(cache_path), connect=lambda: server.base_url,
                      **options)


def cache_bytes(folder) -> bytes:
    """Everything SQLite wrote for the caches in ``folder`` (database, WAL and shared-memory files)."""
    return b"".join(path.read_bytes() for path in sorted(folder.glob("*.sqlite*")))


def test_rate_limit_retry_after_is_honoured(tmp_path):
    with fault_server(fault_rate=1.0, fault_kinds=("rate_limit",), max_faults_per_request=1, retry_after="2") as server:
        client = make_client(server, tmp_path / "llm.sqlite")
        reply = client.complete(MESSAGES, temperature=0.7, seed=3, max_tokens=100)
        (arrivals,) = server.attempt_times.values()
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 2.0
    assert reply.text == reply_content({"messages": MESSAGES, "seed": 3, "model": "fake-llm", "temperature": 0.7})
    assert reply.attempts == 2 and client.stats.retries == 1 and client.stats.retry_reasons == {"HTTP 429": 1}


def test_saturated_server_pauses_every_call_in_flight(tmp_path):
    """A 429 with Retry-After on one call holds back the calls that start beside it (the shared backoff gate)."""
    with fault_server(delay_s=0.3, fault_rate=1.0, fault_kinds=("rate_limit",), max_faults_per_request=1,
                      only_seeds={5}, retry_after="2") as server:
        client = make_client(server, tmp_path / "llm.sqlite")
        requests = [{"messages": MESSAGES, "temperature": 0.7, "seed": seed, "max_tokens": 100} for seed in range(12)]
        replies = list(client.complete_many(requests, concurrency=4))
        arrivals = list(server.arrivals)
    assert [r.text for r in replies] == [
        reply_content({"messages": MESSAGES, "seed": s, "model": "fake-llm", "temperature": 0.7}) for s in range(12)]
    (refused_at,) = [at for at, seed, attempt, fault in arrivals if fault == "rate_limit"]
    # seeds 0-3 run first, then 4-7 (5 is refused); 8 and later start only after the pause 5 was asked for
    later = [at for at, seed, _, _ in arrivals if seed >= 8]
    assert later and min(later) >= refused_at + 1.95
    assert client.stats.seconds_paused >= 1.9


@pytest.mark.parametrize("kind", ["malformed_json", "error_text", "empty", "refusal", "server_error", "hang"])
def test_a_faulty_reply_is_retried_and_never_cached(tmp_path, kind):
    with fault_server(fault_rate=1.0, fault_kinds=(kind,), max_faults_per_request=1, hang_s=10) as server:
        client = make_client(server, tmp_path / "llm.sqlite", timeout_s=1.0)
        reply = client.complete(MESSAGES, temperature=0.7, seed=6, max_tokens=100)
        assert server.faults == {kind: 1} and server.replies == 1
    assert reply.text.startswith("1. Could you show me step 1 of try 6") and reply.attempts == 2
    rows = sqlite3.connect(tmp_path / "llm.sqlite").execute("SELECT text, attempts FROM replies").fetchall()
    assert rows == [(reply.text, 2)]
    assert ERROR_TEXT.encode() not in cache_bytes(tmp_path) and REFUSAL_TEXT.encode() not in cache_bytes(tmp_path)


def test_a_call_that_keeps_failing_raises_and_leaves_nothing_cached(tmp_path):
    with fault_server(fault_rate=1.0, fault_kinds=("error_text", "malformed_json", "empty")) as server:
        client = make_client(server, tmp_path / "llm.sqlite", max_retries=2)
        with pytest.raises(GenerationError, match=r"failed after 3 attempt\(s\)"):
            client.complete(MESSAGES, temperature=0.7, seed=1, max_tokens=100)
        assert server.requests == 3
    cache = ReplyCache(tmp_path / "llm.sqlite")
    assert len(cache) == 0 and ERROR_TEXT.encode() not in cache_bytes(tmp_path)
    # the attempts are remembered, so the run that finally succeeds reports every retry behind its reply
    with fault_server() as healthy:
        again = ChatClient("openai:fault-server", "fake-llm", cache, connect=lambda: healthy.base_url)
        reply = again.complete(MESSAGES, temperature=0.7, seed=1, max_tokens=100)
    assert reply.attempts == 4 and again.stats.retries == 3 and again.stats.retries_this_run == 0


def test_client_errors_are_not_retried(tmp_path):
    with fault_server() as server:
        client = ChatClient("openai:fault-server", "fake-llm", ReplyCache(tmp_path / "llm.sqlite"),
                            connect=lambda: server.base_url.replace("/v1", "/v2"), max_retries=3, backoff_s=0.05)
        with pytest.raises(GenerationError, match="HTTP 404"):
            client.complete(MESSAGES, temperature=0.7, seed=1, max_tokens=100)
        assert server.requests == 0  # /v2 is not a completion route: one 404, counted as no completion request


def test_replayed_calls_report_their_retries(tmp_path):
    with fault_server(fault_rate=0.5, fault_kinds=("server_error", "empty"), max_faults_per_request=2) as server:
        first = make_client(server, tmp_path / "llm.sqlite")
        requests = [{"messages": MESSAGES, "temperature": 0.7, "seed": seed, "max_tokens": 100} for seed in range(10)]
        made = list(first.complete_many(requests, concurrency=4))
        faults = sum(server.faults.values())
    assert faults > 0 and first.stats.retries == first.stats.retries_this_run == faults
    replay = make_client(server, tmp_path / "llm.sqlite")
    replayed = list(replay.complete_many(requests, concurrency=4))
    assert [r.text for r in replayed] == [r.text for r in made] and all(r.cached for r in replayed)
    assert replay.stats.calls_made == 0 and replay.stats.retries == faults and replay.stats.retries_this_run == 0


def test_concurrent_calls_come_back_in_call_order_and_overlap(tmp_path):
    with fault_server(delay_s=0.5) as server:
        client = make_client(server, tmp_path / "llm.sqlite")
        requests = [{"messages": MESSAGES, "temperature": 0.7, "seed": seed, "max_tokens": 100} for seed in range(16)]
        began = time.monotonic()
        replies = list(client.complete_many(requests, concurrency=8))
        elapsed = time.monotonic() - began
        assert 4 <= server.max_in_flight <= 8
    assert [r.text for r in replies] == [
        reply_content({"messages": MESSAGES, "seed": s, "model": "fake-llm", "temperature": 0.7}) for s in range(16)]
    assert elapsed < 16 * 0.5 / 2  # sequentially 8 s; 8 lanes take about 1 s


def test_stopping_early_cancels_the_calls_not_needed(tmp_path):
    with fault_server(delay_s=0.1) as server:
        client = make_client(server, tmp_path / "llm.sqlite")
        requests = ({"messages": MESSAGES, "temperature": 0.7, "seed": seed, "max_tokens": 100} for seed in range(1000))
        for number, _ in enumerate(client.complete_many(requests, concurrency=4), start=1):
            if number == 5:
                break
        assert server.requests <= 5 + 4
    assert client.stats.calls_made <= 9 and client.stats.calls_unused == client.stats.calls_made - 5


def test_managed_server_client_runs_one_call_at_a_time(tmp_path):
    with fault_server(delay_s=0.1) as server:
        client = make_client(server, tmp_path / "llm.sqlite", max_concurrency=1)
        requests = [{"messages": MESSAGES, "temperature": 0.7, "seed": seed, "max_tokens": 100} for seed in range(4)]
        list(client.complete_many(requests, concurrency=8))
        assert server.max_in_flight == 1


def test_sentinel_api_key_is_sent_but_never_stored(tmp_path, monkeypatch):
    sentinel = "sk-sentinel-" + "q9" * 20
    monkeypatch.setenv("SYNTHMIX_TEST_KEY", sentinel)
    with fault_server(fault_rate=0.5, fault_kinds=("error_text", "server_error"), max_faults_per_request=1) as server:
        client = make_client(server, tmp_path / "llm.sqlite", api_key_env="SYNTHMIX_TEST_KEY")
        requests = [{"messages": MESSAGES, "temperature": 0.7, "seed": seed, "max_tokens": 100} for seed in range(6)]
        list(client.complete_many(requests, concurrency=3))
        assert server.authorization == {f"Bearer {sentinel}"}
    client.cache.close()
    assert sentinel.encode() not in cache_bytes(tmp_path)
    assert sentinel not in repr(client.stats.as_dict())


WRITER = """
import sys
from synthmix.llm.cache import ChatReply, ReplyCache
path, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cache = ReplyCache(path)
for number in range(count):
    cache.put(f"key-{number}", {"worker": worker}, ChatReply(f"reply {number} by {worker}", "id", False, 1, 1, "stop"))
    cache.put(f"own-{worker}-{number}", {"worker": worker}, ChatReply("x", "id", False, 1, 1, "stop"))
cache.close()
"""


def test_cache_stays_consistent_under_concurrent_processes_and_threads(tmp_path):
    path = str(tmp_path / "llm.sqlite")
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, path, str(worker), "40"]) for worker in range(3)]
    cache = ReplyCache(path)  # one connection shared by two threads, beside the processes

    def write(worker: int) -> None:
        for number in range(40):
            cache.put(f"key-{number}", {}, ChatReply(f"reply {number} by {worker}", "id", False, 1, 1, "stop"))
            cache.put(f"own-{worker}-{number}", {}, ChatReply("x", "id", False, 1, 1, "stop"))
    threads = [threading.Thread(target=write, args=(worker,)) for worker in (3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0]
    rows = pd.read_sql("SELECT key, text FROM replies", sqlite3.connect(path))
    assert len(rows) == 40 + 5 * 40 and rows["key"].is_unique
    # every writer got back the reply stored first, whoever wrote it
    for number in range(40):
        assert cache.get(f"key-{number}").text.startswith(f"reply {number} by ")
    cache.close()


def test_first_stored_reply_wins():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        cache = ReplyCache(Path(folder) / "c.sqlite")
        first = cache.put("k", {}, ChatReply("first", "a", False, 1, 1, "stop"))
        second = cache.put("k", {}, ChatReply("second", "b", False, 1, 1, "stop"))
        assert first.text == second.text == "first"
        cache.close()


@pytest.mark.parametrize("content, problem", [
    ("", "empty content"), ("   \n ", "empty content"), (None, "non-text content (NoneType)"),
    (ERROR_TEXT, "error text as content"), ("Internal Server Error", "error text as content"),
    ('{"error": {"message": "overloaded"}}', "error object as content"),
    (REFUSAL_TEXT, "refusal"), ("As an AI language model, I cannot write that.", "refusal"),
    ("1. How did you get 4/6?\n2. What does the 4 mean?\n3. Is 4/6 more than 3/4?", None),
    ("I'm sorry Maya, but that isn't right. Can you show me with a drawing?", None),
])
def test_content_problems_are_recognised(content, problem):
    assert content_problem(content) == problem


def test_managed_server_timeout_scales_with_max_tokens_and_load():
    assert managed_server_timeout(16, floor_s=120.0, threads=2, load_per_core=1.0) == 120.0
    assert managed_server_timeout(2000, floor_s=120.0, threads=2, load_per_core=0.5) == 30 + 1000
    assert managed_server_timeout(2000, 120.0, threads=1, load_per_core=1.0) == 30 + 2000
    assert managed_server_timeout(2000, 120.0, threads=2, load_per_core=3.0) == 3 * (30 + 1000)


def test_judge_grades_identically_at_any_concurrency(tmp_path):
    pool = pd.DataFrame({"text": [f"Could you explain step {n} of your work?" for n in range(12)], "label": 1})
    with fault_server(delay_s=0.2, fault_rate=0.3, fault_kinds=("server_error", "error_text"),
                      max_faults_per_request=1) as server:
        grades = {}
        for concurrency in (1, 6):
            client = make_client(server, tmp_path / f"judge-{concurrency}.sqlite")
            grades[concurrency] = judge_pool(pool, RUBRIC, client, temperature=0.0, max_tokens=100,
                                             concurrency=concurrency)
        assert server.max_in_flight > 1
    pd.testing.assert_frame_equal(grades[1], grades[6])
    assert set(grades[1]["status"]) == {"graded"} and set(grades[1]["grade"]) == {0, 1}


def test_retry_after_headers_in_every_form():
    import email.utils

    assert retry_after_seconds({"retry-after": "20"}) == 20.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= retry_after_seconds({"retry-after": in_a_minute}) <= 61
    assert retry_after_seconds({"retry-after": "soon"}) is None and retry_after_seconds({}) is None


def test_a_cache_from_before_attempts_were_recorded_still_replays(tmp_path):
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE replies (key TEXT PRIMARY KEY, call_id TEXT, request TEXT, text TEXT,"
                " prompt_tokens INTEGER, completion_tokens INTEGER, finish_reason TEXT, created REAL)")
    old.execute("INSERT INTO replies VALUES ('k', 'id-1', '{}', 'an old reply', 3, 4, 'stop', 0)")
    old.commit()
    old.close()
    cache = ReplyCache(path)
    assert cache.get("k") == ChatReply("an old reply", "id-1", True, 3, 4, "stop", attempts=1)
    cache.close()
