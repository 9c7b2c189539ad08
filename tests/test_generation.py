"""Prompt building and pool generation against real servers: llama.cpp, and a fault-injecting OpenAI-compatible one
(the reply parser has its own tests in test_parser.py)."""

from __future__ import annotations

import httpx
import pytest
from conftest import REPO
from fault_server import ERROR_TEXT, REFUSAL_TEXT, fault_server

from synthmix.data.rubric import load_rubric
from synthmix.llm.cache import ReplyCache
from synthmix.llm.client import ChatClient
from synthmix.params import GenerationParams
from synthmix.steps.generate import build_messages, generate_pool

RUBRIC = load_rubric(REPO / "src/synthmix/data/default_data/tutor_error_feedback/rubric.yaml")


def test_prompt_has_the_paper_form():
    system, user = build_messages(RUBRIC, label=0, count=7)
    assert system == {"role": "system", "content": RUBRIC.persona}
    assert user["role"] == "user"
    assert user["content"].endswith("Draft 7 negative responses to the question, one per line, no numbering.")
    for example in RUBRIC.negative_examples:
        assert example in user["content"]
    assert not any(example in user["content"] for example in RUBRIC.positive_examples)
    assert RUBRIC.negative_criteria in user["content"] and RUBRIC.scenario in user["content"]


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
    from synthmix.steps import generate

    cache = tmp_path / "llm.sqlite"
    def run(http_client):
        settings = SMALL.model_copy(update={"backend": "openai", "base_url": llama_server.base_url, "model": "smollm2-135m"})
        return generate.generate_pool(settings, RUBRIC, 0.7, cache, http_client=http_client)

    first_client, first_sent = counting_http_client()
    pool, report = run(first_client)
    # every call made is a request (a retry another); a call started ahead and dropped when the pool was full is one too
    assert 0 < report["stats"]["calls_made"] + report["stats"]["retries_this_run"] <= len(first_sent)
    assert set(pool["label"]) == {0, 1} and len(pool) <= 8
    assert not pool["text"].duplicated().any()

    second_client, second_sent = counting_http_client()
    again, report_again = run(second_client)
    assert second_sent == []
    assert report_again["stats"]["calls_made"] == 0
    # every call the pool used is replayed; calls started ahead of need (concurrency) may or may not be
    used = sum(report["calls"].values())
    assert used <= report_again["stats"]["calls_replayed"] <= report["stats"]["calls_made"]
    assert again.equals(pool)


def test_reply_is_a_function_of_the_request_only(llama_server, tmp_path):
    """Each reply of a server that has answered other requests before (the session's server, then a run of
    repeats, new seeds and the other label) is the reply a newly started server gives to that request first.
    A server that reuses any cached prefix (llama-cpp-python's own behaviour) gives other texts here; ours
    reuses whole n_batch blocks only (``llm.llama_serve``)."""
    from synthmix.llm.server import ManagedLlamaServer, smollm2_gguf

    caches = iter(range(100))

    def ask(base_url, label, seed):  # a fresh cache per call, so every call goes to the server
        cache = ReplyCache(tmp_path / f"{next(caches)}.sqlite")
        client = ChatClient("llama.cpp:test", "smollm2-135m", cache, connect=lambda: base_url)
        return client.complete(build_messages(RUBRIC, label=label, count=10), temperature=0.9, seed=seed,
                               max_tokens=150).text

    requests = [(1, 1), (1, 2), (0, 4), (0, 4), (0, 5), (1, 1)]
    in_sequence = [ask(llama_server.base_url, *request) for request in requests]
    first_replies = {}
    for request in [(0, 4), (0, 5), (1, 1)]:
        with ManagedLlamaServer(smollm2_gguf(), threads=1) as fresh:
            first_replies[request] = ask(fresh.base_url, *request)
    assert all(text.strip() for text in in_sequence)
    assert [in_sequence[i] for i in (2, 3, 4, 5)] == [first_replies[r] for r in [(0, 4), (0, 4), (0, 5), (1, 1)]]
    assert in_sequence[0] == in_sequence[5]


