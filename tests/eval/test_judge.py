"""The generic judge client against a real OpenAI-compatible HTTP server on 127.0.0.1
(tests/support/judge_server.py)."""

from __future__ import annotations

import json
import threading

import pytest

from common.errors import UserError
from eval.deeptrace import judge_messages
from eval.judge import Judge, JudgeCache, JudgeError, JudgeRequest, cache_key, retry_after_seconds
from prompts.deeptrace import JUDGE_PROMPT, parse_judge_score
from tests.support.judge_server import JudgeServer, rule_judge

SECRET = "sk-test-DO-NOT-LEAK-5b1f"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def request(text: str) -> JudgeRequest:
    return JudgeRequest([{"role": "user", "content": text}], info={"text": text})


def sequence(*actions):
    """A script that plays `actions` in order, then answers "1"."""
    lock, queue = threading.Lock(), list(actions)

    def script(_request):
        with lock:
            return queue.pop(0) if queue else {"reply": "1"}

    return script


def make(server, tmp_path=None, **kw):
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("progress", False)
    return Judge("judge-test", base_url=server.base_url, cache_path=tmp_path / "cache.jsonl" if tmp_path else None,
                 **kw)


def test_parse_judge_score():
    for reply, value in [("0", 0.0), ("0.5", 0.5), ("1", 1.0), ("1.0", 1.0), (" 1.", 1.0), ("**0.5**", 0.5),
                         ("Answer      : 0.5", 0.5), ("Score: 1 (1 = correct)", 1.0), (".5", 0.5)]:
        assert parse_judge_score(reply) == value, reply
    for reply in ["", "maybe", "0.7", "2", "0 or 1", "0.5/1", "Answer: half"]:
        assert parse_judge_score(reply) is None, reply


def test_judge_prompt_is_the_paper_text_plus_one_pair():
    assert JUDGE_PROMPT.startswith("You will receive a ground-truth explanation and a model-predicted explanation.\n")
    assert JUDGE_PROMPT.endswith("Predicted   : 'The lamp bulb is pixelated but stable.'\nAnswer      : 0.5\n")
    assert JUDGE_PROMPT.count("Ground Truth: '") == 3 and "\u2019" not in JUDGE_PROMPT
    (message,) = judge_messages("The dog has\nfive legs.", "  A dog with  five legs ")
    assert message["role"] == "user"
    assert message["content"] == (JUDGE_PROMPT + "\nGround Truth: 'The dog has five legs.'\n"
                                  "Predicted   : 'A dog with five legs'\nAnswer      :")
    assert rule_judge(message["content"]) == "0"  # the test server reads the last pair, not the examples
    assert rule_judge(judge_messages("Same words here", "same  words here")[0]["content"]) == "1"


def test_scripted_replies_in_order_and_key_sent_but_never_stored(tmp_path):
    with JudgeServer() as server:
        judge = make(server, tmp_path, concurrency=4)
        predicted = ["The object 0 bends.", "The object 1 is blurry.", "A cat.", "The object 3 bends."]
        texts = [judge_messages(f"The object {i} bends.", p)[0]["content"] for i, p in enumerate(predicted)]
        results = judge.run([request(t) for t in texts], parse_judge_score)
    assert [r.value for r in results] == [1.0, 0.5, 0.0, 1.0]
    assert all(r.status == "ok" and r.calls == 1 for r in results)
    assert {e["auth"] for e in server.log} == {f"Bearer {SECRET}"}
    assert {e["model"] for e in server.log} == {"judge-test"}
    assert SECRET not in (tmp_path / "cache.jsonl").read_text()


def test_duplicates_are_judged_once(tmp_path):
    with JudgeServer(sequence()) as server:
        results = make(server, tmp_path).run([request("a"), request("b"), request("a")], lambda r: r)
    assert len(server.log) == 2 and [r.value for r in results] == ["1", "1", "1"]


