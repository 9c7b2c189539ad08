"""The reply cache checks itself: a changed reply is a counted miss (never data) and is replaced by the
next valid reply; a corrupt database file is one line naming the file and the remedy; old caches migrate."""

from __future__ import annotations

import sqlite3

import pytest

from synthmix.llm.cache import CacheCorrupt, ChatReply, ReplyCache, reply_checksum


def stored(path, text="a reply", seconds=1.5) -> ReplyCache:
    cache = ReplyCache(path)
    cache.put("k", {"model": "m", "temperature": 0.7, "max_tokens": 50}, ChatReply(text, "id", False, 3, 4, "stop",
                                                                              seconds=seconds))
    return cache


def test_a_reply_replays_with_the_seconds_of_its_original_call(tmp_path):
    cache = stored(tmp_path / "c.sqlite")
    assert cache.get("k") == ChatReply("a reply", "id", True, 3, 4, "stop", 1, 1.5)
    assert cache.call_records() == [{"model": "m", "temperature": 0.7, "max_tokens": 50, "prompt_tokens": 3,
                                     "completion_tokens": 4, "seconds": 1.5}]
    assert cache.mismatches == 0


def test_a_changed_reply_is_a_counted_miss_and_is_replaced(tmp_path):
    path = tmp_path / "c.sqlite"
    stored(path).close()
    with sqlite3.connect(path) as raw:  # bytes changed inside the stored text; SQLite's own check still passes
        raw.execute("UPDATE replies SET text = 'a replY' WHERE key = 'k'")
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    cache = ReplyCache(path)
    assert cache.get("k") is None and cache.mismatches == 1  # a miss: the caller calls again
    again = cache.put("k", {}, ChatReply("fresh reply", "id2", False, 3, 5, "stop", seconds=2.0))
    assert again.text == "fresh reply" and cache.get("k").text == "fresh reply"  # the bad row is replaced
    assert cache.put("k", {}, ChatReply("later", "id3", False, 1, 1, "stop")).text == "fresh reply"  # first valid wins


@pytest.mark.parametrize("damage", ["header", "page"])
def test_a_corrupt_database_is_one_line_naming_the_file_and_the_remedy(tmp_path, damage):
    path = tmp_path / "llm_cache.sqlite"
    cache = stored(path)
    for n in range(300):  # a few pages of replies
        cache.put(f"k{n}", {}, ChatReply("x" * 200, "id", False, 1, 1, "stop"))
    cache.close()
    data = bytearray(path.read_bytes())
    start = 0 if damage == "header" else 4096 * 2
    data[start:start + 200] = b"\x17" * 200
    path.write_bytes(bytes(data))
    with pytest.raises(CacheCorrupt) as error:
        ReplyCache(path).check()
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}: the LLM reply cache is corrupt")
    assert f"mv {path} {path}.corrupt" in message


def test_a_cache_from_before_checksums_and_seconds_migrates(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE replies (key TEXT PRIMARY KEY, call_id TEXT, request TEXT, text TEXT,"
                    " prompt_tokens INTEGER, completion_tokens INTEGER, finish_reason TEXT, created REAL)")
        old.execute("INSERT INTO replies VALUES ('k', 'id-1', '{}', 'an old reply', 3, 4, 'stop', 0)")
    cache = ReplyCache(path)
    assert cache.get("k") == ChatReply("an old reply", "id-1", True, 3, 4, "stop", 1, None)  # seconds unknown
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT checksum FROM replies").fetchone()[0] == reply_checksum("an old reply", "id-1", 3, 4,
                                                                                         "stop")
