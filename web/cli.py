"""The web application's commands (`mlph serve`, `mlph accounts ...`); :func:`register` attaches them."""
from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Attach the web commands to the root `mlph` group."""