def test_retry_after_is_honoured(tmp_path):
    # With Retry-After ignored, the backoff (base 20 s) would wait 10-20 s; honoured, it waits 1 s.
    with JudgeServer(sequence({"status": 429, "headers": {"Retry-After": "1"}})) as server:
        judge = make(server, backoff_base=20.0)
        (result,) = judge.run([request("x")], parse_judge_score)
    assert result.value == 1.0
    first, second = server.log
    assert first["outcome"] == "status" and second["outcome"] == "answered"
    assert 0.95 <= second["t"] - first["t"] < 5.0
    assert judge.stats.retries == 1 and judge.stats.http_requests == 2


def test_retry_after_parsing():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None and retry_after_seconds(None) is None


def test_server_errors_and_dropped_connections_are_retried(tmp_path):
    with JudgeServer(sequence({"status": 500}, {"drop": True}, {"status": 503}, {"reply": "0.5"})) as server:
        judge = make(server, tmp_path)
        (result,) = judge.run([request("x")], parse_judge_score)
    assert result.value == 0.5
    assert [e["outcome"] for e in server.log] == ["status", "dropped", "status", "answered"]
    assert judge.stats.retries == 3


def test_slow_reply_times_out_and_is_retried(tmp_path):
    with JudgeServer(sequence({"sleep": 2.0, "reply": "0"}, {"reply": "1"})) as server:
        judge = make(server, tmp_path, timeout=0.5)
        (result,) = judge.run([request("x")], parse_judge_score)
        assert result.value == 1.0  # the late "0" never arrived
        assert len(server.log) == 2
    lines = (tmp_path / "cache.jsonl").read_text().splitlines()
    assert [json.loads(line)["reply"] for line in lines] == ["1"]


def test_gives_up_after_max_retries(tmp_path):
    with JudgeServer(lambda r: {"status": 500}) as server:
        judge = make(server, tmp_path, max_retries=2)
        (result,) = judge.run([request("x")], parse_judge_score)
    assert result.status == "failed" and "HTTP 500" in result.error and len(server.log) == 3
    assert not (tmp_path / "cache.jsonl").exists()  # failures are not cached: a re-run tries again


def test_non_retryable_status_fails_the_item_only(tmp_path):
    with JudgeServer(sequence({"status": 400})) as server:
        results = make(server, tmp_path, concurrency=1).run([request("x"), request("y")], parse_judge_score)
    assert [r.status for r in results] == ["failed", "ok"] and len(server.log) == 2


def test_authentication_failure_aborts_the_run(tmp_path):
    with JudgeServer(lambda r: {"status": 401}) as server:
        judge = make(server, tmp_path, concurrency=1)
        with pytest.raises(JudgeError, match="HTTP 401"):
            judge.run([request(str(i)) for i in range(5)], parse_judge_score)
    assert len(server.log) == 1


def test_missing_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with JudgeServer(sequence()) as server:
        with pytest.raises(JudgeError, match="OPENAI_API_KEY is not set"):
            make(server, tmp_path).run([request("x")], parse_judge_score)
        assert server.log == []
        # a run answered entirely from the cache needs no key
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        make(server, tmp_path).run([request("x")], parse_judge_score)
        monkeypatch.delenv("OPENAI_API_KEY")
        (result,) = make(server, tmp_path).run([request("x")], parse_judge_score)
    assert result.value == 1.0 and result.calls == 0 and len(server.log) == 1


def test_unparseable_reply_is_asked_once_more(tmp_path):
    with JudgeServer(sequence({"reply": "maybe"}, {"reply": "0.5"}, {"reply": "hmm"}, {"reply": "no idea"})) as server:
        judge = make(server, tmp_path, concurrency=1)
        first, second = judge.run([request("a"), request("b")], parse_judge_score)
    assert (first.status, first.value, first.replies, first.calls) == ("ok", 0.5, ["maybe", "0.5"], 2)
    assert (second.status, second.value, second.replies, second.calls) == ("unparseable", None, ["hmm", "no idea"], 2)
    assert len(server.log) == 4 and judge.stats.unparseable == 1
    # a re-run asks nothing: both outcomes come from the cache
    with JudgeServer(sequence()) as server:
        again = make(server, tmp_path).run([request("a"), request("b")], parse_judge_score)
    assert [r.status for r in again] == ["ok", "unparseable"] and server.log == []


