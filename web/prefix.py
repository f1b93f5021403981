"""Serving under the Hub's proxy: requests arrive as ``/services/<name>/…`` (the proxy keeps the prefix).

:class:`ServicePrefix` declares the prefix as the ASGI ``root_path`` (routing matches what follows it), puts it in
front of what the pages send back: ``Location`` headers, cookie paths, and the site-absolute URLs in HTML
(``href``/``src``/``action``/``data-*-url`` attributes that start with one ``/``). The pages and routes stay
written for ``/``; a request that comes without the prefix (the service's own port) is served as before.
"""
from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ATTR = re.compile(rb'(\s(?:href|src|action|formaction|data-[a-z-]+)=")(/(?!/))')


class ServicePrefix:
    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app, self.prefix = app, prefix.rstrip("/")
        self._bprefix = self.prefix.encode()

    def _fix_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        out = []
        for key, value in headers:
            k = key.lower()
            if k == b"location" and value.startswith(b"/") and not value.startswith(b"//") \
                    and not value.startswith(self._bprefix + b"/"):
                value = self._bprefix + value
            elif k == b"set-cookie":
                value = re.sub(rb"(?i)(;\s*path=)/(?=;|$)", lambda m: m.group(1) + self._bprefix + b"/", value)
            out.append((key, value))
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return
        # ASGI: ``path`` keeps the root path; routing (and StaticFiles) match on what follows it
        inner = {**scope, "root_path": str(scope.get("root_path", "")) + self.prefix}
        start: Message | None = None
        body: list[bytes] = []

        async def send_prefixed(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = self._fix_headers(list(message.get("headers", [])))
                html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
                message = {**message, "headers": headers}
                if not html:
                    await send(message)
                    return
                start = message
                return
            if start is None:  # not HTML: passed through as it comes
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            page = _ATTR.sub(lambda m: m.group(1) + self._bprefix + m.group(2), b"".join(body))
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(page)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": page})

        await self.app(inner, receive, send_prefixed)
