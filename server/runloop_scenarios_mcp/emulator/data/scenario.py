"""One scenario in the wire shape of ``ScenarioView``: the texts, scorers and environment put together,
with metadata, optional fields that are absent, null or present, and fields no client knows yet."""

from __future__ import annotations

import random
from typing import Any

from runloop_scenarios_mcp.emulator.data.draw import hex_string
from runloop_scenarios_mcp.emulator.data.environments import scenario_environment
from runloop_scenarios_mcp.emulator.data.scorers import scoring_functions
from runloop_scenarios_mcp.emulator.data.texts import (
    hostile_statement,
    problem_statement,
    reference_diff,
    scenario_name,
    statement_size,
)
from runloop_scenarios_mcp.emulator.data.vocabulary import (
    BUGS,
    COMPONENTS,
    HOSTILE_MARKER,
    LANGS,
    PEOPLE,
    TEAMS,
    VALIDATION_TYPES,
    Ctx,
)


def build_scenario(
    rng: random.Random,
    index: int,
    sid: str,
    benches: list[str],
    *,
    archived: bool,
    large: bool,
    hostile: bool,
    odd_weights: bool,
    forced_scorer: str | None,
    previous: list[dict[str, Any]],
) -> dict[str, Any]:
    bug, module, problem = rng.choice(BUGS)
    ctx = Ctx(index + 1, rng.choice(LANGS), rng.choice(COMPONENTS), bug, module, problem)
    scenario: dict[str, Any] = {"id": sid, "name": scenario_name(rng, ctx, previous, hostile)}
    statement = problem_statement(rng, ctx, rng.randint(20_000, 60_000) if large else statement_size(rng))
    if hostile:
        statement = hostile_statement(rng, sid, statement)
    input_context: dict[str, Any] = {"problem_statement": statement}
    roll = rng.random()
    if roll < 0.45:
        input_context["additional_context"] = {
            "repository": f"https://github.com/acme/{ctx.comp}",
            "base_commit": hex_string(rng, 40),
            "language": ctx.lang.name,
            "files_of_interest": [ctx.path(ctx.lang.src_path), ctx.path(ctx.lang.test_path)],
        }
    elif roll < 0.6:
        input_context["additional_context"] = None
    scenario["input_context"] = input_context
    scenario["scoring_contract"] = {
        "scoring_function_parameters": scoring_functions(rng, ctx, forced_scorer, odd_weights)
    }
    roll = rng.random()
    if roll < 0.75:
        scenario["environment"] = scenario_environment(rng, ctx)
    elif roll < 0.9:
        scenario["environment"] = None
    scenario["metadata"] = _metadata(rng, ctx, benches, hostile)
    scenario["status"] = "archived" if archived else "active"
    if rng.random() < 0.2:
        scenario["is_public"] = rng.random() < 0.3
    roll = rng.random()
    if roll < 0.6:
        scenario["reference_output"] = reference_diff(rng, ctx)
    elif roll < 0.7:
        scenario["reference_output"] = None
    elif roll < 0.75:
        scenario["reference_output"] = ""
    if rng.random() < 0.3:
        scenario["required_environment_variables"] = rng.sample(
            ["DATABASE_URL", "REDIS_URL", "LOG_LEVEL", "TZ", "PYTHONHASHSEED", "NODE_ENV", "RUST_BACKTRACE"],
            rng.randint(0, 3),
        )
    if rng.random() < 0.2:
        scenario["required_secret_names"] = rng.sample(
            ["GITHUB_TOKEN", "OPENAI_API_KEY", "STRIPE_TEST_KEY", "NPM_TOKEN", "AWS_ACCESS_KEY_ID"], rng.randint(0, 2)
        )
    roll = rng.random()
    if roll < 0.3:
        scenario["scorer_timeout_sec"] = rng.choice([300, 600, 900, 1800, 3600])
    elif roll < 0.4:
        scenario["scorer_timeout_sec"] = None
    roll = rng.random()
    if roll < 0.8:
        scenario["validation_type"] = rng.choice(VALIDATION_TYPES)
    elif roll < 0.9:
        scenario["validation_type"] = None
    return scenario


def _metadata(rng: random.Random, ctx: Ctx, benches: list[str], hostile: bool) -> dict[str, str]:
    candidates: list[tuple[str, str]] = [
        ("team", rng.choice(TEAMS)),
        ("owner", rng.choice(PEOPLE)),
        ("language", ctx.lang.name),
        ("source", rng.choice(("github-issue", "internal", "synthetic", "customer-report"))),
        ("ticket", f"ENG-{rng.randint(100, 9999)}"),
        ("difficulty", rng.choice(("easy", "medium", "hard"))),
    ]
    if benches and rng.random() < 0.5:
        candidates.insert(0, ("benchmark", benches[0]))
    if rng.random() < 0.05:
        candidates.append(("团队", "基础设施"))
    if rng.random() < 0.03:
        candidates.append(("notes", "flaky on arm64 🐢; see thread ✔"))
    chosen = candidates[: rng.randint(0, 6)]
    if hostile:
        chosen = chosen[:5]
        chosen.append(("reviewer_note", f"{HOSTILE_MARKER} now.\x00\u2028"))
    return dict(chosen)


def add_future_fields(rng: random.Random, scenario: dict[str, Any]) -> None:
    """Fields no client knows yet, at the top level and nested, so read-modify-write is tested."""
    options = ["difficulty", "x_labels", "gpu_request", "scorer_extra"]
    for option in rng.sample(options, rng.randint(1, 3)):
        if option == "difficulty":
            scenario["difficulty"] = {"level": rng.choice(("easy", "hard")), "estimated_minutes": rng.randint(5, 240)}
        elif option == "x_labels":
            scenario["x_labels"] = rng.sample(["network", "flaky", "needs-gpu", "long-running", "db"], 2)
        elif option == "gpu_request":
            env = scenario.get("environment") or {}
            if isinstance(env.get("launch_parameters"), dict):
                env["launch_parameters"]["gpu_request"] = {
                    "count": 1,
                    "model": rng.choice(("nvidia-l4", "nvidia-a10g")),
                }
            else:
                scenario["x_created_by_pipeline"] = "ingest-v3"
        else:
            function = scenario["scoring_contract"]["scoring_function_parameters"][0]
            function["scorer"]["sandbox_profile"] = rng.choice(("strict", "network-off"))
            function["x_weight_source"] = "auto"
