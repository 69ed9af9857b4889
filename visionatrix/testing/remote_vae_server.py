"""A real HTTP server on loopback speaking Hugging Face's remote-VAE ("hybrid inference") protocol.

``POST /`` with the latent's raw bytes (``Content-Type: tensor/binary``) and the query parameters
diffusers' ``remote_decode`` sends (``do_scaling``, ``output_type=pt``, ``partial_postprocess``,
``shape`` repeated per dimension, ``dtype``, ``height``, ``width``). The latent is decoded by the
``decode`` callable given (a real VAE in the tests) and the image tensor (B, 3, H, W, in [-1, 1])
comes back as raw bytes with ``dtype`` and ``shape`` (JSON) headers, as the published endpoint
answers. A request that does not follow the protocol gets 400 with a JSON error; ``fail`` makes the
server answer 503. Every request is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from visionatrix.testing.loopback import Loopback

DTYPES = ("float16", "float32", "bfloat16")
REQUIRED = ("do_scaling", "output_type", "partial_postprocess", "shape", "dtype", "height", "width")


class RemoteVaeServer(Loopback):
    def __init__(self, decode: Callable[[Any], Any]) -> None:
        self.decode = decode
        self.requests: list[dict[str, Any]] = []
        self.fail = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                server._answer(self)

        super().__init__(Handler)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        import torch

        query = parse_qs(urlsplit(handler.path).query)
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        self.requests.append({"query": query, "headers": dict(handler.headers), "bytes": len(body)})
        if self.fail:
            return _send(handler, 503, {"error": "endpoint paused"})
        problem = _check(query, handler.headers, body)
        if problem:
            return _send(handler, 400, {"error": problem})
        shape = [int(n) for n in query["shape"]]
        latent = torch.frombuffer(bytearray(body), dtype=getattr(torch, query["dtype"][0])).reshape(shape)
        image = self.decode(latent.float()).float().contiguous()
        handler.send_response(200)
        handler.send_header("Content-Type", "tensor/binary")
        handler.send_header("dtype", "float32")
        handler.send_header("shape", json.dumps(list(image.shape)))
        data = image.numpy().tobytes()
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def _check(query: dict[str, list[str]], headers: Any, body: bytes) -> str:
    missing = [k for k in REQUIRED if k not in query]
    if missing:
        return f"missing parameters: {missing}"
    if headers.get("Content-Type") != "tensor/binary":
        return "Content-Type must be tensor/binary"
    if query["output_type"] != ["pt"] or query["do_scaling"] != ["False"]:
        return "this endpoint serves output_type=pt without scaling"
    if query["dtype"][0] not in DTYPES:
        return f"unknown dtype {query['dtype'][0]}"
    shape = [int(n) for n in query["shape"]]
    size = {"float16": 2, "bfloat16": 2, "float32": 4}[query["dtype"][0]]
    count = 1
    for n in shape:
        count *= n
    if len(shape) != 4 or count * size != len(body):
        return f"body of {len(body)} bytes does not hold a {query['dtype'][0]} tensor of shape {shape}"
    if int(query["height"][0]) != shape[2] * 8 or int(query["width"][0]) != shape[3] * 8:
        return "height and width must be the latent's size times 8"
    return ""


def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
