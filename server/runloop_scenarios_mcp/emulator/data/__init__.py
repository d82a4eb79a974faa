"""The deterministic, realistic data set behind the embedded Runloop emulator.

`generate` builds scenarios in the exact wire shape of Runloop's ``ScenarioView`` (plain JSON-able
dicts, no models), plus the benchmark membership the API keeps server-side. The data is meant to
stress a client the way real data would: names with accents, CJK and emoji, duplicate names,
problem statements from a few hundred bytes to 60 KB (issue reports, stack traces, code blocks),
all six scorer types with real-looking scripts, unified diffs as reference outputs, optional
fields that are absent, null or present, fields no client has heard of yet, archived scenarios,
and a few scenarios whose text is hostile (prompt injection, control characters).

Everything is derived from ``random.Random(seed)`` only, so ``(seed, count)`` fixes the output.

Modules, one job each: ``vocabulary`` (enum values, hostile strings, and the word lists of
``vocabulary.json``), ``draw`` (ids and weighted choices), ``texts`` (names, problem statements,
diffs), ``scorers``, ``environments``, ``scenario`` (one scenario put together) and ``dataset``
(the whole set). This package exports the names other modules use.
"""

from runloop_scenarios_mcp.emulator.data.dataset import SCENARIO_COUNT_DEFAULT, Dataset, generate, generate_dataset
from runloop_scenarios_mcp.emulator.data.vocabulary import (
    ARCHITECTURES,
    CONTROL_CHARACTERS,
    HOSTILE_MARKER,
    RESOURCE_SIZES,
    SCORER_TYPES,
    UNICODE_SEPARATORS,
    VALIDATION_TYPES,
)

__all__ = [
    "ARCHITECTURES",
    "CONTROL_CHARACTERS",
    "HOSTILE_MARKER",
    "RESOURCE_SIZES",
    "SCENARIO_COUNT_DEFAULT",
    "SCORER_TYPES",
    "UNICODE_SEPARATORS",
    "VALIDATION_TYPES",
    "Dataset",
    "generate",
    "generate_dataset",
]
