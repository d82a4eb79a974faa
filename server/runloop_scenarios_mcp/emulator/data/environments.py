"""The scenario environment: blueprint or snapshot, working directory, launch parameters."""

from __future__ import annotations

import random
from typing import Any

from runloop_scenarios_mcp.emulator.data.draw import rand_id
from runloop_scenarios_mcp.emulator.data.vocabulary import RESOURCE_SIZES, Ctx


def scenario_environment(rng: random.Random, ctx: Ctx) -> dict[str, Any]:
    env: dict[str, Any] = {}
    if rng.random() < 0.8:
        env["blueprint_id"] = rand_id(rng, "bpt_")
        if rng.random() < 0.3:
            env["snapshot_id"] = None
    else:
        env["snapshot_id"] = rand_id(rng, "snp_")
    if rng.random() < 0.15:
        return env  # no working directory, no launch parameters
    env["working_directory"] = f"/home/user/{ctx.comp}"
    if rng.random() < 0.1:
        env["launch_parameters"] = None
        return env
    size = rng.choice(RESOURCE_SIZES)
    lp: dict[str, Any] = {"resource_size_request": size}
    if size == "CUSTOM_SIZE":
        cores = rng.choice((2, 4, 8))
        lp["custom_cpu_cores"] = cores
        lp["custom_gb_memory"] = min(64, cores * rng.choice((2, 4)))
        lp["custom_disk_size"] = rng.choice((16, 32, 64))
    roll = rng.random()
    if roll < 0.7:
        lp["architecture"] = "x86_64"
    elif roll < 0.9:
        lp["architecture"] = "arm64"
    elif roll < 0.95:
        lp["architecture"] = None
    lp["launch_commands"] = list(ctx.lang.setup[: rng.randint(1, len(ctx.lang.setup))])
    after_idle = None
    if rng.random() < 0.4:
        after_idle = {
            "idle_time_seconds": rng.choice((600, 1800, 3600)),
            "on_idle": rng.choice(("suspend", "shutdown")),
        }
        lp["after_idle"] = after_idle
    elif rng.random() < 0.5:
        lp["keep_alive_time_seconds"] = rng.choice((3600, 7200, 86_400))
    if rng.random() < 0.5:
        lp["user_parameters"] = rng.choice(({"uid": 1000, "username": "user"}, {"uid": 0, "username": "root"}))
    if rng.random() < 0.1:
        lifecycle: dict[str, Any] = {
            "lifecycle_hooks": {
                "suspend_commands": ["sync", "pkill -TERM -f dev-server"],
                "suspend_deadline_ms": 30_000,
            },
            "resume_triggers": {"http": True, "axon_event": False},
        }
        if after_idle is not None:
            lifecycle = {"after_idle": dict(after_idle), **lifecycle}
        lp["lifecycle"] = lifecycle
    if rng.random() < 0.05:
        lp["available_ports"] = [8080]
    if rng.random() < 0.1:
        lp["required_services"] = rng.sample(["postgres", "redis", "minio"], rng.randint(1, 2))
    if rng.random() < 0.1:
        lp["network_policy_id"] = rand_id(rng, "np_")
    if rng.random() < 0.1:
        lp["provisioning_tier"] = rng.choice(("standard", "flex"))
    env["launch_parameters"] = lp
    return env
