"""Settings from the environment: every kind of RAG_* variable parsed, CLI overrides winning (bad values:
tests/test_settings_env.py)."""

from __future__ import annotations

from pathlib import Path

from rag import Settings


def test_every_kind_of_variable_is_parsed() -> None:
    settings = Settings.from_env(
        {
            "RAG_INDEX_DIR": "/tmp/somewhere",
            "RAG_K": "9",
            "RAG_MIN_SCORE": "0.35",
            "RAG_FUSION": "rrf",
            "RAG_PRECISION": "fp32",
            "RAG_LLM_BASE_URL": "http://127.0.0.1:11434/v1",
            "RAG_LLM_TIMEOUT": "12.5",
            "RAG_CHUNK_TOKENS": "",  # empty: the default
            "UNRELATED": "x",
        }
    )
    assert settings.index_dir == Path("/tmp/somewhere") and settings.k == 9 and settings.min_score == 0.35
    assert (settings.fusion, settings.precision, settings.llm_timeout) == ("rrf", "fp32", 12.5)
    assert settings.llm_base_url == "http://127.0.0.1:11434/v1" and settings.chunk_tokens == 200
    # Overrides (CLI flags) win over the environment; None means "not given".
    assert Settings.from_env({"RAG_K": "9"}, k=3).k == 3 and Settings.from_env({"RAG_K": "9"}, k=None).k == 9
