"""Optimizers that leave ``torch._dynamo`` unimported while nothing is compiled.

PyTorch wraps ``Optimizer.step`` (``_use_grad_for_differentiable``) and ``add_param_group``,
``zero_grad``, ``state_dict`` and ``load_state_dict`` (``torch._disable_dynamo``) in functions that
import ``torch._dynamo`` on their first call, so that a compiled graph breaks around them. A run that
compiles nothing pays for that import all the same, inside the first optimizer's constructor (the
seeds' loops pay it too): 1.1-1.3 s on a 2-core CPU (``python benchmarks/optimizer_start.py``).

:class:`Eager` calls the functions inside those wrappers while ``torch._dynamo`` is not imported,
and the wrappers themselves once it is (``--compile``, or anything else that imported it). In eager
mode the wrappers add nothing but ``step``'s ``no_grad``, which :class:`Eager` keeps, so the updates,
the hooks and the state_dict are PyTorch's own, bit for bit.
"""

from __future__ import annotations

import inspect
import sys

import torch

_BASE = torch.optim.Optimizer


def dynamo_loaded() -> bool:
    """Whether anything in this process imported ``torch._dynamo`` (then PyTorch's wrappers run)."""
    return "torch._dynamo" in sys.modules


def _torch_step(cls: type) -> object:
    """The ``step`` of the first torch.optim class in ``cls``'s method order that defines one."""
    for k in cls.__mro__:
        if k.__module__.startswith("torch.optim") and "step" in vars(k):
            return vars(k)["step"]
    raise TypeError(f"{cls.__name__} has no torch.optim step")


class Eager:
    """Mixin, put before a ``torch.optim`` optimizer among the bases (see the module doc)."""

    def step(self, closure=None):
        if dynamo_loaded() or self.defaults.get("differentiable"):
            return super().step(closure)
        with torch.no_grad():
            return inspect.unwrap(_torch_step(type(self)))(self, closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _call(_BASE.zero_grad, self, set_to_none)

    def add_param_group(self, param_group: dict) -> None:
        _call(_BASE.add_param_group, self, param_group)

    def state_dict(self) -> dict:
        return _call(_BASE.state_dict, self)

    def load_state_dict(self, state_dict: dict) -> None:
        _call(_BASE.load_state_dict, self, state_dict)


def _call(method, *args):
    return (method if dynamo_loaded() else inspect.unwrap(method))(*args)


class EagerRMSprop(Eager, torch.optim.RMSprop):
    """``torch.optim.RMSprop`` without the ``torch._dynamo`` import (see the module doc)."""
