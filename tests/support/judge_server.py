"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for judge tests, benchmarks and the README demo.

`JudgeServer(script=...)` serves `POST …/chat/completions` from a thread. For each request, `script(request)` returns
an action (default: `rule_judge`, which scores the App. D prompt's last `Ground Truth` / `Predicted` pair):

    {"reply": "1"}                                  200 with that message content
    {"reply": "", "finish_reason": "content_filter"} 200, blank content and that finish_reason (default "stop")
    {"status": 400, "message": "content filter"}     an error status with that error message (OpenAI's error body)
    {"raw": "<html>oops</html>"}                     200 whose body is that text, not a chat completion
    {"payload": {"object": "error"}}                 200 whose body is that JSON object
    {"status": 429, "headers": {"Retry-After": "1"}} an error status (500, 401, ...) with optional headers
    {"sleep": 2.0, "reply": "1"}                     answer late (a client timeout fires first)
    {"drop": True}                                   close the connection without any response
    {"hold": threading.Event()}                      wait until the event is set, then drop (never answered)

Every request is logged (`server.log`): arrival index, prompt (the last message's text; for content parts, its text
parts joined by newlines), the whole request body (`body`: model, messages with image parts, sampling parameters),
authorization header, action and outcome ("answered", "status", "malformed", "dropped", "late").

Command line (for demos and benchmarks): `python tests/support/judge_server.py [--port 0] [--latency 0.2]` prints the
base URL and serves the rule judge until interrupted.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PAIR = re.compile(r"Ground Truth: '(.*)'\nPredicted\s*: '(.*)'\nAnswer\s*:\s*\Z")


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default listen backlog (5) resets connections at high client concurrency
    daemon_threads = True


def rule_judge(prompt: str) -> str:
    """A deterministic stand-in for GPT-4.1: identical → 1, same first two words → 0.5, else 0."""
    m = _PAIR.search(prompt)
    if not m:
        return "I need a ground truth and a prediction."
    gt, pred = (" ".join(s.lower().split()) for s in m.groups())
    if gt == pred:
        return "1"
    if gt.split()[:2] == pred.split()[:2]:
        return "0.5"
    return "0"


def default_script(request: dict[str, Any]) -> dict[str, Any]:
    return {"reply": rule_judge(request["prompt"])}


class JudgeServer:
    def __init__(self, script: Callable[[dict[str, Any]], dict[str, Any]] | None = None, latency: float = 0.0,
                 port: int = 0):
        self.script = script or default_script
        self.latency = latency
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.holds: list[threading.Event] = []
        self.in_flight = 0
        self.max_in_flight = 0  # most requests being handled at the same time
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between header and body writes

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server._handle(self, body)

        self.httpd = _Server(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> JudgeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for event in self.holds:
            event.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def answered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.log if e["outcome"] == "answered"]

    def _handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._respond(handler, body)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _respond(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        messages = body.get("messages") or [{}]
        prompt = messages[-1].get("content", "")
        if isinstance(prompt, list):  # OpenAI content parts (text and image_url)
            prompt = "\n".join(p.get("text", "") for p in prompt if isinstance(p, dict) and p.get("type") == "text")
        with self.lock:
            entry = {"n": len(self.log), "t": time.monotonic(), "prompt": prompt, "model": body.get("model"),
                     "body": body, "auth": handler.headers.get("Authorization"), "outcome": "pending"}
            self.log.append(entry)
        action = self.script({"n": entry["n"], "prompt": prompt, "body": body})
        entry["action"] = {k: v for k, v in action.items() if k != "hold"}
        if "hold" in action:
            self.holds.append(action["hold"])
            action["hold"].wait()
            action = {"drop": True}
        if action.get("drop"):
            entry["outcome"] = "dropped"
            handler.close_connection = True
            return
        delay = action.get("sleep", self.latency)
        if delay:
            time.sleep(delay)
        if "status" in action:
            payload = {"error": {"message": action.get("message", "scripted error"), "type": "test", "code": None}}
            self._send(handler, action["status"], payload, action.get("headers", {}))
            entry["outcome"] = "status"
            return
        if "raw" in action or "payload" in action:
            ok = self._send(handler, 200, action.get("payload"), {}, raw=action.get("raw"))
            entry["outcome"] = "malformed" if ok else "dropped"
            return
        payload = {
            "id": f"chatcmpl-{entry['n']}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "test"),
            "choices": [{"index": 0, "finish_reason": action.get("finish_reason", "stop"),
                         "message": {"role": "assistant", "content": action.get("reply", "")}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        ok = self._send(handler, 200, payload, {})
        entry["outcome"] = "answered" if ok and not action.get("sleep") else ("late" if ok else "dropped")
        entry["t_end"] = time.monotonic()

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any] | None, headers: dict[str, str],
              raw: str | None = None) -> bool:
        data = raw.encode() if raw is not None else json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
            return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    args = parser.parse_args()
    server = JudgeServer(latency=args.latency, port=args.port)
    with server:
        print(server.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
