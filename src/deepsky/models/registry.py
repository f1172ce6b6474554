"""One registry for every architecture of the lectures (timm style).

Entry points are plain functions decorated with :func:`register_model`; their
name is the model name.  Each has the signature::

    fn(in_channels: int, num_classes: int, image_size: int,
       reference: bool = False, **kwargs) -> torch.nn.Module

and returns a module mapping float tensors ``(N, in_channels, image_size,
image_size)`` to logits ``(N, num_classes)``; ``num_classes=1`` is a single
logit for binary tasks (train with ``BCEWithLogitsLoss``).

Reference metadata (reference input, reference class count, published parameter
count and its citation) lives in ``reference_params.csv`` next to this file, the
single source of truth for the parameter-count table; the registry only knows
the family and the builder.
"""
from __future__ import annotations

import csv
import difflib
import fnmatch
import importlib
import inspect
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

__all__ = [
    "ModelInfo",
    "UnknownModelError",
    "register_model",
    "create_model",
    "reference_model",
    "list_models",
    "list_families",
    "model_info",
    "count_parameters",
    "parameter_table",
    "REFERENCE_CSV",
]

#: File name of the reference table shipped inside this package.
REFERENCE_CSV = "reference_params.csv"

#: Defaults used when a model has no reference row (user-registered models).
DEFAULT_INPUT = (3, 48, 48)
DEFAULT_CLASSES = 1

#: Modules whose import registers the built-in models.
_BUILTIN_MODULES = (
    "deepsky.models.lecture_cnns",
    "deepsky.models.torchvision_nets",
    "deepsky.models.practice_nets",
    "deepsky.models.cosmo_graphs_nets",
    "deepsky.models.lightcurves_nets",
    "deepsky.models.photoz_nets",
    "deepsky.models.cmb_nets",
    "deepsky.models.domains_nets",
    "deepsky.models.deblend_nets",
    "deepsky.models.detection_nets",
)


@dataclass(frozen=True)
class _Entry:
    name: str
    fn: Callable[..., nn.Module]
    family: str
    min_image_size: int
    description: str


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one architecture.

    ``reference_input`` is ``(C, H, W)`` of the original publication (or of
    the lecture / project default when there is none), ``params_published``
    the parameter count quoted by ``source`` (``None`` when nothing was
    published, e.g. lecture notebooks or the practice nets).
    """

    name: str
    family: str
    description: str
    reference_input: tuple[int, int, int]
    reference_classes: int
    params_published: Optional[int]
    source: str
    min_image_size: int = 32

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class UnknownModelError(KeyError, ValueError):
    """Raised for a model name that is not registered (both a KeyError and a ValueError)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


_REGISTRY: dict[str, _Entry] = {}


# --------------------------------------------------------------------------- registration
def register_model(fn: Optional[Callable] = None, *, name: Optional[str] = None,
                   family: Optional[str] = None, min_image_size: int = 32):
    """Register a model entry point under its function name.

    Usable bare (``@register_model``) or with options
    (``@register_model(family="resnet", min_image_size=32)``).  Registering an
    existing name raises ``ValueError``.
    """

    def decorator(f: Callable) -> Callable:
        model_name = (name or f.__name__).lower()
        if model_name in _REGISTRY and _REGISTRY[model_name].fn is not f:
            raise ValueError(f"model {model_name!r} is already registered")
        doc = inspect.getdoc(f) or ""
        _REGISTRY[model_name] = _Entry(
            name=model_name,
            fn=f,
            family=family or model_name,
            min_image_size=int(min_image_size),
            description=doc.splitlines()[0] if doc else "",
        )
        return f

    if fn is not None:
        return decorator(fn)
    return decorator


def _ensure_builtins() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


def _entry(name: str) -> _Entry:
    _ensure_builtins()
    key = str(name).lower()
    if key not in _REGISTRY:
        known = sorted(_REGISTRY)
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Known models: {', '.join(known)}"
        )
    return _REGISTRY[key]


# --------------------------------------------------------------------------- reference table
def _parse_input(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.lower().replace("×", "x").split("x")]
    if len(parts) != 3:
        raise ValueError(f"reference_input must look like 3x224x224, got {text!r}")
    return (parts[0], parts[1], parts[2])


@lru_cache(maxsize=1)
def _reference_rows() -> dict[str, dict[str, Any]]:
    text = resources.files("deepsky.models").joinpath(REFERENCE_CSV).read_text(encoding="utf-8")
    rows: dict[str, dict[str, Any]] = {}
    for row in csv.DictReader(line for line in text.splitlines() if not line.startswith("#")):
        published = (row.get("params_published") or "").strip()
        rows[row["architecture"].strip()] = {
            "reference_input": _parse_input(row["reference_input"].strip()),
            "reference_classes": int(row["reference_classes"]),
            "params_published": int(published) if published else None,
            "source": (row.get("source") or "").strip(),
        }
    return rows


def reference_table() -> list[dict[str, Any]]:
    """Rows of ``reference_params.csv`` as dicts (architecture first)."""
    return [{"architecture": k, **v} for k, v in _reference_rows().items()]


