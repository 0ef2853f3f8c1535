"""The model cache: run keys that cover everything that determines a result, and checkpoints.

A run is stored under ``cache_dir()/<name>-<key>/checkpoint.pt``. The key hashes

* the run's ``name`` and its configuration (a dataclass);
* the architecture (``repr``, parameter shapes and dtypes) and the **initial** weights and buffers;
* the task: a strong fingerprint of the data *contents* (every byte of every tensor), the hooks,
  loss and prediction functions (their ``repr`` if they define one, else their qualified name and
  compiled code, constants and closure values);
* the code: the source of every nodekit module the run touches (the training engine, solvers and
  adjoint, the modules of the model's layers and of the hooks), and the source of model classes
  defined outside nodekit (e.g. in a notebook).

The trade-off: editing a module the run uses retrains it, editing any other module (a chapter's
report, an attack the run does not train against) does not. CI starts from an empty cache.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import os
import re
import sys
import threading
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from ..paths import cache_dir

__all__ = [
    "cache_dir",
    "checkpoint_path",
    "code_fingerprint",
    "dataset_fingerprint",
    "describe",
    "load_checkpoint",
    "run_key",
    "save_checkpoint",
    "tensor_fingerprint",
    "validate_name",
]

# Modules every training run depends on, whatever the model.
_CORE_MODULES = ("nodekit.training", "nodekit.solvers", "nodekit.adjoint", "nodekit.errors")


def validate_name(name: str) -> str:
    """A run name names a cache folder: letters, digits, ``-``, ``_`` and ``.`` only."""
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"run name {name!r} names the cache folder: use letters, digits, '-', '_' and '.' only")
    return name


def tensor_fingerprint(*tensors: Tensor) -> str:
    """SHA-256 (16 hex digits) of the shapes, dtypes and every byte of ``tensors``."""
    digest = hashlib.sha256()
    for t in tensors:
        t = torch.as_tensor(t).detach().cpu().contiguous()
        digest.update(f"{tuple(t.shape)}{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:16]


def dataset_fingerprint(dataset: Dataset) -> str:
    """Fingerprint of a data set's contents: every tensor of a ``TensorDataset`` (or of a
    ``Subset`` of one, with its indices), else every example, item by item."""
    if isinstance(dataset, TensorDataset):
        return tensor_fingerprint(*dataset.tensors)
    if isinstance(dataset, torch.utils.data.Subset):
        return tensor_fingerprint(torch.as_tensor(dataset.indices)) + dataset_fingerprint(dataset.dataset)
    digest = hashlib.sha256(str(len(dataset)).encode())  # type: ignore[arg-type]
    for i in range(len(dataset)):  # type: ignore[arg-type]
        item = dataset[i]
        for part in item if isinstance(item, (tuple, list)) else (item,):
            digest.update(tensor_fingerprint(torch.as_tensor(part)).encode())
    return digest.hexdigest()[:16]


def describe(obj: Any) -> str:
    """A string that changes whenever ``obj`` (a hook, loss or prediction function) would act
    differently: for a function its qualified name, bytecode, constants and closure values, else
    its ``repr`` (dataclasses and modules have informative ones).

    Raises a clear error for objects whose behaviour cannot be read off (a plain class instance
    without ``__repr__``): make such a hook a dataclass, or give it a ``__repr__`` with its settings.
    """
    if isinstance(obj, functools.partial):
        keywords = sorted((k, describe(v)) for k, v in obj.keywords.items())
        return f"partial({describe(obj.func)}, {[describe(a) for a in obj.args]}, {keywords})"
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
        closure = [describe(c.cell_contents) for c in obj.__closure__ or ()]
        consts = [repr(c) for c in code.co_consts if not isinstance(c, types.CodeType)]
        return f"{obj.__module__}.{obj.__qualname__}[{hashlib.sha256(code.co_code).hexdigest()[:16]}|{consts}|{closure}]"
    if isinstance(obj, types.MethodType):
        return f"{describe(obj.__self__)}.{describe(obj.__func__)}"
    if isinstance(obj, types.BuiltinFunctionType):
        return f"{obj.__module__}.{obj.__qualname__}"
    if type(obj).__repr__ is not object.__repr__:
        return repr(obj)
    raise TypeError(
        f"cannot fingerprint a {type(obj).__qualname__} object for the model cache: its repr does not show its "
        "settings; make it a dataclass or give it a __repr__ that includes every setting"
    )


def _modules_of(obj: Any, seen: set[int] | None = None) -> set[str]:
    """Names of the modules whose code ``obj`` runs: its class (and, for modules, every layer's),
    functions and the fields of dataclasses, recursively."""
    seen = set() if seen is None else seen
    if id(obj) in seen or obj is None:
        return set()
    seen.add(id(obj))
    names: set[str] = set()
    if isinstance(obj, nn.Module):
        for m in obj.modules():
            names |= {c.__module__ for c in type(m).__mro__ if c.__module__ not in ("builtins",)}
        return names
    if isinstance(obj, (types.FunctionType, types.MethodType, types.BuiltinFunctionType)):
        return {obj.__module__} if obj.__module__ else set()
    if isinstance(obj, functools.partial):
        return _modules_of(obj.func, seen)
    names |= {c.__module__ for c in type(obj).__mro__ if c.__module__ != "builtins"}
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            names |= _modules_of(getattr(obj, f.name), seen)
    return names


def _source_of(module_name: str) -> bytes:
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    return Path(path).read_bytes() if path else b""


def code_fingerprint(objects: Iterable[Any]) -> str:
    """Hash of the source of the nodekit modules that ``objects`` (model, hooks, functions) and
    every training run use, and of classes defined outside nodekit and torch (notebook code)."""
    objects = list(objects)
    modules: set[str] = set()
    for obj in objects:
        modules |= _modules_of(obj)
    core = {name for name in sys.modules if name.startswith(_CORE_MODULES)}
    digest = hashlib.sha256()
    for name in sorted({m for m in modules if m.startswith("nodekit")} | core):
        digest.update(name.encode() + _source_of(name))
    outside: set[type] = set()
    for obj in objects:
        parts = obj.modules() if isinstance(obj, nn.Module) else [obj]
        outside |= {type(p) for p in parts if not type(p).__module__.startswith(("nodekit", "torch", "builtins"))}
    for cls in sorted(outside, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
        try:
            digest.update(inspect.getsource(cls).encode())
        except (OSError, TypeError):
            digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    return digest.hexdigest()[:16]


def run_key(name: str, model: nn.Module, config: Any, task: dict[str, str], code: str) -> str:
    """Hash of everything that fixes a training run, to name its cache entry (call it before training).

    ``task`` holds the fingerprints of what is trained on (data contents, hooks, loss, prediction),
    ``code`` the :func:`code_fingerprint` of what runs.
    """
    weights = hashlib.sha256()
    for key, value in model.state_dict().items():
        weights.update(key.encode() + tensor_fingerprint(value).encode())
    spec = {
        "name": validate_name(name),
        "config": dataclasses.asdict(config),
        "model": repr(model),
        "parameters": [[list(p.shape), str(p.dtype)] for p in model.parameters()],
        "initial_weights": weights.hexdigest(),
        "task": task,
        "code": code,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def checkpoint_path(name: str, key: str) -> Path:
    """Where the run ``name`` with key ``key`` keeps its checkpoint."""
    return cache_dir() / f"{validate_name(name)}-{key}" / "checkpoint.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to a temporary file and rename it, so a crash never leaves half a checkpoint.
    The temporary file is private to the process and thread: two chapters training the same run at
    once (the SODEF models of chapters 8 and 10 in a parallel build) must not write into one file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain containers only)."""
    return torch.load(path, map_location=device, weights_only=True)
