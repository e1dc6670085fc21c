"""Closed forms of Section 4.1 of Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models"."""

from theory.random import haar_stiefel

__all__ = ["haar_stiefel"]
