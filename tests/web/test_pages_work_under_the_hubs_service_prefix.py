"""Behind the Hub's proxy every request keeps the prefix /services/mlph/: pages, static files, redirects and
cookies work under it (and without it, on the service's own port); the login page offers the Hub's login
beside the passwords, or only the Hub's when passwords are switched off."""
from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from web.app import create_app
from web.settings import WebSettings
from web.testing import logged_in

HTML = {"accept": "text/html"}


@pytest.fixture
def app(gradebook_course: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MLPH_HUB_API_URL", "http://127.0.0.1:9/hub/api")  # nothing listens: no request goes there
    monkeypatch.setenv("MLPH_HUB_API_TOKEN", "t" * 64)
    return create_app(gradebook_course, WebSettings())


def test_pages_links_static_files_and_redirects_keep_the_prefix(app: Any) -> None:
    client = TestClient(app, follow_redirects=False)
    start = client.get("/services/mlph/", headers=HTML)
    assert start.status_code == 303 and start.headers["location"] == "/services/mlph/login"
    page = client.get("/services/mlph/login", headers=HTML)
    assert page.status_code == 200
    assert 'href="/services/mlph/static/style.css"' in page.text and 'href="/static/' not in page.text
    assert 'action="/services/mlph/login"' in page.text
    assert 'href="/services/mlph/login/hub?next=/"' in page.text
    css = client.get("/services/mlph/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "no-store" not in css.headers.get("cache-control", "")
    hub = client.get("/services/mlph/login/hub?next=/students/ab1")
    assert hub.status_code == 303
    assert hub.headers["location"].startswith("http://testserver/hub/api/oauth2/authorize?client_id=service-mlph&")
    assert "redirect_uri=%2Fservices%2Fmlph%2Foauth_callback" in hub.headers["location"]
    assert "Path=/services/mlph/" in hub.headers["set-cookie"] and "HttpOnly" in hub.headers["set-cookie"]
    direct = client.get("/login", headers=HTML)  # the service's own port: no prefix
    assert direct.status_code == 200 and 'href="/static/style.css"' in direct.text


def test_a_session_page_under_the_prefix_links_under_it(app: Any) -> None:
    client = logged_in(app, "ab1")
    page = client.get("/services/mlph/students/ab1", headers=HTML)
    assert page.status_code == 200
    assert 'href="/services/mlph/students/ab1/sheets/tiny01"' in page.text
    assert 'action="/services/mlph/logout"' in page.text


def test_callback_without_the_login_started_here_is_refused(app: Any) -> None:
    client = TestClient(app, follow_redirects=False)
    r = client.get("/services/mlph/oauth_callback?code=abc&state=forged", headers=HTML)
    assert r.status_code == 400 and "did not complete" in r.text


def test_login_page_offers_what_is_configured(gradebook_course: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = TestClient(create_app(gradebook_course, WebSettings())).get("/login", headers=HTML).text
    assert "Log in with the course's JupyterHub" not in plain and 'name="password"' in plain
    monkeypatch.setenv("MLPH_HUB_API_URL", "http://127.0.0.1:9/hub/api")
    monkeypatch.setenv("MLPH_HUB_API_TOKEN", "t" * 64)
    hub_only = TestClient(create_app(gradebook_course, WebSettings(password_login=False)))
    page = hub_only.get("/services/mlph/login", headers=HTML).text
    assert "Log in with the course's JupyterHub" in page and 'name="password"' not in page
    csrf = hub_only.cookies.get("mlph_csrf") or ""
    refused = hub_only.post("/services/mlph/login", data={"username": "ab1", "password": "x" * 12,
                                                          "csrf_token": csrf}, headers=HTML)
    assert refused.status_code == 404 and "no password login" in refused.text


def test_the_exchange_api_takes_no_session_cookie(app: Any) -> None:
    client = logged_in(app, "ab1")  # a live web session of ab1, and no Hub token
    for url in ("/services/mlph/api/exchange/v1/sheets", "/services/mlph/api/exchange/v1/submissions"):
        r = client.get(url)
        assert r.status_code == 401 and "No Hub token" in r.json()["error"]
    r = client.post("/services/mlph/api/exchange/v1/sheets/tiny01/submissions",
                    files={"file": ("tiny01.ipynb", b"{}")})
    assert r.status_code == 401