def test_a_rejected_reply_cut_off_before_its_retry_gets_only_the_retry(tmp_path):
    with JudgeServer(sequence({"reply": "maybe"})) as server:
        (result,) = make(server, tmp_path, budget=1).run([request("a")], parse_judge_score)
    assert result.status == "failed" and "budget" in result.error and len(server.log) == 1
    with JudgeServer(sequence({"reply": "1"})) as server:
        (result,) = make(server, tmp_path).run([request("a")], parse_judge_score)
    assert (result.value, result.replies, result.calls) == (1.0, ["maybe", "1"], 1) and len(server.log) == 1


def test_request_budget(tmp_path):
    with JudgeServer(sequence()) as server:
        judge = make(server, tmp_path, budget=3, concurrency=1)
        results = judge.run([request(str(i)) for i in range(5)], parse_judge_score)
    assert [r.status for r in results].count("ok") == 3 and len(server.log) == 3
    assert all("budget of 3 exhausted" in r.error for r in results if r.status == "failed")


def test_concurrency_is_bounded_and_used():
    with JudgeServer(sequence(), latency=0.3) as server:
        judge = make(server, concurrency=6)
        results = judge.run([request(str(i)) for i in range(18)], parse_judge_score)
    assert all(r.value == 1.0 for r in results)
    assert server.max_in_flight == 6


def test_cache_key_covers_model_prompt_and_params():
    messages = judge_messages("gt", "pred")
    key = cache_key("m", messages, {"temperature": 0.0})
    assert key == cache_key("m", judge_messages("gt", "pred"), {"temperature": 0.0})
    assert key != cache_key("m2", messages, {"temperature": 0.0})
    assert key != cache_key("m", judge_messages("gt2", "pred"), {"temperature": 0.0})
    assert key != cache_key("m", judge_messages("gt", "pred2"), {"temperature": 0.0})
    assert key != cache_key("m", messages, {"temperature": 1.0})


def test_cache_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "cache.jsonl"
    cache = JudgeCache(path)
    cache.add("k1", "m", "1", {})
    cache.close()
    with path.open("a") as fh:
        fh.write('{"key": "k2", "model": "m", "rep')  # killed mid-write
    cache = JudgeCache(path)
    assert cache.get("k1") == ["1"] and cache.get("k2") == []
    cache.add("k2", "m", "0.5", {})
    cache.close()
    assert JudgeCache(path).get("k2") == ["0.5"]
    assert all(json.loads(line)["key"] for line in path.read_text().splitlines()[-1:])


def test_blank_replies_are_never_cached_and_asked_once_more(tmp_path):
    # a blank reply then an answer: the answer counts, only it is cached
    with JudgeServer(sequence({"reply": "", "finish_reason": "content_filter"}, {"reply": "0.5"})) as server:
        judge = make(server, tmp_path)
        (result,) = judge.run([request("a")], parse_judge_score)
    assert (result.status, result.value, result.calls) == ("ok", 0.5, 2) and judge.stats.empty == 1
    assert [json.loads(line)["reply"] for line in (tmp_path / "cache.jsonl").read_text().splitlines()] == ["0.5"]
    # two blank replies (whitespace is blank too): the item fails, nothing is cached, a re-run asks again
    with JudgeServer(sequence({"reply": "  \n", "finish_reason": "content_filter"},
                                   {"reply": "", "finish_reason": "content_filter"})) as server:
        (result,) = make(server, tmp_path).run([request("b")], parse_judge_score)
        assert result.status == "failed" and result.error == "empty reply twice (finish_reason content_filter)"
        assert len(server.log) == 2
    assert len((tmp_path / "cache.jsonl").read_text().splitlines()) == 1
    with JudgeServer(sequence()) as server:
        (result,) = make(server, tmp_path).run([request("b")], parse_judge_score)
    assert result.value == 1.0 and len(server.log) == 1


