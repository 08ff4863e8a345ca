"""Every Settings field comes from its RAG_* variable, and every bad value is refused in one line that
names the variable and quotes the value (tests/test_settings.py checks the common cases)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rag import ConfigError, Settings

#: A valid value for each field's variable, and what it parses to ("MODEL_DIR": the test's own folder).
GOOD = {
    "index_dir": ("/tmp/elsewhere", Path("/tmp/elsewhere")),
    "model": ("MODEL_DIR", "MODEL_DIR"),
    "chunk_tokens": ("120", 120),
    "chunk_overlap": ("10", 10),
    "k": ("9", 9),
    "fusion": ("bm25", "bm25"),
    "min_score": ("-0.5", -0.5),
    "max_answer_sentences": ("2", 2),
    "batch_size": ("4", 4),
    "precision": ("bf16", "bf16"),
    "lock_timeout": ("0", 0.0),
    "max_file_mb": ("1.5", 1.5),
    "upload_max_mb": ("2", 2.0),
    "max_unzipped_mb": ("3", 3.0),
    "max_file_chars": ("1000", 1000),
    "max_file_seconds": ("7", 7.0),
    "index_memory_mb": ("800", 800.0),
    "index_job_seconds": ("60", 60.0),
    "llm_base_url": ("https://llm.example/v1", "https://llm.example/v1"),
    "llm_model": ("small-model", "small-model"),
    "llm_api_key": ("sk-test", "sk-test"),
    "llm_timeout": ("30", 30.0),
    "vector_store": ("milvus://db.example/docs", "milvus://db.example/docs"),
}


def test_every_field_is_read_from_its_variable(tmp_path: Path) -> None:
    assert set(GOOD) == {f.name for f in dataclasses.fields(Settings)}, "a new setting needs a line in GOOD"
    environ = {f"RAG_{name.upper()}": raw.replace("MODEL_DIR", str(tmp_path)) for name, (raw, _) in GOOD.items()}
    settings = Settings.from_env(environ)
    for name, (_, expected) in GOOD.items():
        expected = str(tmp_path) if expected == "MODEL_DIR" else expected
        value = getattr(settings, name)
        assert value == expected and type(value) is type(expected), (name, value)
    assert "sk-test" not in repr(settings), "the API key stays out of logs"


def test_the_environment_is_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_K", "11")
    monkeypatch.setenv("RAG_FUSION", "")  # empty: the default
    assert (Settings.from_env().k, Settings.from_env().fusion) == (11, "adaptive")


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("RAG_K", "0", "got 0"),
        ("RAG_K", "many", "'many'"),
        ("RAG_MIN_SCORE", "2.5", "2.5"),
        ("RAG_FUSION", "magic", "'magic'"),
        ("RAG_PRECISION", "fp8", "'fp8'"),
        ("RAG_LLM_BASE_URL", "localhost:11434", "'localhost:11434'"),
        ("RAG_LLM_TIMEOUT", "-1", "-1"),
        ("RAG_K", "2.5", "a whole number, got '2.5'"),
        ("RAG_CHUNK_TOKENS", "8", "got 8"),
        ("RAG_CHUNK_OVERLAP", "500", "(500)"),
        ("RAG_BATCH_SIZE", "0", "got 0"),
        ("RAG_MAX_ANSWER_SENTENCES", "-1", "got -1"),
        ("RAG_MAX_FILE_CHARS", "0", "got 0"),
        ("RAG_MAX_FILE_CHARS", "lots", "'lots'"),
        ("RAG_LOCK_TIMEOUT", "-1", "got -1"),
        ("RAG_MAX_FILE_MB", "nan", "got nan"),
        ("RAG_UPLOAD_MAX_MB", "inf", "got inf"),
        ("RAG_INDEX_MEMORY_MB", "0", "got 0"),
        ("RAG_INDEX_JOB_SECONDS", "soon", "'soon'"),
        ("RAG_MIN_SCORE", "abc", "'abc'"),
        ("RAG_LLM_TIMEOUT", "5000", "5000"),
        ("RAG_MODEL", "/no/such/model", "'/no/such/model'"),
        ("RAG_VECTOR_STORE", "redis://host/x", "'redis://host/x'"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(variable: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert variable in message and words in message and "\n" not in message, message


@pytest.mark.parametrize(
    ("environ", "variable", "words"),
    [
        # the chunker would cut these silently to what the model reads (254 word pieces) or to half a chunk
        ({"RAG_CHUNK_TOKENS": "999"}, "RAG_CHUNK_TOKENS", "from 16 to 254"),
        ({"RAG_CHUNK_TOKENS": "255"}, "RAG_CHUNK_TOKENS", "got 255"),
        ({"RAG_CHUNK_OVERLAP": "150"}, "RAG_CHUNK_OVERLAP", "from 0 to 100"),
        ({"RAG_CHUNK_TOKENS": "100", "RAG_CHUNK_OVERLAP": "60"}, "RAG_CHUNK_OVERLAP", "from 0 to 50"),
        # questions refuse k over 100: the setting is refused when built, not at the first question
        ({"RAG_K": "500"}, "RAG_K", "from 1 to 100"),
    ],
)
def test_values_the_code_would_cap_are_refused_with_their_range(
    environ: dict[str, str], variable: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environ)
    message = str(caught.value)
    assert variable in message and words in message and "\n" not in message, message


def test_the_largest_values_in_range_are_accepted() -> None:
    settings = Settings.from_env({"RAG_CHUNK_TOKENS": "254", "RAG_CHUNK_OVERLAP": "127", "RAG_K": "100"})
    assert (settings.chunk_tokens, settings.chunk_overlap, settings.k) == (254, 127, 100)


def test_chunk_size_over_the_models_limit_is_one_line_from_the_cli(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["RAG_CHUNK_TOKENS"] = "999"
    (tmp_path / "a.txt").write_text("Some text.", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index", str(tmp_path / "a.txt"), "--index", str(tmp_path / "index")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "RAG_CHUNK_TOKENS" in lines[0] and "999" in lines[0]
    assert not (tmp_path / "index" / "manifest.json").exists(), "nothing written with a capped value"
