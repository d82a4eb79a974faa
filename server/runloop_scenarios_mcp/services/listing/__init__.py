"""list_scenarios as a service: project scenarios, pack them into a token budget, hand out cursors.

* :mod:`.projection`: the lean summary (remembered per scenario with its JSON and token counts while the
  values it shows are unchanged), or the top-level fields the caller chose;
* :mod:`.text`: content search (``text``): which scenarios mention every word, and the snippet of a match;
* :mod:`.feed`: upstream pages fetched lazily, at most :data:`MAX_UPSTREAM_REQUESTS` per call, examined
  for ``text``;
* :mod:`.packer`: whole scenarios while they fit, and the envelope around them;
* :mod:`.fitting`: a scenario too big alone is clipped, then its costliest values collapsed, never dropped;
* :mod:`.service`: the query, the cursor check, and the call that ties them together.

The cursor names the last scenario the page went through (returned, or with ``text`` examined and
skipped), so the next call resumes exactly after it (the API's own ``starting_after`` accepts any
scenario id it lists), whatever the upstream page boundaries were.
"""

from runloop_scenarios_mcp.services.listing.feed import MAX_UPSTREAM_PAGE, MAX_UPSTREAM_REQUESTS
from runloop_scenarios_mcp.services.listing.fitting import clip_note
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