def test_blank_replies_in_an_old_cache_are_not_answers(tmp_path):
    """Caches written before blank replies were refused may hold them: they are skipped, and the call is made."""
    with JudgeServer(sequence()) as server:
        judge = make(server, tmp_path)
        key = judge.key(request("a"))
        (tmp_path / "cache.jsonl").write_text(json.dumps({"key": key, "model": "judge-test", "reply": ""}) + "\n"
                                              + json.dumps({"key": key, "model": "judge-test", "reply": " "}) + "\n")
        (result,) = judge.run([request("a")], lambda r: r)
    assert (result.status, result.value, result.replies, result.calls) == ("ok", "1", ["1"], 1)
    assert len(server.log) == 1


def test_a_malformed_200_fails_the_item_and_is_not_cached(tmp_path):
    script = sequence({"raw": "<html>proxy error</html>"}, {"payload": {"object": "error"}},
                      {"payload": {"choices": []}})
    with JudgeServer(script) as server:
        results = make(server, tmp_path, concurrency=1).run([request(c) for c in "abcd"], parse_judge_score)
    assert [r.status for r in results] == ["failed", "failed", "failed", "ok"]
    assert results[0].error.startswith("malformed reply (JSONDecodeError: ")
    assert results[1].error == results[2].error == "malformed reply (a 200 without choices[0].message)"
    assert [e["outcome"] for e in server.log] == ["malformed"] * 3 + ["answered"]
    assert len((tmp_path / "cache.jsonl").read_text().splitlines()) == 1


def test_a_content_filter_400_names_the_servers_message(tmp_path):
    with JudgeServer(lambda r: {"status": 400, "message": "The response was filtered (content management policy)"}
                     ) as server:
        (result,) = make(server, tmp_path).run([request("x")], parse_judge_score)
    assert result.error == "HTTP 400: The response was filtered (content management policy)"
    assert len(server.log) == 1 and not (tmp_path / "cache.jsonl").exists()  # not retried, not cached


def test_a_file_that_is_not_a_reply_cache_is_refused_and_left_alone(tmp_path):
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b'{"key": "k", "model": "m", "reply": "1"}\n\xff\xd8\xff\xe0 JFIF\n')
    with pytest.raises(UserError, match=r"photo.jpg:2: not UTF-8 text \(invalid start byte at byte 1 of the line\): "
                                        r"--judge-cache must name a reply cache"):
        JudgeCache(binary)
    notes = tmp_path / "notes.txt"
    notes.write_text('{"key": "k", "model": "m", "reply": "1"}\nmy notes\n')
    with pytest.raises(UserError, match=r"notes.txt:2: not a reply cache entry"):
        JudgeCache(notes, "--cache")
    listing = tmp_path / "preds.jsonl"
    listing.write_text('{"response": "FAKE"}\n')
    with pytest.raises(UserError, match=r"preds.jsonl:1: not a reply cache entry"):
        JudgeCache(listing)
    with pytest.raises(UserError, match="is a directory"):
        JudgeCache(tmp_path)
    assert notes.read_text() == '{"key": "k", "model": "m", "reply": "1"}\nmy notes\n'
    # a kill in the middle of a multi-byte character is a torn line, not a foreign file
    cache = tmp_path / "cache.jsonl"
    cache.write_bytes('{"key": "k1", "model": "m", "reply": "1"}\n{"key": "k2", "model": "m", "reply": "é'
                      .encode()[:-1] + b"\n" + b'{"key": "k3", "model": "m", "reply": "0"}\n')
    loaded = JudgeCache(cache)
    assert loaded.get("k1") == ["1"] and loaded.get("k2") == [] and loaded.get("k3") == ["0"]
