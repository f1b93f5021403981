"""JupyterHub: the Hub is the identity, ``mlph serve`` the only receiver of hand-ins.

:mod:`.exchange` (nbgrader's pluggable exchange for the students' single-user servers: list, fetch,
submit and fetch feedback over HTTP with the server's Hub API token; imports nbgrader and requests only,
nothing of the gradebook), :mod:`.protocol` (the paths and fields both ends agree on),
:mod:`.config` (the ``jupyterhub_config.py`` and ``nbgrader_config.py`` lines ``mlph hub-config`` prints, and
the start-up check of the Hub) and :mod:`.harness` (a real Hub with configurable-http-proxy on 127.0.0.1,
for the tests and benchmarks). May import :mod:`gradebook`; the web application imports this, never the
other way round.
"""
