"""`mlph serve` with MLPH_HUB_API_URL checks the Hub before it starts: the Hub answers, accepts the token,
and the token is the registered service's; each failure stops the start with a message naming it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.hub.config import HubCheckFailed, HubSettings, check_hub
from hubcourse import HubCourse

BIN = Path(sys.executable).parent


def test_each_failure_is_named(hc: HubCourse) -> None:
    with pytest.raises(HubCheckFailed, match="does not answer"):
        check_hub(HubSettings("http://127.0.0.1:9/hub/api", "mlph", "x" * 64), timeout=3)
    with pytest.raises(HubCheckFailed, match="does not accept the service's API token"):
        check_hub(HubSettings(hc.hub.api_url, "mlph", "0" * 64))
    with pytest.raises(HubCheckFailed, match="belongs to service 'harness', not to the service 'mlph'"):
        check_hub(HubSettings(hc.hub.api_url, "mlph", hc.hub.token))
    token = (hc.cfg.data_dir / "hub" / "api_token").read_text().strip()
    assert check_hub(HubSettings(hc.hub.api_url, "mlph", token)).startswith(("5.", "6.", "7."))


def test_serve_refuses_to_start_with_a_token_the_hub_does_not_know(hc: HubCourse) -> None:
    env = {**os.environ, **hc.env, "MLPH_HUB_API_URL": hc.hub.api_url, "MLPH_HUB_API_TOKEN": "0" * 64}
    env.pop("MLPH_DB_URL", None)
    done = subprocess.run([str(BIN / "mlph"), "serve", "--port", "9"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "does not accept the service's API token" in done.stderr
    assert "serving" not in done.stdout
