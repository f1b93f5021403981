"""The check helper copied into every release and every kernel (:mod:`.mlph_check`, standard library and numpy
only); :data:`CHECK_MODULE` is its file."""
from pathlib import Path

CHECK_MODULE = Path(__file__).resolve().parent / "mlph_check.py"
