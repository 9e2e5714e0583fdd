"""A local model provider for the agent tests: OpenAI's chat completions (`/v1/chat/completions`) and Anthropic's
Messages API (`/v1/messages`) on one HTTP server, answering from a script of replies and recording every request
as the official SDKs send it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def openai_text(text: str, tokens=(11, 7)) -> dict[str, Any]:
    return _openai({"role": "assistant", "content": text}, tokens)


def openai_tools(*calls: tuple[str, str, dict], tokens=(20, 9)) -> dict[str, Any]:
    tool_calls = [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
        for call_id, name, arguments in calls
    ]
    return _openai({"role": "assistant", "content": None, "tool_calls": tool_calls}, tokens, "tool_calls")


def _openai(message: dict, tokens, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1], "total_tokens": sum(tokens)},
    }


def anthropic_reply(*blocks: dict, tokens=(13, 5)) -> dict[str, Any]:
    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "fake-claude",
        "content": list(blocks),
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]},
    }


class FakeLLM:
    """`script(path, *replies)`: what the next requests to `path` get; a reply is a JSON body, or (status, body,
    headers), or ("sleep", seconds)."""

    def __init__(self):
        self.requests: list[tuple[str, dict[str, str], dict]] = []
        self.replies: dict[str, list] = {}
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with owner.lock:
                    owner.requests.append((self.path, dict(self.headers), body))
                    queue = owner.replies.get(self.path, [])
                    reply = queue.pop(0) if queue else (500, {"error": {"message": "no reply scripted"}}, {})
                if isinstance(reply, tuple) and reply[0] == "sleep":
                    time.sleep(reply[1])
                    reply = (500, {"error": {"message": "slept"}}, {})
                status, payload, headers = reply if isinstance(reply, tuple) else (200, reply, {})
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def script(self, path: str, *replies) -> None:
        with self.lock:
            self.replies.setdefault(path, []).extend(replies)

    def bodies(self, path: str) -> list[dict]:
        with self.lock:
            return [body for p, _, body in self.requests if p == path]

    def headers(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [headers for p, headers, _ in self.requests if p == path]

    def close(self) -> None:
        self.server.shutdown()
