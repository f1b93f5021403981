"""Keeps nbformat's import cheap, for every process that reads notebooks (the CLI, graders, the web app).

Importing nbformat imports jsonschema, whose optional IRI format checker (rfc3987_syntax) compiles some
40 lark grammars at import time: 0.6 s in every process, for a format no notebook uses. Blocking that
optional module makes jsonschema skip the checker. Imported first by :mod:`gradebook`, so that it runs
before anything imports nbformat."""
import sys

sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