def model_info(name: str) -> ModelInfo:
    """Family, reference input ``(C, H, W)``, reference classes, published count and source."""
    e = _entry(name)
    ref = _reference_rows().get(e.name, {})
    return ModelInfo(
        name=e.name,
        family=e.family,
        description=e.description,
        reference_input=ref.get("reference_input", DEFAULT_INPUT),
        reference_classes=ref.get("reference_classes", DEFAULT_CLASSES),
        params_published=ref.get("params_published"),
        source=ref.get("source", ""),
        min_image_size=e.min_image_size,
    )


# --------------------------------------------------------------------------- listing
def list_models(pattern: str = "*", family: Optional[str] = None) -> list[str]:
    """Sorted registered names matching the fnmatch ``pattern`` (case-insensitive)."""
    _ensure_builtins()
    pat = pattern.lower()
    return sorted(
        n for n, e in _REGISTRY.items()
        if fnmatch.fnmatchcase(n, pat) and (family is None or e.family == family)
    )


def list_families() -> list[str]:
    _ensure_builtins()
    return sorted({e.family for e in _REGISTRY.values()})


# --------------------------------------------------------------------------- creation
def create_model(name: str, in_channels: Optional[int] = None, num_classes: Optional[int] = None,
                 image_size: Optional[int] = None, *, reference: bool = False,
                 **kwargs: Any) -> nn.Module:
    """Build a registered model.

    ``in_channels``/``num_classes``/``image_size`` left as ``None`` take the
    reference values of :func:`model_info`.  ``reference=True`` builds the
    unmodified original network at its reference input and class count (for
    torchvision families: exactly ``torchvision.models.<name>(weights=None)``);
    explicit arguments that contradict the reference raise ``ValueError``.
    Extra ``kwargs`` go to the family builder (e.g. ``dropout`` for
    ``winning_cnn``); unknown kwargs raise ``TypeError``.

    The returned module carries ``model.deepsky_config`` (name and arguments).
    """
    e = _entry(name)
    info = model_info(e.name)
    ref_c, ref_h, ref_w = info.reference_input
    if reference:
        for arg, given, ref in (("in_channels", in_channels, ref_c),
                                ("num_classes", num_classes, info.reference_classes),
                                ("image_size", image_size, ref_h)):
            if given is not None and int(given) != ref:
                raise ValueError(
                    f"reference=True builds {e.name} at its reference configuration "
                    f"({arg}={ref}); got {arg}={given}"
                )
    in_channels = ref_c if in_channels is None else int(in_channels)
    num_classes = info.reference_classes if num_classes is None else int(num_classes)
    image_size = ref_h if image_size is None else image_size
    if isinstance(image_size, (tuple, list)):
        if len(set(image_size)) != 1:
            raise ValueError(f"only square images are supported, got image_size={image_size}")
        image_size = image_size[0]
    image_size = int(image_size)
    if in_channels < 1 or num_classes < 1:
        raise ValueError(f"in_channels and num_classes must be >= 1 (got {in_channels}, {num_classes})")
    if image_size < e.min_image_size:
        raise ValueError(f"{e.name} needs image_size >= {e.min_image_size}, got {image_size}")
    model = e.fn(in_channels=in_channels, num_classes=num_classes, image_size=image_size,
                 reference=bool(reference), **kwargs)
    model.deepsky_config = {"name": e.name, "in_channels": in_channels, "num_classes": num_classes,
                            "image_size": image_size, "reference": bool(reference), **kwargs}
    return model


def reference_model(name: str, **kwargs: Any) -> nn.Module:
    """The unmodified network at its reference input and class count."""
    return create_model(name, reference=True, **kwargs)


# --------------------------------------------------------------------------- counting
def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; shared tensors are counted once."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def _count_on_meta(name: str, **create_kwargs: Any) -> int:
    # Built on the meta device: no memory, no initialisation cost (VGG-16 in ~20 ms).
    with torch.device("meta"):
        model = create_model(name, **create_kwargs)
    return count_parameters(model)


def parameter_table(names: Optional[Iterable[str]] = None, image_size: int = 48,
                    in_channels: int = 3, num_classes: int = 1):
    """Parameter counts of ``names`` (default: all registered models) as a DataFrame.

    Columns: ``architecture, family, params_reference`` (unmodified network at
    its reference input/classes), ``params_published`` (from the reference
    CSV, ``<NA>`` where none), ``params_ours`` (as built for
    ``in_channels x image_size x image_size`` and ``num_classes``), plus
    ``rel_diff_reference_published``, ``reference_input``,
    ``reference_classes`` and ``source``.  Models are built on the meta device,
    so the whole table takes well under a second.
    """
    import pandas as pd

    names = list_models() if names is None else [_entry(n).name for n in names]
    rows = []
    for n in names:
        info = model_info(n)
        ref = _count_on_meta(n, reference=True)
        ours = _count_on_meta(n, in_channels=in_channels, num_classes=num_classes,
                              image_size=image_size)
        pub = info.params_published
        rows.append({
            "architecture": n,
            "family": info.family,
            "params_reference": ref,
            "params_published": pub,
            "params_ours": ours,
            "rel_diff_reference_published": (ref - pub) / pub if pub else None,
            "reference_input": "x".join(map(str, info.reference_input)),
            "reference_classes": info.reference_classes,
            "source": info.source,
        })
    df = pd.DataFrame(rows)
    for col in ("params_reference", "params_published", "params_ours"):
        df[col] = df[col].astype("Int64")
    df["rel_diff_reference_published"] = df["rel_diff_reference_published"].astype("Float64")
    return df
