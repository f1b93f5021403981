"""A route module that cannot be imported stops the application's start with its error, never a
silently missing page."""
from __future__ import annotations

from typing import Any

import pytest

from web import app as web_app
from web.testing import setup_web_course


def test_a_missing_route_module_stops_the_start(gradebook_course: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    setup_web_course(gradebook_course)
    app = web_app.create_app(gradebook_course)
    assert ("GET", "/login") in web_app.iter_routes(app)
    monkeypatch.setattr(web_app, "ROUTE_MODULES", web_app.ROUTE_MODULES + ("web.routes.no_such_page",))
    with pytest.raises(ModuleNotFoundError, match="web.routes.no_such_page"):
        web_app.create_app(gradebook_course)
