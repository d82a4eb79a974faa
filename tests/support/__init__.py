"""Helpers shared by the tests (and by bench scripts): import them from here, never from ``conftest``.

- ``common``: constants (``CANARY_KEY``, ``TEST_SECRET``, ``ROOT``, ``SCHEMAS``), ``make_settings``, the MCP
  ``Session`` with its schema-checking calls, ``error_text``, update_scenario helpers, ``small_scenario``
  and the independent ``RealTokens`` counter.
- ``serving``: the streamable HTTP app under uvicorn on a loopback port.
- ``raw_stdio``: the installed console script driven by hand over stdio.
- ``fake_runloop``: an independent fake of the Runloop scenarios API.
- ``campaign``: the fault campaign (tests/test_fault_campaign.py, bench/faults.py).

``tests/conftest.py`` holds only fixtures.
"""
