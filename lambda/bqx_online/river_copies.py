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

After that, the split attempts still went through `combine_stats` → deepcopy's dispatch (memo
dict, type lookup) → the copy → `Var.__iadd__` / `__isub__` → `Mean.__iadd__` / `__isub__` and
the `n` / `get()` accessors: ~1.9 million combinations in 3 market days of 3 pairs. `install()`
also gives the E-BST splitter (river.tree.splitter.ebst_splitter, the only caller) a
`combine_stats` that computes the combined Var of two plain Vars directly, with river's own
expressions in river's order (so the same floats, including river's n ≤ 0 branch of a
subtraction); anything else goes to river's function.
"""

from __future__ import annotations

import copy

from river import stats
from river.tree import utils as tree_utils
from river.tree.splitter import ebst_splitter


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


_RIVER_COMBINE = tree_utils.combine_stats


def combine_stats(left, right, subtract: bool = False):
    """river.tree.utils.combine_stats(left, right, subtract): a new Var, left ± right, for two
    plain Vars without the copy-then-update detour; the same arithmetic as Mean.__iadd__ /
    __isub__ and Var.__iadd__ / __isub__, expression by expression."""
    if not (
        type(left) is stats.Var
        and type(right) is stats.Var
        and type(left.mean) is stats.Mean
        and type(right.mean) is stats.Mean
    ):
        return _RIVER_COMBINE(left, right, subtract)
    a, b = left.mean, right.mean
    if subtract:  # Var.__isub__: the mean first, then S with the updated n and mean
        n = a.n - b.n
        if n > 0:
            mean = (a.n * a._mean - b.n * b._mean) / n
        else:
            n, mean = 0.0, 0.0
        s = left._S - right._S - (mean - b._mean) ** 2 * n * b.n / (n + b.n)
    else:  # Var.__iadd__: S with the old n and means, then the mean
        s = left._S + right._S + (a._mean - b._mean) ** 2 * a.n * b.n / (a.n + b.n)
        n = a.n + b.n
        mean = (a.n * a._mean + b.n * b._mean) / n
    combined_mean = stats.Mean.__new__(stats.Mean)
    combined_mean.__dict__.update(a.__dict__)
    combined_mean.n, combined_mean._mean = n, mean
    combined = stats.Var.__new__(stats.Var)
    combined.__dict__.update(left.__dict__)
    combined.mean, combined._S = combined_mean, s
    return combined


def install(combine: bool = True) -> None:
    """Give river's Mean and Var their fast exact copy and (`combine`) the E-BST splitter its
    direct combination (idempotent; combine=False: the copies alone, for a before / after)."""
    stats.Mean.__deepcopy__ = _copy_mean
    stats.Var.__deepcopy__ = _copy_var
    ebst_splitter.combine_stats = combine_stats if combine else _RIVER_COMBINE


def uninstall() -> None:
    """Back to the generic deepcopy and river's combine_stats (tests compare the two)."""
    for cls in (stats.Mean, stats.Var):
        if "__deepcopy__" in cls.__dict__:
            del cls.__deepcopy__
    ebst_splitter.combine_stats = _RIVER_COMBINE
