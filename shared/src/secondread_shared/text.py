"""Text as PostgreSQL keeps it: ``text`` and ``jsonb`` refuse the NUL character (U+0000).

Request models call :func:`refuse_nul` from a field validator, so that such input is refused
naming the field (422) instead of failing at the insert (a 500).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

T = TypeVar("T")

NUL_REFUSED = "holds a NUL character (\\u0000), which no text may hold"


def holds_nul(value: object) -> bool:
    """Whether ``value`` (a string, model, mapping or sequence of them) holds a NUL."""
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, BaseModel):
        return holds_nul(value.model_dump())
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(holds_nul(v) for v in value)
    return False


def refuse_nul(value: T) -> T:
    """``value`` itself; ``ValueError`` (:data:`NUL_REFUSED`) when it holds a NUL."""
    if holds_nul(value):
        raise ValueError(NUL_REFUSED)
    return value
