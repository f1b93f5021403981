"""The login throttle counts before it verifies: concurrent guesses against one account, over two app
instances (workers) on one database, get at most the configured number of password verifications, and a
stranger hammering someone's account cannot keep the owner from logging in from their own address."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from gradebook.people import accounts
from web.app import create_app
from web.security import PRE_CSRF_COOKIE, throttle_key
from web.settings import WebSettings
from web.testing import ensure_account, setup_web_course

PASSWORD = "correct horse battery staple"
SETTINGS = WebSettings(login_max_failures=5, login_account_max_failures=20, login_window_minutes=15)


@pytest.fixture
def apps(gradebook_course: Any) -> list[Any]:
    setup_web_course(gradebook_course)
    return [create_app(gradebook_course, SETTINGS), create_app(gradebook_course, SETTINGS)]  # two workers


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts every argon2 verification (the real one runs)."""
    counts = {"n": 0}
    lock = threading.Lock()

    class CountingHasher(PasswordHasher):
        def verify(self, hash: Any, password: Any) -> Any:  # noqa: A002 (argon2's own parameter name)
            with lock:
                counts["n"] += 1
            return super().verify(hash, password)

    monkeypatch.setattr(accounts, "HASHER", CountingHasher())  # argon2-cffi's default parameters, as HASHER's
    return counts


def _post_login(app: Any, username: str, password: str, address: str) -> int:
    client = TestClient(app, follow_redirects=False, client=(address, 40000))
    client.cookies.set(PRE_CSRF_COOKIE, "t" * 43)  # the double-submit token the login form repeats
    return client.post("/login", data={"username": username, "password": password, "csrf_token": "t" * 43,
                                       "next": "/"}).status_code


def _hammer(apps: list[Any], username: str, addresses: list[str], n: int = 40) -> list[int]:
    with ThreadPoolExecutor(max_workers=20) as pool:
        return list(pool.map(lambda i: _post_login(apps[i % 2], username, f"guess number {i}!",
                                                   addresses[i % len(addresses)]), range(n)))


def test_forty_concurrent_guesses_from_one_address_get_five_verifications(
        apps: list[Any], verifications: dict[str, int]) -> None:
    ensure_account(apps[0].state.engine, "ab1", PASSWORD)
    ensure_account(apps[0].state.engine, "cd2", PASSWORD)
    codes = _hammer(apps, "ab1", ["203.0.113.9"])
    assert verifications["n"] == 5, verifications
    assert sorted(codes) == [401] * 5 + [429] * 35
    verifications["n"] = 0
    # an honest student elsewhere is untouched: one verification, logged in
    assert _post_login(apps[1], "cd2", PASSWORD, "198.51.100.20") == 303
    assert verifications["n"] == 1


def test_guesses_from_many_addresses_are_bounded_per_account(apps: list[Any], verifications: dict[str, int]) -> None:
    ensure_account(apps[0].state.engine, "ab1", PASSWORD)
    codes = _hammer(apps, "ab1", [f"203.0.113.{i}" for i in range(1, 41)])  # 40 addresses, one guess each
    assert verifications["n"] == 20, verifications  # the slower global bound per account
    assert codes.count(401) == 20 and codes.count(429) == 20
    # a new address (the owner's or not) waits for the window too: the locked account
    assert _post_login(apps[0], "ab1", PASSWORD, "192.0.2.77") == 429


def test_a_stranger_cannot_lock_the_owner_out_of_their_own_address(
        apps: list[Any], verifications: dict[str, int]) -> None:
    ensure_account(apps[0].state.engine, "ef3", PASSWORD)
    ensure_account(apps[0].state.engine, "cd2", PASSWORD)
    owner = "198.51.100.7"
    assert _post_login(apps[0], "ef3", PASSWORD, owner) == 303  # the owner's address is now known to the account
    stranger = _hammer(apps, "ef3", ["203.0.113.66"]) + _hammer(apps, "ef3", [f"203.0.113.{i}" for i in range(100, 124)], n=24)
    assert stranger.count(401) == 20  # 5 from the one address, then the account's bound: 20 in all
    verifications["n"] = 0
    assert _post_login(apps[1], "ef3", PASSWORD, owner) == 303  # the owner still gets in, from the other worker
    assert _post_login(apps[1], "cd2", PASSWORD, "198.51.100.8") == 303  # another student too
    assert verifications["n"] == 2
    # the owner's own typos still count for their address
    assert [_post_login(apps[0], "ef3", "typo typo typo", owner) for _ in range(6)] == [401] * 5 + [429]


def test_ipv6_addresses_count_by_their_64_network() -> None:
    assert throttle_key("2001:db8:1:2:aaaa::1") == throttle_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert throttle_key("2001:db8:1:3::1") != throttle_key("2001:db8:1:2::1")
    assert throttle_key("::ffff:192.0.2.1") == "192.0.2.1" and throttle_key("192.0.2.1") == "192.0.2.1"
