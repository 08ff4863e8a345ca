"""A question is embedded on one torch thread (a few rows of matrices: a second thread saves little, and
waiting for a busy core costs much more), and the thread count of bulk work is left as it was."""

from __future__ import annotations

from typing import Any

import numpy as np

from rag.config import packaged_model_path
from rag.encoders.torch_bert import load_torch_bert

from .conftest import SEED_QUESTION


def test_a_question_is_embedded_on_one_thread_and_the_count_is_restored() -> None:
    model = load_torch_bert(packaged_model_path(), 256, "fp32")
    torch = model.torch
    before = torch.get_num_threads()
    seen: list[int] = []
    forward = model._forward

    def recording(*args: Any) -> Any:
        seen.append(torch.get_num_threads())
        return forward(*args)

    model._forward = recording  # type: ignore[method-assign]
    try:
        torch.set_num_threads(2)
        vector = model.encode_one(SEED_QUESTION)
        assert seen == [1] and torch.get_num_threads() == 2
        bulk = model.encode([SEED_QUESTION])[0]  # bulk work keeps its threads
        assert seen == [1, 2]
    finally:
        model._forward = forward  # type: ignore[method-assign]
        torch.set_num_threads(before)
    assert float(vector @ bulk) > 0.9999 and np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
