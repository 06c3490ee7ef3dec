"""`python -m benchmarks`: overhead, training steps and memory in one run (see benchmarks/suite.py)."""
from .suite import run_all

run_all()