def test_cache_reuse_is_cut_to_whole_blocks():
    from synthmix.llm.llama_serve import reusable_prefix

    assert reusable_prefix(list(range(600)), list(range(575)), 512) == 512  # the shared instructions
    assert reusable_prefix(list(range(575)), list(range(575)), 512) == 512  # a repeat still decodes its tail
    assert reusable_prefix(list(range(512)), list(range(512)), 512) == 0  # no whole block before the last token
    assert reusable_prefix(list(range(300)) + [-1] * 300, list(range(600)), 512) == 0
    assert reusable_prefix([], list(range(600)), 512) == 0


def test_managed_pool_is_the_same_with_one_or_two_servers(tmp_path):
    """generation.concurrency 2 runs two llama.cpp servers side by side (one thread each) and gives the pool
    that one server with both threads gives; each run starts from an empty cache."""
    settings = SMALL.model_copy(update={"pool_size_per_label": 3, "max_tokens": 120, "server_threads": 2})
    runs = {n: generate_pool(settings.model_copy(update={"concurrency": n}), RUBRIC, 0.7, tmp_path / f"c{n}.sqlite")
            for n in (1, 2)}
    (pool_1, report_1), (pool_2, report_2) = runs[1], runs[2]
    assert (report_1["servers"], report_1["concurrency"]) == (1, 1)
    assert (report_2["servers"], report_2["concurrency"], report_2["stats"]["max_concurrency"]) == (2, 2, 2)
    assert len(pool_1) == 6 and report_1["stats"]["calls_made"] >= 2
    assert pool_1.drop(columns="call_id").equals(pool_2.drop(columns="call_id"))
    assert report_1["calls"] == report_2["calls"]


def test_managed_backend_starts_and_stops_its_own_server(tmp_path):
    settings = SMALL.model_copy(update={"pool_size_per_label": 2, "max_calls_per_label": 3, "concurrency": 1})
    pool, report = generate_pool(settings, RUBRIC, 0.5, tmp_path / "llm.sqlite")
    assert report["server_start_s"] is not None and report["stats"]["calls_made"] >= 2
    assert report["concurrency"] == 1 and report["stats"]["max_concurrency"] == 1 and report["servers"] == 1
    assert len(pool) >= 2
    # a rerun replays everything and starts no server
    _, again = generate_pool(settings, RUBRIC, 0.5, tmp_path / "llm.sqlite")
    assert again["server_start_s"] is None and again["stats"]["calls_made"] == 0


def test_failed_calls_never_become_data(tmp_path):
    from synthmix.errors import GenerationError
    from synthmix.llm.server import free_port

    settings = SMALL.model_copy(update={"backend": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
                                        "max_retries": 1, "request_timeout_s": 2})
    with pytest.raises(GenerationError, match="failed after 2 attempt"):
        generate_pool(settings, RUBRIC, 0.7, tmp_path / "llm.sqlite")
    assert len(ReplyCache(tmp_path / "llm.sqlite")) == 0


def test_api_key_never_reaches_cache_or_errors(tmp_path, monkeypatch):
    from synthmix.errors import GenerationError
    from synthmix.llm.server import free_port

    secret = "sk-test-" + "x7" * 16
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    settings = SMALL.model_copy(update={"backend": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
                                        "max_retries": 0, "request_timeout_s": 2})
    with pytest.raises(GenerationError) as failure:
        generate_pool(settings, RUBRIC, 0.7, tmp_path / "llm.sqlite")
    assert secret not in str(failure.value)
    assert secret.encode() not in (tmp_path / "llm.sqlite").read_bytes()


def fake_settings(server, **changes) -> GenerationParams:
    """Generation against the fault server: 10 responses asked per call, the pool sized by each test's targets."""
    return GenerationParams(backend="openai", base_url=server.base_url, model="fake-llm", responses_per_call=10,
                            max_tokens=300, max_calls_per_label=12, max_retries=8, request_timeout_s=1.0,
                            **changes)


