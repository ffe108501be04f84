"""A generic LLM-judge client for any OpenAI-compatible chat-completions endpoint.

- Bounded concurrency (a thread pool sharing one OpenAI client).
- Retries with exponential backoff and jitter on 429, 408, 409, 5xx, timeouts and dropped connections; a
  `Retry-After` / `retry-after-ms` header is honoured (up to `retry_after_max` seconds). 401/403/404 abort the run.
- An append-only JSONL cache: one line per completed call, written (and flushed) the moment the reply arrives, keyed by
  sha256(model, messages, sampling parameters). The messages hold the prompt, the reference and the prediction, so the
  key covers all four. A re-run or a resumed run (after a crash or kill) sends no call whose reply is in the cache.
  Replies are stored raw and parsed on use, so a better reply parser needs no new calls. Only answers are stored:
  failures and blank replies never are, so a re-run asks exactly the calls that have no answer yet.
- A reply the `parse` function rejects is asked once more (a second call, also cached); two rejected replies make the
  item "unparseable". A blank reply (a content filter, a length cut) is asked once more; two make the item fail.
  A 200 that is not a chat completion fails the item. Nothing else is guessed.
- What a failed item does to a task's metrics is eval/judging.py's business (partial or null, never a stop).
- A request budget (HTTP requests sent by this run, retries included); a tqdm progress bar on stderr.
- The API key is read only from the environment (OPENAI_API_KEY) by the client; it is never stored, logged or part of
  the cache key. A fully cached run needs no key and no network.
- Also the client of the zero-shot API baselines (eval/api_baseline.py): messages may carry image parts, may be built
  lazily (a callable, called just before the call) and may have an explicit cache `key` (a description of exactly what
  would be sent, e.g. the media's sha256 and frame indices, so that cached items are never built).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import random
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common.errors import UserError, where

DEFAULT_MODEL = "gpt-4.1"
KEY_ENV = "OPENAI_API_KEY"
FATAL_STATUS = (401, 403, 404)
RETRY_STATUS = (408, 409, 429)


class JudgeError(Exception):
    """The judge cannot run at all (no key, authentication refused, unknown model/endpoint)."""


class _ItemError(Exception):
    """This item's call failed for good (retries or budget exhausted, or a non-retryable reply)."""


@dataclass(frozen=True)
class JudgeRequest:
    # chat messages (content: a string or OpenAI content parts), or a callable returning them (built just before the
    # call, so large requests, e.g. video frames, are never all held in memory and cached ones are never built)
    messages: Sequence[dict[str, Any]] | Callable[[], Sequence[dict[str, Any]]]
    info: dict[str, Any] = field(default_factory=dict)  # stored in the cache beside the reply, for auditing
    # cache identity instead of the messages (required for callable messages): must determine them completely
    key: str | None = None


@dataclass
class JudgeResult:
    status: str  # "ok" | "unparseable" | "failed"
    value: Any = None
    replies: list[str] = field(default_factory=list)
    error: str | None = None
    calls: int = 0  # calls made by this run for this item (0 = answered from the cache)


