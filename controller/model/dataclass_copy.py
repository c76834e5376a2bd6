"""``replace``: a copy of a dataclass instance with some fields changed, as
``dataclasses.replace`` makes it, compiled with the model (issue 15).

The standard library's runs interpreted and reads five attributes of every field's
``Field`` per call; a renewal calls it about ten times. This one keeps each class's init
fields in a table and calls the class with them positionally. Results and errors are
the standard library's: every init field not named is the original's object, the
class's ``__init__`` (and ``__post_init__``) runs, an unknown name is a TypeError.
Classes with ``InitVar`` or ``init=False`` fields are refused (none of ours has one).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

_INIT_FIELDS: dict[type, tuple[str, ...]] = {}


def _init_fields(cls: type) -> tuple[str, ...]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"replace() should be called on dataclass instances, not {cls!r}")
    names = []
    for f in dataclasses.fields(cls):
        if not f.init:
            raise TypeError(f"{cls.__qualname__}.{f.name}: init=False fields are not supported")
        names.append(f.name)
    # dataclasses.fields() leaves out ClassVar and InitVar pseudo-fields; an InitVar
    # would have to be passed again, and the original does not keep it
    pseudo: dict[str, Any] = getattr(cls, "__dataclass_fields__", {})
    hidden = [n for n, f in pseudo.items() if n not in names and "ClassVar" not in str(f.type)]
    if hidden:
        raise TypeError(f"{cls.__qualname__}: InitVar fields are not supported: {hidden}")
    return tuple(names)


def replace(obj: T, **changes: Any) -> T:
    """``dataclasses.replace(obj, **changes)``, compiled."""
    cls = type(obj)
    names = _INIT_FIELDS.get(cls)
    if names is None:
        names = _init_fields(cls)
        _INIT_FIELDS[cls] = names
    for name in changes:
        if name not in names:
            raise TypeError(f"{cls.__qualname__}.__init__() got an unexpected keyword "
                            f"argument '{name}'")
    values = [changes[n] if n in changes else getattr(obj, n) for n in names]
    out: T = cls(*values)
    return out