def cache_bytes(folder) -> bytes:
    """Everything SQLite wrote for the caches in ``folder`` (database, WAL and shared-memory files)."""
    return b"".join(path.read_bytes() for path in sorted(folder.glob("*.sqlite*")))


def test_pool_is_the_same_at_any_concurrency_despite_faults(tmp_path):
    targets = {1: 34, 0: 21}
    pools, reports = {}, {}
    with fault_server(delay_s=0.1, fault_rate=0.3, hang_s=5) as server:
        for concurrency in (1, 8):
            settings = fake_settings(server, concurrency=concurrency)
            pools[concurrency], reports[concurrency] = generate_pool(settings, RUBRIC, 0.7, tmp_path / f"c{concurrency}.sqlite",
                                                                     targets=targets)
        faults = dict(server.faults)
        assert server.max_in_flight > 1
    assert pools[1].equals(pools[8])
    assert reports[1]["calls"] == reports[8]["calls"] and reports[1]["collected"] == {"positive": 34, "negative": 21}
    assert reports[8]["concurrency"] == 8 and sum(faults.values()) > 0 and reports[8]["stats"]["retries_this_run"] > 0
    for text in (ERROR_TEXT, REFUSAL_TEXT):
        assert text not in set(pools[8]["text"]) and text.encode() not in cache_bytes(tmp_path)
    assert not pools[8]["text"].str.contains("Here are").any()  # the meta lines the server adds
    assert reports[8]["rejects"]["positive"]["meta"] >= 1


def test_failures_never_reach_the_pool_or_the_cache(tmp_path):
    kinds = ("malformed_json", "empty", "error_text", "refusal")
    with fault_server(fault_rate=0.5, fault_kinds=kinds, max_faults_per_request=2) as server:
        pool, report = generate_pool(fake_settings(server, concurrency=4), RUBRIC, 0.3, tmp_path / "llm.sqlite",
                                     targets={1: 20, 0: 20})
        injected = sum(server.faults.values())
    assert injected > 0 and report["stats"]["retries_this_run"] == injected
    assert set(report["stats"]["retry_reasons"]) <= {"malformed JSON body", "empty content", "error text as content",
                                                    "refusal"}
    assert pool["text"].str.startswith("Could you show me step").all() and len(pool) == 40
    assert ERROR_TEXT.encode() not in cache_bytes(tmp_path) and REFUSAL_TEXT.encode() not in cache_bytes(tmp_path)


def test_rerun_reports_the_retries_of_replayed_calls(tmp_path):
    with fault_server(fault_rate=0.4, fault_kinds=("server_error", "error_text"), max_faults_per_request=2) as server:
        settings = fake_settings(server, concurrency=4)
        first_pool, first = generate_pool(settings, RUBRIC, 0.7, tmp_path / "llm.sqlite", targets={1: 25, 0: 25})
        requests_before = server.requests
        again_pool, again = generate_pool(settings, RUBRIC, 0.7, tmp_path / "llm.sqlite", targets={1: 25, 0: 25})
        assert server.requests == requests_before  # everything replayed
    assert 0 < first["stats"]["retries"] <= first["stats"]["retries_this_run"]
    assert again["stats"]["retries"] == first["stats"]["retries"] and again["stats"]["retries_this_run"] == 0
    assert again_pool.equals(first_pool)


def test_targets_per_label_and_a_smaller_pool_is_a_prefix_of_a_larger_one(tmp_path):
    with fault_server() as server:
        settings = fake_settings(server, concurrency=8)
        small, small_report = generate_pool(settings, RUBRIC, 0.7, tmp_path / "llm.sqlite", targets={1: 7, 0: 3})
        large, _ = generate_pool(settings, RUBRIC, 0.7, tmp_path / "llm.sqlite", targets={1: 26, 0: 15})
    assert small_report["collected"] == {"positive": 7, "negative": 3} and small_report["calls"] == {"positive": 1, "negative": 1}
    assert small_report["targets"] == {"positive": 7, "negative": 3} and not small_report["shortfall"]
    for label in (1, 0):
        head = large[large["label"] == label].head(len(small[small["label"] == label])).reset_index(drop=True)
        assert head.equals(small[small["label"] == label].reset_index(drop=True))


