"""Dataclasses to and from plain dicts (JSON, Parquet rows): one rule for every config and record.

- :func:`to_dict`: the fields as JSON-ready values (tuples become lists).
- :func:`from_dict`: the dataclass back from a dict. Missing keys take the dataclass's
  defaults; lists become tuples where the field is a tuple. Unknown keys are refused
  (``extra="refuse"``, configs: a misspelt setting must not be silently dropped) with the
  file or table named by ``source``, or ignored (``extra="ignore"``, table rows, which may
  carry more columns than the record). ``ignore`` lists keys that are expected and dropped
  (e.g. ``config_id``, a fingerprint written beside the fields).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A stored config or record that does not fit its dataclass; the message names it."""


def to_dict(obj: Any) -> dict[str, Any]:
    """The dataclass ``obj``'s fields, tuples as lists (what JSON and Arrow take)."""
    d = dataclasses.asdict(obj)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _tuple_fields(cls: type) -> set[str]:
    out = set()
    for f in dataclasses.fields(cls):
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        if str(kind).startswith("tuple"):
            out.add(f.name)
    return out


def from_dict(
    cls: type[T],
    d: Mapping[str, Any],
    *,
    source: str = "",
    extra: Literal["refuse", "ignore"] = "refuse",
    ignore: Iterable[str] = (),
) -> T:
    """``cls(**d)`` by the module's rules; a wrong value raises ConfigError naming ``source``."""
    what = source or cls.__name__
    if not isinstance(d, Mapping):
        raise ConfigError(f"{what}: expected an object of {cls.__name__} fields, got {d!r:.80}")
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(d) - names - set(ignore))
    if unknown and extra == "refuse":
        raise ConfigError(
            f"{what}: unknown {cls.__name__} keys {unknown}; known keys are {sorted(names)}"
        )
    tuples = _tuple_fields(cls)
    kw = {k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in d.items()}
    try:
        return cls(**{k: v for k, v in kw.items() if k in names})
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{what}: {e}") from e
    except ConfigError:
        raise
    except ValueError as e:
        if not source:
            raise
        raise ConfigError(f"{what}: {e}") from e


def parse_size(text: str) -> tuple[int, int]:
    """``"640x360"`` -> (640, 360), for a ``--size WxH`` option."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise ValueError(f"size must look like WIDTHxHEIGHT (e.g. 640x360), got {text!r}")
    return int(m.group(1)), int(m.group(2))
