"""Importing nbformat imports jsonschema, whose optional IRI format checker (rfc3987_syntax) compiles
some 40 lark grammars at import time: 0.6 s in every process, for a format no notebook uses.
Blocking that optional module makes jsonschema skip the checker."""
import sys

sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