def test_pool_size_auto_needs_targets(tmp_path):
    from synthmix.errors import InputError

    with fault_server() as server:
        with pytest.raises(InputError, match="pool_size_per_label"):
            generate_pool(fake_settings(server, pool_size_per_label="auto"), RUBRIC, 0.7, tmp_path / "llm.sqlite")
        pool, _ = generate_pool(fake_settings(server, pool_size_per_label=5), RUBRIC, 0.7, tmp_path / "llm.sqlite")
    assert pool["label"].value_counts().to_dict() == {1: 5, 0: 5}


def test_sentinel_api_key_appears_nowhere_in_cache_or_report(tmp_path, monkeypatch):
    sentinel = "sk-sentinel-" + "z3" * 20
    monkeypatch.setenv("SYNTHMIX_SENTINEL_KEY", sentinel)
    with fault_server(fault_rate=0.3, fault_kinds=("server_error", "error_text")) as server:
        settings = fake_settings(server, api_key_env="SYNTHMIX_SENTINEL_KEY", concurrency=4)
        pool, report = generate_pool(settings, RUBRIC, 0.7, tmp_path / "llm.sqlite", targets={1: 10, 0: 10})
        assert server.authorization == {f"Bearer {sentinel}"}  # the key was really used
    assert sentinel.encode() not in cache_bytes(tmp_path)
    assert sentinel not in repr(report) and sentinel not in pool.to_csv()


def test_multi_item_data_gets_a_pool_per_item_written_to_its_own_question(tmp_path):
    """Two items: each gets its own responses (its question in the prompt), recorded on every row."""
    from dataclasses import replace

    rubric = replace(RUBRIC, items={"q1": replace(RUBRIC, item="q1", question="What is 1/2 + 1/3?"),
                                    "q2": replace(RUBRIC, item="q2", question="Why can't you add denominators?")})
    wanted = {"q1": {1: 6, 0: 4}, "q2": {1: 3, 0: 2}}
    with fault_server() as server:
        pool, report = generate_pool(fake_settings(server, concurrency=4), rubric, 0.7, tmp_path / "llm.sqlite",
                                     item_targets=wanted)
    counts = pool.groupby(["item", "label"]).size().to_dict()
    assert counts == {("q1", 1): 6, ("q1", 0): 4, ("q2", 1): 3, ("q2", 0): 2}
    assert report["by_item"]["q2"]["collected"] == {"positive": 3, "negative": 2}
    assert report["collected"] == {"positive": 9, "negative": 6}


def test_prompt_examples_from_human_data_come_from_the_training_split_only(tmp_path):
    """generation.examples: human_train: each call shows k human training responses of the label asked for,
    drawn afresh per call; none of a replicate's validation or test responses ever reaches a prompt."""
    import json
    import sqlite3

    from synthmix.data.splits import load_study_data
    from synthmix.params import parse_params

    human = load_study_data(parse_params({"study": "x"}), None, replicate=1)
    train = human["train"].to_pandas()
    held_out = set(human["validation"]["text"]) | set(human["test"]["text"])
    with fault_server() as server:
        settings = fake_settings(server, concurrency=4, examples="human_train", examples_per_call=3)
        pool, _ = generate_pool(settings, RUBRIC, 0.7, tmp_path / "llm.sqlite", targets={1: 25, 0: 25},
                                human_examples=train)
    assert len(pool) == 50
    requests = [json.loads(r[0]) for r in sqlite3.connect(tmp_path / "llm.sqlite").execute("SELECT request FROM replies")]
    shown_sets = []
    for request in requests:
        user = request["messages"][1]["content"]
        label = 1 if "Examples of positive responses" in user else 0
        block = user.split("responses:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert len(block) == 3
        assert set(block) <= set(train.loc[train["label"] == label, "text"]) and not set(block) & held_out
        shown_sets.append(frozenset(block))
    assert len(set(shown_sets)) > 1  # drawn afresh per call
    assert not set(pool["text"]) & set(train["text"])  # a copied example never becomes a synthetic response
