"""Taylor-runtime tests use tiny networks, where a second intra-op thread
only adds synchronisation (and, on a busy 2-core machine, waits of
milliseconds per operation); run them on one thread and restore it after."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
