"""Large and slow bodies: capped before they are read or parsed, at most a few large ones in flight, slow
uploads cut off with 408, large bodies parsed and scored in a helper process with the same answers."""

from __future__ import annotations

import asyncio
import json

import pytest

from creditmodel.service.app import create_app


async def _call(app, path: str, chunks: list[bytes], *, length: int | None, gate: asyncio.Event | None = None):
    """One POST straight through the ASGI interface; `gate` holds the body back until it is set."""
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("svc", 80)}
    pending = list(chunks)
    reads = []

    async def receive():
        reads.append(1)
        if gate is not None:
            await gate.wait()
        chunk = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    sent = []

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:]), len(reads)


@pytest.fixture(scope="module")
def small_app(bundle):
    return create_app(bundle, max_body_bytes=10_000, large_body_bytes=2_000, max_large_requests=1, body_timeout=0.5)


def test_content_length_over_the_cap_is_refused_unread(small_app):
    status, _, body, reads = asyncio.run(_call(small_app, "/v1/score", [b"x" * 20_000], length=20_000))
    assert status == 413 and reads == 0
    assert json.loads(body)["detail"][0]["loc"] == ["body"] and "10000" in json.loads(body)["detail"][0]["msg"]


def test_a_stream_over_the_cap_is_cut_off(small_app):
    chunks = [b"[" * 1000] * 50  # no Content-Length: counted while it streams
    status, _, _, reads = asyncio.run(_call(small_app, "/v1/score", chunks, length=None))
    assert status == 413 and reads == 11  # stopped at the first chunk past 10,000 bytes, not at the 50th


def test_large_requests_are_bounded_and_slow_uploads_get_408(small_app):
    large = small_app.state.large_requests

    async def scenario():
        gate = asyncio.Event()  # never set: a client that stops sending
        slow = asyncio.create_task(_call(small_app, "/v1/score", [b"{" * 3_000], length=3_000, gate=gate))
        await asyncio.sleep(0.1)
        assert large.active == 1
        busy = await _call(small_app, "/v1/score", [b"{" * 3_000], length=3_000)
        small = await _call(small_app, "/v1/score", [b'{"applications": []}'], length=20)
        return await slow, busy, small

    slow, busy, small = asyncio.run(scenario())
    assert busy[0] == 503 and busy[1][b"retry-after"] == b"2"  # refused unparsed (the body is read and dropped)
    assert small[0] == 422  # small requests are not held up by the bound
    assert slow[0] == 408 and "0.5 s" in json.loads(slow[2])["detail"][0]["msg"]
    assert large.active == 0  # the slot is free again


def test_row_count_is_capped_before_parsing(app, feature_rows):
    body = json.dumps({"applications": [{"features": {"not": "validated"}}] * 10_001}).encode()
    status, _, out, _ = asyncio.run(_call(app, "/v1/score", [body], length=len(body)))
    assert status == 422
    d = json.loads(out)["detail"]
    assert d == [{"loc": ["body", "applications"], "type": "too_long",
                  "msg": "at most 10000 applications per request, got 10001",
                  "msg_zh": "每次请求最多 10000 笔申请，收到 10001 笔"}]


def test_large_bodies_are_scored_in_a_helper_process_alike(bundle, feature_rows):
    import os

    app = create_app(bundle, large_body_bytes=50_000)
    large = app.state.large_requests
    try:
        apps = [{"id": f"r{i}", "features": f} for i, f in enumerate(feature_rows[:60])]
        body = json.dumps({"applications": apps}).encode()
        assert len(body) > 50_000
        status, _, out, _ = asyncio.run(_call(app, "/v1/score", [body[:30_000], body[30_000:]], length=None))
        assert status == 200
        assert large.pool is not None and os.getpid() not in {p.pid for p in large.pool._processes.values()}
        inline = create_app(bundle)
        status2, _, out2, _ = asyncio.run(_call(inline, "/v1/score", [body], length=len(body)))
        assert status2 == 200 and out == out2  # byte for byte
        bad = json.dumps({"applications": apps[:-1] + [{"features": dict(apps[-1]["features"], term_months=-1.0)}]})
        status3, _, out3, _ = asyncio.run(_call(app, "/v1/score", [bad.encode()], length=len(bad)))
        assert status3 == 422 and json.loads(out3)["detail"][0]["loc"] == ["body", "applications", 59, "features",
                                                                          "term_months"]
    finally:
        large.close()
