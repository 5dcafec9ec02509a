"""Fast, exact copies of river's running mean and variance, where river's Hoeffding trees
spend most of the online learner's time.

cProfile of a replay step (real 2017 bars, 3 pairs x 931 minutes, the default ensemble, load
4): 45 of 59 s in the trees' learn_one, 36 s of it in split attempts, and 26 s of those in
`copy.deepcopy`. Every split attempt of the E-BST splitter walks its binary search tree and,
at each node, copies the node's `stats.Var` (river.tree.utils.combine_stats →
copy.deepcopy), ~486,000 copies here at ~54 µs each through the generic deepcopy machinery
(memo, __reduce_ex__, reconstruction of the Var and of the Mean inside it). A Var holds an int
and two floats plus a Mean of two floats, so a copy is a few attribute assignments.

`install()` gives `stats.Mean` and `stats.Var` a `__deepcopy__` that builds the same object
directly. The copy is exact (the same floats, so every tree splits and predicts as before:
tests/python/test_online.py compares a forest's predictions with and without it); subclasses
are copied attribute by attribute with deepcopy, as the generic path does for plain objects.
It changes no state that is pickled: checkpoints are unchanged.
"""

from __future__ import annotations

import copy

from river import stats


def _copy_mean(self, memo: dict):
    cls = type(self)
    new = cls.__new__(cls)
    memo[id(self)] = new
    if cls is stats.Mean:  # n and _mean: floats
        new.__dict__.update(self.__dict__)
    else:
        for name, value in self.__dict__.items():
            setattr(new, name, copy.deepcopy(value, memo))
    return new


def _copy_var(self, memo: dict):
    cls = type(self)
    new = cls.__new__(cls)
    memo[id(self)] = new
    if cls is stats.Var:  # ddof, _S: numbers; mean: a Mean
        new.__dict__.update(self.__dict__)
        new.mean = _copy_mean(self.mean, memo)
    else:
        for name, value in self.__dict__.items():
            setattr(new, name, copy.deepcopy(value, memo))
    return new


def install() -> None:
    """Give river's Mean and Var their fast exact copy (idempotent)."""
    stats.Mean.__deepcopy__ = _copy_mean
    stats.Var.__deepcopy__ = _copy_var


def uninstall() -> None:
    """Back to the generic deepcopy (tests compare the two)."""
    for cls in (stats.Mean, stats.Var):
        if "__deepcopy__" in cls.__dict__:
            del cls.__deepcopy__
