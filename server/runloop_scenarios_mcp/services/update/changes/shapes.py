"""The shape of a scenario, derived from the pydantic models: which keys each level knows.

:data:`SCENARIO_SHAPE` mirrors ``upstream/models.py``'s ``ScenarioView``. Each field is one of a
few shapes: a model (known keys), a list of models, the scorers list (patchable by name), a scorer
(its keys depend on its ``type``), a single value, or a free-form map that takes any key.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from runloop_scenarios_mcp.upstream.models import ScenarioView, ScoringFunction

SCORERS_PATH = ("scoring_contract", "scoring_function_parameters")
REQUEST_ONLY_FIELD = "environment_parameters"
"""The update request's name of ``environment``: refused in changes with ``messages.use_environment`` (at the top
level by plan_update)."""


class Free:
    """Any key, any value: a free-form map, or a field this server does not know."""


class Leaf:
    """A single value (string, number, enum) or a list of them: it has no keys of its own."""


@dataclass(frozen=True)
class Model:
    fields: Mapping[str, Shape]


@dataclass(frozen=True)
class Items:
    """A list of objects (e.g. test_files); a list in a merge patch replaces the whole list."""

    item: Shape


@dataclass(frozen=True)
class Scorers:
    """scoring_function_parameters: a list of scoring functions, patchable by name."""

    function: Model


@dataclass(frozen=True)
class ScorerUnion:
    """A scorer: its known keys depend on its ``type``; an unknown type takes any key."""

    variants: Mapping[str, Model]


Shape = Free | Leaf | Model | Items | Scorers | ScorerUnion
FREE = Free()
LEAF = Leaf()


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions and Annotated)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _model_classes(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [cls for arg in get_args(annotation) for cls in _model_classes(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _is_free(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_free(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_is_free(arg) for arg in get_args(annotation))
    return annotation is Any or annotation is dict or origin is dict


def _list_item(annotation: Any) -> Any:
    """The item type of ``list[X]`` (through Optional), or None."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _list_item(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        items = [_list_item(arg) for arg in get_args(annotation)]
        return next((item for item in items if item is not None), None)
    if origin is list:
        args = get_args(annotation)
        return args[0] if args else Any
    return None


def _type_tag(cls: type[BaseModel]) -> str | None:
    field = cls.model_fields.get("type")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    tags = get_args(field.annotation)
    return tags[0] if len(tags) == 1 and isinstance(tags[0], str) else None


def _model(cls: type[BaseModel]) -> Model:
    return Model({(info.alias or name): _shape_of(info.annotation) for name, info in cls.model_fields.items()})


def _shape_of(annotation: Any) -> Shape:
    item = _list_item(annotation)
    if item is not None:
        classes = _model_classes(item)
        if classes == [ScoringFunction]:
            return Scorers(_model(ScoringFunction))
        return Items(_model(classes[0])) if len(classes) == 1 else LEAF
    classes = _model_classes(annotation)
    if len(classes) > 1:
        tagged = {tag: _model(cls) for cls in classes if (tag := _type_tag(cls)) is not None}
        return ScorerUnion(tagged)
    if classes:
        return _model(classes[0])
    return FREE if _is_free(annotation) else LEAF


SCENARIO_SHAPE = _model(ScenarioView)
TOP_FIELDS: tuple[str, ...] = (*SCENARIO_SHAPE.fields, REQUEST_ONLY_FIELD)


def known_fields(shape: Shape, held: Mapping[str, Any], patch: Mapping[str, Any]) -> Mapping[str, Shape] | None:
    """The known keys of an object of this shape (None: any key), a scorer's by its merged type."""
    if isinstance(shape, Model):
        return shape.fields
    if isinstance(shape, ScorerUnion):
        kind = patch["type"] if "type" in patch else held.get("type")
        variant = shape.variants.get(kind) if isinstance(kind, str) else None
        return None if variant is None else variant.fields
    return None


def child_shape(shape: Shape, segment: str) -> Shape:
    """The shape under one key of an object of this shape (a scorer's: the first variant that has the key)."""
    if isinstance(shape, Model):
        return shape.fields.get(segment, FREE)
    if isinstance(shape, Scorers):
        return shape.function
    if isinstance(shape, ScorerUnion):
        return next((v.fields[segment] for v in shape.variants.values() if segment in v.fields), FREE)
    return shape


def item_shape(shape: Items | Scorers) -> Shape:
    """The shape of each object in a list of this shape."""
    return shape.item if isinstance(shape, Items) else shape.function
