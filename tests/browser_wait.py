"""Waiting for a condition in a real browser page under the application's Content Security Policy.

Playwright's ``page.wait_for_function`` turns its predicate into a function with ``eval`` inside the page when it
has to poll, and the pages' policy (``script-src 'self'``, no ``'unsafe-eval'``) refuses that: the wait fails
whenever the condition is not already true at the first look. ``page.evaluate`` runs through the DevTools
protocol, which the policy does not govern, so the condition is polled from here instead."""
from __future__ import annotations

import time
from typing import Any


def wait_in_page(page: Any, expression: str, arg: Any = None, timeout: float = 10.0, every: float = 0.05) -> Any:
    """Evaluate ``expression`` (with ``arg``) in ``page`` until it is truthy; its value. AssertionError naming the
    expression after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:g} s in the page: {expression}")
        time.sleep(every)
