"""The agent's ``changes`` as a plain JSON Merge Patch: shorthand expanded, typos refused.

``expand_changes(current, changes)`` is the first step of an update preview. It takes what an agent
naturally sends and returns an RFC 7396 merge patch against ``current`` (get_scenario's shape):

* unknown keys at any depth are refused with their path and a did-you-mean, unless the scenario
  already holds that key there (fields newer than this server stay editable); the known keys of
  each level come from the models in ``upstream/models.py``, a scorer's from its (merged) ``type``;
  ``metadata``, ``input_context.additional_context`` and ``scorer.scorer_params`` take any key;
* a dotted top-level key (``"metadata.owner": "x"``) is shorthand for the nested form when that
  reading is the only one; otherwise the refusal shows the nested JSON to send;
* ``scoring_contract.scoring_function_parameters`` given as an object keyed by scorer name patches
  those scorers (merge patch each; null removes; a new name adds a complete scorer at the end) and
  becomes the full new list; an array still replaces the whole list;
* ``{"replace": [{"old": ..., "new": ...}, ...]}`` in place of a string edits that string in place.

Pure (no I/O), never mutates its arguments, never shares containers with them, and bounds its
recursion: changes nested deeper than :data:`MAX_DEPTH` are refused. Every refusal is an
:class:`InvalidChanges` whose short message says what to send instead and that nothing was written.
Weights, required scorer fields and value types are checked later, on the merged scenario.

* :mod:`.walk`: ``expand_changes`` and the walk that checks keys at every depth and ties the rest together;
* :mod:`.shapes`: the known keys of each level, derived from the pydantic models;
* :mod:`.dotted_keys`: dotted top-level keys read as the nested form, or refused when ambiguous;
* :mod:`.scorers_by_name`: scorers patched, removed or added by name;
* :mod:`.text_edits`: ``replace`` edits of a string;
* :mod:`.messages`: the refusals' wording (keys and values escaped and bounded, did-you-mean);
* :mod:`.json_values`: the absent marker, a deep copy without recursion, an RFC 7396 merge.
"""

from runloop_scenarios_mcp.services.update.changes.walk import MAX_DEPTH, expand_changes

__all__ = ["MAX_DEPTH", "expand_changes"]
