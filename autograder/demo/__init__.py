"""`mlph demo`: the whole pipeline on a simulated class (:mod:`.run`), with students from :mod:`.simulate`."""
from autograder.demo.run import run_demo

__all__ = ["run_demo"]
