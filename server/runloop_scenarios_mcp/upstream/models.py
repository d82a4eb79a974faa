"""Runloop API objects (ScenarioView and its parts), faithful to the API and lenient on read.

Every model keeps fields it has never heard of (``extra="allow"`` at every level), tolerates
enum values added upstream after this code was written, and accepts absent or null optional
fields, so a scenario survives a read-modify-write untouched. Dump with :func:`dump` (only the
fields that were present, unknown ones included) to get back the JSON that was read.

The tools pass scenarios around as the raw JSON the API returned; these models validate that
JSON and give typed access where logic needs it (preview validation, summaries).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

ScenarioStatus: TypeAlias = Literal["active", "archived"]
ValidationType: TypeAlias = Literal["UNSPECIFIED", "FORWARD", "REVERSE", "EVALUATION"]
ResourceSize: TypeAlias = Literal["X_SMALL", "SMALL", "MEDIUM", "LARGE", "X_LARGE", "XX_LARGE", "CUSTOM_SIZE"]
Architecture: TypeAlias = Literal["x86_64", "arm64"]
OnIdle: TypeAlias = Literal["shutdown", "suspend"]
ProvisioningTier: TypeAlias = Literal["standard", "flex"]
ScorerType: TypeAlias = Literal[
    "ast_grep_scorer",
    "bash_script_scorer",
    "command_scorer",
    "custom_scorer",
    "python_script_scorer",
    "test_based_scorer",
]

VALIDATION_TYPES: tuple[str, ...] = get_args(ValidationType)
SCORER_TYPES: tuple[str, ...] = get_args(ScorerType)
LIST_FILTERS: tuple[str, ...] = ("name", "benchmark_id", "validation_type", "search")
"""The list endpoint's filters (upstream-api.md "List parameters"): what list_scenarios passes through. List
cursors pack the filters in this order, so reordering it invalidates the cursors already handed out."""
SCORING_FUNCTION_NAME_PATTERN = r"^[a-zA-Z0-9_-]+$"

# A number as JSON has it: int stays int and float stays float, so a round trip is exact.
Number: TypeAlias = int | float


class ApiModel(BaseModel):
    """Base of every API object: keeps unknown fields, never renames, never coerces strings."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, ser_json_inf_nan="null")


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON of ``model`` exactly as it was read: present fields only, unknown fields included."""
    return model.model_dump(mode="json", exclude_unset=True, by_alias=True)


# --- input context -------------------------------------------------------------------------


class InputContext(ApiModel):
    """What the agent under test is told: the problem statement and optional extra context."""

    problem_statement: str = ""
    """The task given to the agent under test; can be tens of KB."""
    additional_context: Any | None = None
    """Any JSON object with further context, or null."""


# --- scorers (a discriminated union on `type`) ---------------------------------------------


class AstGrepScorer(ApiModel):
    """Passes when an ast-grep pattern matches in the search directory."""

    type: Literal["ast_grep_scorer"] = "ast_grep_scorer"
    pattern: str = ""
    search_directory: str = ""
    lang: str | None = None


class BashScriptScorer(ApiModel):
    """Runs a bash script that prints ``score=[0.0..1.0]``."""

    type: Literal["bash_script_scorer"] = "bash_script_scorer"
    bash_script: str | None = None


class CommandScorer(ApiModel):
    """Runs a command; passes iff it exits 0."""

    type: Literal["command_scorer"] = "command_scorer"
    command: str | None = None


class CustomScorer(ApiModel):
    """A scorer registered with Runloop, with optional parameters."""

    type: Literal["custom_scorer"] = "custom_scorer"
    custom_scorer_type: str = ""
    scorer_params: Any | None = None


class PythonScriptScorer(ApiModel):
    """Runs a Python script that prints a float between 0.0 and 1.0."""

    type: Literal["python_script_scorer"] = "python_script_scorer"
    python_script: str = ""
    python_version_constraint: str | None = None
    requirements_contents: str | None = None


class TestFile(ApiModel):
    """A test file written into the working directory before the test command runs."""

    __test__ = False  # not a pytest test class
    file_contents: str | None = None
    file_path: str | None = None


class TestBasedScorer(ApiModel):
    """Writes test files and runs a test command."""

    __test__ = False  # not a pytest test class
    type: Literal["test_based_scorer"] = "test_based_scorer"
    test_command: str | None = None
    test_files: list[TestFile] | None = None


class UnknownScorer(ApiModel):
    """A scorer type added upstream after this code was written; kept as it is."""

    type: str


def _scorer_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) and kind in SCORER_TYPES else "unknown"


Scorer: TypeAlias = Annotated[
    Annotated[AstGrepScorer, Tag("ast_grep_scorer")]
    | Annotated[BashScriptScorer, Tag("bash_script_scorer")]
    | Annotated[CommandScorer, Tag("command_scorer")]
    | Annotated[CustomScorer, Tag("custom_scorer")]
    | Annotated[PythonScriptScorer, Tag("python_script_scorer")]
    | Annotated[TestBasedScorer, Tag("test_based_scorer")]
    | Annotated[UnknownScorer, Tag("unknown")],
    Discriminator(_scorer_tag),
]


class ScoringFunction(ApiModel):
    """One named, weighted scorer; the weights of a contract should sum to 1.0."""

    name: str
    scorer: Scorer
    weight: Number


class ScoringContract(ApiModel):
    """How a run of the scenario is scored."""

    scoring_function_parameters: list[ScoringFunction] = Field(default_factory=list)


# --- environment ---------------------------------------------------------------------------


class AfterIdle(ApiModel):
    """What happens to the devbox after it has been idle for a while."""

    idle_time_seconds: int | None = None
    on_idle: OnIdle | str | None = None


class LifecycleHooks(ApiModel):
    suspend_commands: list[str] | None = None
    suspend_deadline_ms: int | None = None


class ResumeTriggers(ApiModel):
    axon_event: bool | None = None
    http: bool | None = None


class LifecycleConfiguration(ApiModel):
    after_idle: AfterIdle | None = None
    lifecycle_hooks: LifecycleHooks | None = None
    resume_triggers: ResumeTriggers | None = None


class UserParameters(ApiModel):
    uid: int | None = None
    username: str | None = None


class LaunchParameters(ApiModel):
    """How the devbox of the scenario is launched."""

    resource_size_request: ResourceSize | str | None = None
    architecture: Architecture | str | None = None
    custom_cpu_cores: Number | None = None
    custom_gb_memory: int | None = None
    custom_disk_size: int | None = None
    keep_alive_time_seconds: int | None = None
    after_idle: AfterIdle | None = None
    lifecycle: LifecycleConfiguration | None = None
    launch_commands: list[str] | None = None
    available_ports: list[int] | None = None
    required_services: list[str] | None = None
    network_policy_id: str | None = None
    provisioning_tier: ProvisioningTier | str | None = None
    user_parameters: UserParameters | None = None


class ScenarioEnvironment(ApiModel):
    """The starting environment: blueprint or snapshot, launch parameters, working directory.

    Returned as ``environment``; sent on update as ``environment_parameters``.
    """

    blueprint_id: str | None = None
    snapshot_id: str | None = None
    launch_parameters: LaunchParameters | None = None
    working_directory: str | None = None


# --- the scenario --------------------------------------------------------------------------

REQUIRED_SCENARIO_FIELDS: tuple[str, ...] = ("id", "name", "input_context", "scoring_contract", "metadata", "status")


def _require_documented_fields(schema: dict[str, Any]) -> None:
    schema["required"] = list(REQUIRED_SCENARIO_FIELDS)


class ScenarioView(ApiModel):
    """A Runloop scenario: a repeatable AI-coding evaluation test (wire name ScenarioDefinitionView).

    Only ``id`` is indispensable when reading; the other documented-required fields default
    leniently (older servers omit some), while the published schema still lists them as required.
    """

    model_config = ConfigDict(json_schema_extra=_require_documented_fields)

    id: str
    name: str = ""
    input_context: InputContext = Field(default_factory=InputContext)
    scoring_contract: ScoringContract = Field(default_factory=ScoringContract)
    metadata: dict[str, str] = Field(default_factory=dict)
    status: ScenarioStatus | str = "active"
    environment: ScenarioEnvironment | None = None
    is_public: bool | None = None
    reference_output: str | None = None
    required_environment_variables: list[str] | None = None
    required_secret_names: list[str] | None = None
    scorer_timeout_sec: int | None = None
    validation_type: ValidationType | str | None = None


# Top-level fields, in the API's order. Which ones an update may send, and under what name.
SCENARIO_FIELDS: tuple[str, ...] = tuple(ScenarioView.model_fields)
READ_ONLY_FIELDS: frozenset[str] = frozenset({"id", "status", "is_public"})
UPDATE_FIELD_NAMES: dict[str, str] = {
    "name": "name",
    "input_context": "input_context",
    "scoring_contract": "scoring_contract",
    "environment": "environment_parameters",
    "metadata": "metadata",
    "reference_output": "reference_output",
    "required_environment_variables": "required_environment_variables",
    "required_secret_names": "required_secret_names",
    "scorer_timeout_sec": "scorer_timeout_sec",
    "validation_type": "validation_type",
}

CLEAR_VALUES: dict[str, Any] = {
    "metadata": {},
    "required_environment_variables": [],
    "required_secret_names": [],
    "reference_output": "",
}
"""Top-level fields the API clears with an empty value (docs/upstream-api.md, "Update body fields")."""
EMPTY_SUBFIELD: dict[str, dict[str, Any]] = {
    "input_context": {"additional_context": {}},
    "scoring_contract": {"scoring_function_parameters": []},
}
"""Sub-fields of the one-level update types, sent as empty when removed (absent would mean "keep")."""