@dataclass
class JudgeStats:
    items: int = 0  # distinct requests
    cached: int = 0  # answered entirely from the cache
    calls: int = 0  # completed calls (replies received) in this run
    http_requests: int = 0  # HTTP requests sent in this run, retries included (what the budget counts)
    retries: int = 0
    unparseable: int = 0
    failed: int = 0
    empty: int = 0  # blank replies received (never cached; asked once more, then the item fails)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def cache_key(model: str, messages: Sequence[dict[str, Any]], params: dict[str, Any]) -> str:
    blob = json.dumps({"model": model, "messages": list(messages), "params": params}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


_ENTRY_START = '{"key": '  # how every cache line begins (json.dumps of the entry, "key" first)


class JudgeCache:
    """Append-only JSONL: {"key", "model", "reply", "info", "time"} per completed call. Thread-safe.

    Only answers are stored: blank replies never are (and are ignored in caches written before that rule). A line
    cut short by a kill is skipped (that call is simply made again). A file that is not such a cache (not UTF-8, or
    lines that are not cache entries) is refused with one line naming it, so that nothing is appended to it.
    """

    def __init__(self, path: str | os.PathLike[str] | None, flag: str = "--judge-cache"):
        self.path = Path(path) if path else None
        self.flag = flag
        self.replies: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._fh = None
        if self.path and self.path.is_dir():
            raise UserError(f"{flag} {self.path}: is a directory; {flag} names the reply cache file (JSONL)")
        if self.path and self.path.exists():
            self._load()

    def _load(self) -> None:
        with self.path.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                body = raw.rstrip(b"\r\n")
                try:
                    line = body.decode("utf-8")
                except UnicodeDecodeError as bad:
                    if bad.reason == "unexpected end of data" and body.startswith(_ENTRY_START.encode()):
                        continue  # a kill cut a multi-byte character short
                    raise UserError(f"{where(self.path, lineno)}: not UTF-8 text ({bad.reason} at byte {bad.start + 1}"
                                    f" of the line): {self.flag} must name a reply cache this tool wrote") from None
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    if line.startswith(_ENTRY_START) or _ENTRY_START.startswith(line):
                        continue  # cut short by a kill
                    entry = None
                if not (isinstance(entry, dict) and isinstance(entry.get("key"), str)
                        and isinstance(entry.get("reply"), str)):
                    raise UserError(f"{where(self.path, lineno)}: not a reply cache entry (a JSON object with "
                                    f"\"key\" and \"reply\"): {self.flag} must name a reply cache this tool wrote")
                if entry["reply"].strip():
                    self.replies.setdefault(entry["key"], []).append(entry["reply"])

    def get(self, key: str) -> list[str]:
        return list(self.replies.get(key, ()))

    def add(self, key: str, model: str, reply: str, info: dict[str, Any]) -> None:
        with self._lock:
            self.replies.setdefault(key, []).append(reply)
            if self.path is None:
                return
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                needs_newline = self.path.exists() and self.path.stat().st_size > 0 and _last_byte(self.path) != b"\n"
                self._fh = self.path.open("a", encoding="utf-8")
                if needs_newline:
                    self._fh.write("\n")
            entry = {"key": key, "model": model, "reply": reply, "info": info,
                     "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds asked for by `retry-after-ms` or `Retry-After` (delta-seconds or an HTTP date), else None."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class Judge:
    """Judge many requests once each. `run(requests, parse)` returns one `JudgeResult` per request, in order."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        base_url: str | None = None,
        cache_path: str | os.PathLike[str] | None = None,
        concurrency: int = 16,
        max_retries: int = 6,
        timeout: float = 60.0,
        budget: int | None = None,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        retry_after_max: float = 600.0,
        progress: bool | None = None,
        name: str = "judge",
        model_flag: str = "--judge-model",
        cache_flag: str = "--judge-cache",
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.cache = JudgeCache(cache_path, cache_flag)
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.budget = budget
        self.params = {k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None}
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.progress = progress
        self.name, self.model_flag = name, model_flag  # for error messages
        self.stats = JudgeStats()
        self._client = None
        self._client_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self._fatal: str | None = None

    # -- public ------------------------------------------------------------------------------------------------

    def run(self, requests: Sequence[JudgeRequest], parse: Callable[[str], Any],
            desc: str = "judge") -> list[JudgeResult]:
        from tqdm import tqdm

        keys = [self.key(r) for r in requests]
        unique: dict[str, JudgeRequest] = {}
        for key, request in zip(keys, requests, strict=True):
            unique.setdefault(key, request)
        self.stats.items += len(unique)
        results: dict[str, JudgeResult] = {}
        pending = []
        for key, request in unique.items():
            result = self._resolve(self.cache.get(key), parse)
            if result is None:
                pending.append((key, request))
            else:
                results[key] = result
                self.stats.cached += 1
        bar = tqdm(total=len(unique), initial=len(unique) - len(pending), desc=desc, unit="call", file=sys.stderr,
                   disable=None if self.progress is None else not self.progress, dynamic_ncols=True)
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(pending))))
        try:
            futures = {pool.submit(self._judge_one, key, request, parse): key for key, request in pending}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
        except BaseException:
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()
            self.cache.close()
        pool.shutdown(wait=True)
        if self._fatal:
            raise JudgeError(self._fatal)
        for result in results.values():
            if result.status == "unparseable":
                self.stats.unparseable += 1
            elif result.status == "failed":
                self.stats.failed += 1
        return [results[key] for key in keys]

    def key(self, request: JudgeRequest) -> str:
        """The cache key of `request`: sha256 of (model, its messages or its explicit key, sampling parameters)."""
        if request.key is not None:
            return cache_key(self.model, [{"key": request.key}], self.params)
        if callable(request.messages):
            raise ValueError("a request with callable messages needs an explicit key")
        return cache_key(self.model, request.messages, self.params)

    # -- internals -----------------------------------------------------------------------------------------------

    @staticmethod
    def _resolve(replies: list[str], parse: Callable[[str], Any]) -> JudgeResult | None:
        """Outcome from the replies so far, or None when another call is due (none yet, or one rejected)."""
        for reply in replies:
            value = parse(reply)
            if value is not None:
                return JudgeResult("ok", value, list(replies))
        if len(replies) >= 2:
            return JudgeResult("unparseable", None, list(replies))
        return None

    def _judge_one(self, key: str, request: JudgeRequest, parse: Callable[[str], Any]) -> JudgeResult:
        replies = self.cache.get(key)
        calls = blanks = 0
        while True:
            result = self._resolve(replies, parse)
            if result is not None:
                result.calls = calls
                return result
            try:
                reply, finish = self._call(request.messages)
            except _ItemError as exc:
                return JudgeResult("failed", None, replies, error=str(exc), calls=calls)
            calls += 1
            if not reply.strip():  # not an answer (a content filter, a length cut): never cached, asked once more
                blanks += 1
                with self._count_lock:
                    self.stats.empty += 1
                if blanks >= 2:
                    return JudgeResult("failed", None, replies, calls=calls,
                                       error=f"empty reply twice (finish_reason {finish})")
                continue
            self.cache.add(key, self.model, reply, request.info)
            replies.append(reply)

    def _get_client(self):
        with self._client_lock:
            if self._client is None:
                if not os.environ.get(KEY_ENV):
                    raise JudgeError(f"{KEY_ENV} is not set; the {self.name} reads its API key only from the "
                                     f"environment (for a local server without authentication set it to any value, "
                                     f"e.g. EMPTY)")
                import openai

                self._client = openai.OpenAI(base_url=self.base_url, timeout=self.timeout, max_retries=0)
            return self._client

    def _take_request(self) -> None:
        with self._count_lock:
            if self.budget is not None and self.stats.http_requests >= self.budget:
                raise _ItemError(f"request budget of {self.budget} exhausted")
            self.stats.http_requests += 1

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)

    def _call(self, messages) -> tuple[str, str | None]:
        """(the reply's text, its finish_reason) of one completed call; raises `_ItemError` when the item fails."""
        import openai

        try:
            client = self._get_client()
        except JudgeError as exc:
            self._abort(str(exc))
            raise _ItemError(str(exc)) from None
        if callable(messages):
            if self._stop.is_set():
                raise _ItemError("aborted")
            try:
                messages = messages()
            except Exception as exc:  # e.g. a video that cannot be decoded: this item fails, the others go on
                raise _ItemError(f"cannot build the request: {type(exc).__name__}: {_short(exc)}") from None
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            if self._stop.is_set():
                raise _ItemError("aborted")
            self._take_request()
            retry_after = None
            try:
                response = client.chat.completions.create(model=self.model, messages=list(messages), **self.params)
                with self._count_lock:
                    self.stats.calls += 1
                choices = getattr(response, "choices", None)
                choice = choices[0] if isinstance(choices, list) and choices else None
                message = getattr(choice, "message", None)
                if message is None:  # a 200 that is not a chat completion (a proxy's page, an error body)
                    raise _ItemError("malformed reply (a 200 without choices[0].message)")
                content = getattr(message, "content", None)
                return (content if isinstance(content, str) else ""), getattr(choice, "finish_reason", None)
            except openai.APIStatusError as exc:
                status = exc.status_code
                last = f"HTTP {status}: {_short(_status_message(exc))}"
                if status in FATAL_STATUS:
                    self._abort(f"{self.name} endpoint refused the request ({last}); check {KEY_ENV}, "
                                f"{self.model_flag} {self.model!r} and the base URL")
                    raise _ItemError(last) from None
                if status not in RETRY_STATUS and status < 500:
                    raise _ItemError(last) from None
                retry_after = retry_after_seconds(getattr(exc.response, "headers", None))
            except openai.APITimeoutError:
                last = f"timed out after {self.timeout:g} s"
            except openai.APIConnectionError as exc:
                last = f"connection error: {_short(exc)}"
            except _ItemError:
                raise
            except Exception as exc:  # a response body that is not JSON, for instance
                raise _ItemError(f"malformed reply ({type(exc).__name__}: {_short(exc)})") from None
            if attempt == self.max_retries:
                break
            with self._count_lock:
                self.stats.retries += 1
            if self._stop.wait(self._delay(attempt, retry_after)):
                raise _ItemError("aborted")
        raise _ItemError(f"gave up after {self.max_retries + 1} attempts ({last})")

    def _abort(self, message: str) -> None:
        with self._count_lock:
            if self._fatal is None:
                self._fatal = message
        self._stop.set()


def _status_message(exc: Exception) -> str:
    """The server's own error message, without the client's "Error code: 400 - " prefix."""
    text = str(exc)
    prefix = f"Error code: {getattr(exc, 'status_code', '')}"
    text = text[len(prefix):].lstrip(" -") if text.startswith(prefix) else text
    body = getattr(exc, "body", None)
    return text or (body.strip() if isinstance(body, str) and body.strip() else "no message")


def _short(exc: BaseException | str, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
