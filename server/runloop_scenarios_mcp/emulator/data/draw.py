"""Small random draws the generators share: ids, hex strings, weighted choices."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_T = TypeVar("_T")


def rand_id(rng: random.Random, prefix: str, length: int = 24) -> str:
    return prefix + "".join(rng.choices(_ID_ALPHABET, k=length))


def unique_ids(rng: random.Random, prefix: str, count: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        new = rand_id(rng, prefix)
        if new not in seen:
            seen.add(new)
            out.append(new)
    return out


def hex_string(rng: random.Random, length: int) -> str:
    return "".join(rng.choices("0123456789abcdef", k=length))


def weighted(rng: random.Random, options: Sequence[tuple[_T, float]]) -> _T:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]
