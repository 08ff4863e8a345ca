"""Settings from the environment: every RAG_* variable parsed to its field's type, bad values refused
in one line that names the variable or field and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import ConfigError, Settings


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


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("RAG_K", "many", "'many'"),
        ("RAG_K", "0", "got 0"),
        ("RAG_MIN_SCORE", "2.5", "2.5"),
        ("RAG_FUSION", "magic", "'magic'"),
        ("RAG_PRECISION", "fp8", "'fp8'"),
        ("RAG_LLM_BASE_URL", "localhost:11434", "'localhost:11434'"),
        ("RAG_LLM_TIMEOUT", "-1", "-1"),
    ],
)
def test_a_bad_value_is_refused_with_the_value(variable: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert words in message and "\n" not in message, message
