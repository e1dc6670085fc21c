"""Hypothesis strategies shared by the whole suite (STYLE.md rule 8); each is tested in test_strategies.py."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from theory.random import haar_stiefel
