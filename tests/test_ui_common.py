"""ui.common's reading of Gradio's queue (no public way to tell that a client has gone) stays behind a version check."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

gr = pytest.importorskip("gradio")
from gradio.context import LocalContext  # noqa: E402

from ui import common  # noqa: E402


@pytest.mark.parametrize(("version", "alive"), [("6.31.0", False), ("7.0.0", True)])
def test_client_alive_reads_the_queue_only_on_the_gradio_it_was_written_for(monkeypatch, version, alive):
    dead = SimpleNamespace(alive=False)  # the queue marks an event dead when its client's stream closes
    blocks = SimpleNamespace(_queue=SimpleNamespace(event_ids_to_events={"e1": dead}))
    monkeypatch.setattr(gr, "__version__", version)
    blocks_token, event_token = LocalContext.blocks.set(blocks), LocalContext.event_id.set("e1")
    try:
        assert common.client_alive()() is alive
    finally:
        LocalContext.blocks.reset(blocks_token)
        LocalContext.event_id.reset(event_token)
