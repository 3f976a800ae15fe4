"""`freeze_startup_heap`: take what a serving process built at start-up out of the collector's
sight.

A serving process holds a few hundred thousand objects once its imports (LangChain, LangGraph,
pydantic, the OpenAI SDK, aiohttp) and its start-up are done, and keeps nearly all of them for its
life. CPython's full collection walks every tracked object; under load, with many objects
surviving each young collection, one runs every few seconds and stops the event loop for tens to
hundreds of milliseconds, which every open stream sees as a late token. `gc.freeze()` moves the
objects alive now into a permanent generation that collections skip. Called once, by the serving
process only (the CLIs), after start-up: objects made later are collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect, then freeze what is left; the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
