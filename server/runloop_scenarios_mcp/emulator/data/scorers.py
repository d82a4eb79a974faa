"""The scoring contract: one to three scoring functions, each with one of the six scorer types."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from runloop_scenarios_mcp.emulator.data.draw import weighted
from runloop_scenarios_mcp.emulator.data.vocabulary import FUNCTION_NAMES, SCORER_TYPES, Ctx

_WEIGHTS: dict[int, tuple[tuple[float, ...], ...]] = {
    1: ((1.0,),),
    2: ((0.5, 0.5), (0.7, 0.3), (0.8, 0.2), (0.6, 0.4)),
    3: ((0.5, 0.3, 0.2), (0.6, 0.2, 0.2), (0.4, 0.4, 0.2), (0.5, 0.25, 0.25)),
}
_ODD_WEIGHTS: dict[int, tuple[tuple[float, ...], ...]] = {
    1: ((0.5,), (2.0,)),
    2: ((1.0, 1.0), (0.7, 0.2)),
    3: ((0.3, 0.3, 0.3), (1, 1, 1)),
}


def scoring_functions(rng: random.Random, ctx: Ctx, forced: str | None, odd_weights: bool) -> list[dict[str, Any]]:
    n = weighted(rng, ((1, 0.5), (2, 0.35), (3, 0.15)))
    weights = rng.choice((_ODD_WEIGHTS if odd_weights else _WEIGHTS)[n])
    types: list[str] = []
    for k in range(n):
        if k == 0 and forced:
            types.append(forced)
        elif k == 0:
            types.append(weighted(rng, tuple((t, 3.0 if t == "test_based_scorer" else 1.0) for t in SCORER_TYPES)))
        else:
            types.append(rng.choice(SCORER_TYPES))
    used: set[str] = set()
    functions = []
    for scorer_type, weight in zip(types, weights, strict=True):
        name = rng.choice(FUNCTION_NAMES[scorer_type])
        while name in used:
            name += "-2"
        used.add(name)
        functions.append({"name": name, "scorer": _SCORERS[scorer_type](rng, ctx), "weight": weight})
    return functions


def _ast_grep(rng: random.Random, ctx: Ctx) -> dict[str, Any]:
    scorer: dict[str, Any] = {
        "type": "ast_grep_scorer",
        "pattern": rng.choice(ctx.lang.ast_patterns),
        "search_directory": ctx.path(ctx.lang.src_path).rsplit("/", 1)[0],
    }
    if rng.random() < 0.7:
        scorer["lang"] = ctx.lang.name
    return scorer


def _bash(rng: random.Random, ctx: Ctx) -> dict[str, Any]:
    test = ctx.lang.test_command.format(test=ctx.path(ctx.lang.test_path))
    script = (
        "#!/usr/bin/env bash\nset -uo pipefail\n"
        f"cd /home/user/{ctx.comp}\n"
        f"passed=0\ntotal={rng.randint(2, 6)}\n"
        f'for i in $(seq 1 "$total"); do\n  if {test} >/tmp/run_$i.log 2>&1; then passed=$((passed + 1)); fi\ndone\n'
        'echo "score=$(echo "scale=2; $passed / $total" | bc)"\n'
    )
    return {"type": "bash_script_scorer", "bash_script": script}


def _command(rng: random.Random, ctx: Ctx) -> dict[str, Any]:
    options = (
        ctx.lang.test_command.format(test=ctx.path(ctx.lang.test_path)),
        {"python": "ruff check src tests", "typescript": "npx tsc --noEmit", "go": "go vet ./...",
         "rust": "cargo clippy -- -D warnings", "java": "./gradlew check"}[ctx.lang.name],
    )  # fmt: skip
    scorer: dict[str, Any] = {"type": "command_scorer"}
    if rng.random() < 0.95:
        scorer["command"] = rng.choice(options)
    return scorer


def _custom(rng: random.Random, ctx: Ctx) -> dict[str, Any]:
    scorer: dict[str, Any] = {
        "type": "custom_scorer",
        "custom_scorer_type": rng.choice(("swe-bench-grader", "llm-judge-v2", "acme-perf-harness")),
    }
    roll = rng.random()
    if roll < 0.6:
        scorer["scorer_params"] = {
            "rubric": f"Does the patch fix '{ctx.problem}' without unrelated changes?",
            "threshold": rng.choice((0.5, 0.7, 0.8)),
            "model": rng.choice(("judge-large", "judge-small")),
        }
    elif roll < 0.8:
        scorer["scorer_params"] = None
    return scorer


def _python(rng: random.Random, ctx: Ctx) -> dict[str, Any]:
    script = (
        "import json\nimport subprocess\nimport sys\n\n\n"
        "def main() -> None:\n"
        f"    proc = subprocess.run({ctx.lang.test_command.format(test=ctx.path(ctx.lang.test_path)).split()!r}, "
        "capture_output=True, text=True)\n"
        "    failures = proc.stdout.count('FAILED') + proc.stdout.count('FAIL:')\n"
        f"    total = max(1, {rng.randint(3, 40)})\n"
        "    score = 0.0 if proc.returncode not in (0, 1) else max(0.0, 1.0 - failures / total)\n"
        "    print(json.dumps(round(score, 3)), file=sys.stdout)\n\n\n"
        'if __name__ == "__main__":\n    main()\n'
    )
    scorer: dict[str, Any] = {"type": "python_script_scorer", "python_script": script}
    roll = rng.random()
    if roll < 0.4:
        scorer["python_version_constraint"] = rng.choice(("==3.12.10", ">=3.11,<3.13", "==3.13.1"))
    elif roll < 0.55:
        scorer["python_version_constraint"] = None
    if rng.random() < 0.4:
        scorer["requirements_contents"] = "pytest==8.3.3\nrequests==2.32.3\n"
    return scorer


def _test_based(rng: random.Random, ctx: Ctx) -> dict[str, Any]:
    lang, test_path = ctx.lang, ctx.path(ctx.lang.test_path)
    func = ctx.bug.replace("-", "_")
    if lang.name == "python":
        contents = (
            f"import pytest\n\nfrom {ctx.pkg}.{ctx.module} import {ctx.module.capitalize()}\n\n\n"
            f"def test_{func}_regression() -> None:\n"
            f"    subject = {ctx.module.capitalize()}(max_retries=3)\n"
            f"    assert subject.run(attempts={rng.randint(2, 9)}) == 'ok'\n\n\n"
            f"@pytest.mark.parametrize('size', [0, 1, {rng.randint(2, 500)}])\n"
            f"def test_{func}_sizes(size: int) -> None:\n"
            f"    assert len({ctx.module.capitalize()}().page(size)) == size\n"
        )
    elif lang.name == "typescript":
        contents = (
            "import { describe, expect, it } from 'vitest';\n"
            f"import {{ {ctx.module} }} from '../src/{ctx.module}';\n\n"
            f"describe('{ctx.bug}', () => {{\n  it('does not regress', async () => {{\n"
            f"    await expect({ctx.module}({rng.randint(1, 9)})).resolves.toBe('ok');\n  }});\n}});\n"
        )
    else:
        contents = f"// regression test for {ctx.bug}\n" + "\n".join(rng.choice(lang.code) for _ in range(6)) + "\n"
    scorer: dict[str, Any] = {"type": "test_based_scorer"}
    if rng.random() < 0.95:
        scorer["test_command"] = lang.test_command.format(test=test_path)
    if rng.random() < 0.85:
        files: list[dict[str, Any]] = [{"file_path": test_path, "file_contents": contents}]
        if rng.random() < 0.2:
            files.append({"file_path": f"tests/fixtures/{ctx.module}.json", "file_contents": '{"cases": [1, 2, 3]}\n'})
        scorer["test_files"] = files
    return scorer


_SCORERS: dict[str, Callable[[random.Random, Ctx], dict[str, Any]]] = {
    "ast_grep_scorer": _ast_grep,
    "bash_script_scorer": _bash,
    "command_scorer": _command,
    "custom_scorer": _custom,
    "python_script_scorer": _python,
    "test_based_scorer": _test_based,
}
