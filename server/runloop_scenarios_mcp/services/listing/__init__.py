"""list_scenarios as a service: project scenarios, pack them into a token budget, hand out cursors.

* :mod:`.projection`: the lean summary, or the top-level fields the caller chose;
* :mod:`.feed`: upstream pages fetched lazily, at most :data:`MAX_UPSTREAM_REQUESTS` per call;
* :mod:`.packer`: whole scenarios while they fit; a scenario too big alone is clipped, never dropped;
* :mod:`.service`: the query, the cursor check, and the call that ties them together.

The cursor names the last scenario returned, so the next call resumes exactly after it (the API's own
``starting_after`` accepts any scenario id), whatever the upstream page boundaries were.
"""

from runloop_scenarios_mcp.services.listing.feed import MAX_UPSTREAM_PAGE, MAX_UPSTREAM_REQUESTS
from runloop_scenarios_mcp.services.listing.packer import clip_note
from runloop_scenarios_mcp.services.listing.projection import SELECTABLE_FIELDS, normalize_fields, summarize
from runloop_scenarios_mcp.services.listing.service import ListRequest, list_page

__all__ = [
    "MAX_UPSTREAM_PAGE",
    "MAX_UPSTREAM_REQUESTS",
    "SELECTABLE_FIELDS",
    "ListRequest",
    "clip_note",
    "list_page",
    "normalize_fields",
    "summarize",
]
