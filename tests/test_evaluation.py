"""rag/evaluation.py, the source of every quality figure: metrics against values worked out by hand, the
SQuAD answer normalisation against known pairs, and the loaders on small files in each layout.

The metric tests drive :func:`evaluate` with a declared fake, ``Scripted``: an object with the assistant's
``ask``/``settings`` surface that returns prepared answers, so each figure can be checked against arithmetic
done by hand on the page. One test at the end runs the real assistant (real model, real FAISS) end to end.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from rag import Answer, Assistant, InputError, Settings
from rag.evaluation import (
    EvalResult,
    EvalSet,
    Question,
    _ndcg10,
    _safe_name,
    evaluate,
    figure_found,
    load_eval_set,
    normalize_answer,
    refusal_check,
    sample,
)
from rag.types import NOT_FOUND, Citation, Passage

from .conftest import FACTS, write


def P(source: str, start: int = 0, end: int = 10, text: str = "", score: float = 0.5) -> Passage:
    return Passage(source, start, end, text, score)


def C(n: int, source: str, start: int, end: int, highlights: tuple[tuple[int, int], ...] = ()) -> Citation:
    return Citation(n, source, start, end, "", 0.5, highlights=highlights)


class Scripted:
    """FAKE assistant (declared): ``ask`` returns the answer prepared for each question text and records
    the ``k`` it was asked with. Only for checking the metric arithmetic of :func:`evaluate`."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.settings = Settings()
        self.asked: list[tuple[str, int | None]] = []

    def ask(self, question: str, k: int | None = None) -> Answer:
        self.asked.append((question, k))
        return self.answers[question]


def run(kind: str, questions: list[Question], answers: dict[str, Answer], k: int) -> tuple[dict[str, float], Scripted]:
    fake = Scripted(answers)
    eval_set = EvalSet("hand", kind, Path("unused"), questions)
    result = evaluate(fake, eval_set, questions, k=k)  # type: ignore[arg-type]
    assert result.questions == len(questions) and result.k == k
    return result.metrics, fake


def answer(q: str, passages: list[Passage], text: str = NOT_FOUND, citations: list[Citation] | None = None) -> Answer:
    answered = text != NOT_FOUND
    return Answer(q, text, answered, citations or [], passages)


# ---------------------------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("The Denver Broncos!", "denver broncos"),
        ("  a   Cat,  an apple ", "cat apple"),
        ("Levi's Stadium", "levis stadium"),
        ("theatre Anne thence", "theatre anne thence"),  # articles only as whole words
        ("THE END.", "end"),
        ("$1,000.50", "100050"),
        ("Santa Clara, California.", "santa clara california"),
        ("a an the", ""),
        ("", ""),
        ("tab\tand\nnewline", "tab and newline"),
    ],
)
def test_normalize_answer_known_pairs(raw: str, normal: str) -> None:
    assert normalize_answer(raw) == normal


@pytest.mark.parametrize(
    ("figure", "text", "found"),
    [
        ("82,959", "total net sales were $82,959 million", True),
        ("82,959", "total net sales were $182,959 million", False),  # a longer number
        ("82,959", "it was 82,9591 units", False),
        ("82,959", "it was 82,959.5 units", False),  # a decimal continues it
        ("82,959", "it was 82,959.", True),  # the sentence's full stop does not
        ("82,959", "82,959, then more", True),
        ("1.5", "rose 11.5%", False),
        ("959", "it was 82,959", False),  # the tail of a number with separators
        ("5", "rose 1.5%", False),  # the decimals of another number
        ("1.5", "rose 1.5%", True),
        ("5.2", "no figures here", False),
    ],
)
def test_figure_found_whole_numbers_only(figure: str, text: str, found: bool) -> None:
    assert figure_found(figure, text) is found


def test_sample_is_every_nth_question_and_whole_when_n_is_none_or_too_big() -> None:
    qs = [Question(str(i), f"q{i}") for i in range(10)]
    assert [q.id for q in sample(qs, 3)] == ["0", "3", "6"]
    assert [q.id for q in sample(qs, 4)] == ["0", "2", "4", "6"]
    assert sample(qs, None) == qs and sample(qs, 0) == qs and sample(qs, 10) == qs and sample(qs, 50) == qs
    assert sample(qs, None) is not qs  # a copy


def test_safe_name_keeps_plain_ids_and_disambiguates_cleaned_ones() -> None:
    assert _safe_name("doc-1.v2_x") == "doc-1.v2_x.txt"
    cleaned = _safe_name("a/b c")
    assert cleaned.startswith("a_b_c-") and cleaned.endswith(".txt") and len(cleaned) == len("a_b_c-12345678.txt")
    assert _safe_name("a/b c") != _safe_name("a?b c")  # same cleaned text, different ids: different names
    long = _safe_name("x" * 200)
    assert long.startswith("x" * 80 + "-") and len(long) == 80 + 1 + 8 + 4


# ---------------------------------------------------------------------------------------------- nDCG@10


def test_ndcg_by_hand_graded_gold_and_a_repeated_document() -> None:
    q = Question("q", "?", relevant={"A": 2, "B": 1})
    # Documents in rank order C, A, B (A's second passage does not count again): gains 0, 2, 1.
    # DCG = (2^2-1)/log2(3) + (2^1-1)/log2(4) = 3/1.5850 + 0.5 = 2.3928; ideal 2, 1: 3/1 + 1/1.5850 = 3.6309.
    got = _ndcg10([P("C"), P("A"), P("A"), P("B")], q)
    assert got == pytest.approx(2.3928 / 3.6309, abs=1e-4)
    assert got == pytest.approx(0.6590, abs=1e-4)
    assert _ndcg10([P("A"), P("B"), P("C")], q) == pytest.approx(1.0)  # ideal order
    assert _ndcg10([P("B"), P("A")], q) == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))


def test_ndcg_missing_gold_zero_grades_and_rank_beyond_ten() -> None:
    assert _ndcg10([P("A")], Question("q", "?")) == 0.0  # no judgements at all
    assert _ndcg10([P("A")], Question("q", "?", relevant={"A": 0})) == 0.0  # only a "not relevant" grade
    assert _ndcg10([], Question("q", "?", relevant={"A": 1})) == 0.0  # nothing retrieved
    ten_misses = [P(f"x{i}") for i in range(10)]
    assert _ndcg10([*ten_misses, P("A")], Question("q", "?", relevant={"A": 1})) == 0.0  # gold at rank 11
    # Ties between two equally graded gold documents: either order is ideal.
    tie = Question("q", "?", relevant={"A": 1, "B": 1})
    assert _ndcg10([P("A"), P("B")], tie) == pytest.approx(1.0) == _ndcg10([P("B"), P("A")], tie)
    # Three gold, one found at rank 1: 1 / (1 + 1/log2(3) + 1/log2(4)) = 1 / 2.1309 = 0.4693.
    three = Question("q", "?", relevant={"A": 1, "B": 1, "D": 1})
    assert _ndcg10([P("A"), P("x")], three) == pytest.approx(0.4693, abs=1e-4)


# ---------------------------------------------------------------------------------------------- evaluate()


def test_squad_metrics_by_hand() -> None:
    """Four questions on a.txt, gold span 10-20, k=3.

    q1: hit at rank 3 (a passage of a.txt ending at 9 does not overlap 10-20)  -> hit@1 0, hit@3 1, rr 1/3
    q2: one passage only (k larger than the list), a hit                       -> 1, 1, 1
    q3: the only hit at rank 4, past k                                         -> 0, 0, 0
    q4: nothing retrieved                                                      -> 0, 0, 0
    hit@1 = 1/4, hit@3 = 2/4, MRR = (1/3 + 1) / 4 = 1/3.
    Answers: q1 "The Denver Broncos won. [1]" contains gold "Denver Broncos", cites 15-30 quoting 16-19 (both on
    gold); q2 "Carolina [1]" does not contain "Panthers", cites 5-12 (on gold) quoting 5-8 (not); q3 refused;
    q4 answered from another file, gold "" is ignored. answered 3/4, contains 1/4, cited 2/4, quoted 1/4;
    words (markers dropped) 4, 1, 1 -> mean 2.0.
    """
    gold = {"source": "a.txt", "spans": ((10, 20),)}
    qs = [
        Question("1", "q1", answers=("Denver Broncos",), **gold),  # type: ignore[arg-type]
        Question("2", "q2", answers=("Panthers",), **gold),  # type: ignore[arg-type]
        Question("3", "q3", answers=("x",), **gold),  # type: ignore[arg-type]
        Question("4", "q4", answers=("", "the"), **gold),  # type: ignore[arg-type]
    ]
    answers = {
        "q1": answer(
            "q1",
            [P("b.txt", 0, 50), P("a.txt", 0, 10), P("a.txt", 15, 30)],
            "The Denver Broncos won. [1]",
            [C(1, "a.txt", 15, 30, ((16, 19),))],
        ),
        "q2": answer("q2", [P("a.txt", 5, 12)], "Carolina [1]", [C(1, "a.txt", 5, 12, ((5, 8),))]),
        "q3": answer("q3", [P("b.txt"), P("b.txt", 20, 30), P("c.txt"), P("a.txt", 19, 40), P("a.txt", 12, 14)]),
        "q4": answer("q4", [], "something [1]", [C(1, "b.txt", 10, 20, ((10, 20),))]),
    }
    m, fake = run("squad", qs, answers, k=3)
    assert [k for _, k in fake.asked] == [3, 3, 3, 3]  # squad asks at depth k
    assert m["hit@1"] == pytest.approx(1 / 4)
    assert m["hit@3"] == pytest.approx(2 / 4)
    assert m["mrr"] == pytest.approx(1 / 3)
    assert m["answered"] == pytest.approx(3 / 4)
    assert m["answer_contains_gold"] == pytest.approx(1 / 4)
    assert m["citation_on_gold"] == pytest.approx(2 / 4)
    assert m["quote_on_gold"] == pytest.approx(1 / 4)
    assert m["mean_answer_words"] == pytest.approx(2.0)
    assert "ndcg@10" not in m and "all_sources@10" not in m
    assert m["latency_p50_ms"] >= 0 and m["latency_p95_ms"] >= m["latency_p50_ms"]


def test_squad_span_edges_touching_is_not_overlap() -> None:
    """Half-open spans: a passage ending exactly where the gold starts, or starting where it ends, misses."""
    q = Question("1", "q", "a.txt", ((10, 20),))
    cases = {(0, 10): 0.0, (20, 30): 0.0, (0, 11): 1.0, (19, 30): 1.0, (12, 15): 1.0, (0, 40): 1.0}
    for (start, end), expected in cases.items():
        m, _ = run("squad", [q], {"q": answer("q", [P("a.txt", start, end)])}, k=1)
        assert m["hit@1"] == expected, (start, end)
    m, _ = run("squad", [q], {"q": answer("q", [P("b.txt", 10, 20)])}, k=1)  # right span, wrong file
    assert m["hit@1"] == 0.0


def test_beir_metrics_by_hand_graded_and_zero_judgements() -> None:
    """k=2. Graded gold A=2, B=1, and Z judged 0 (not relevant).

    q1: Z, A, B -> Z is no hit: hit@1 0, hit@2 1, rr 1/2; nDCG: gains 0,2,1 = 0.6590 (as in the nDCG test)
    q2: B first -> 1, 1, 1; nDCG: gains 1 then nothing: 1 / 3.6309 = 0.2754
    q3: no judged document retrieved -> 0, 0, 0, nDCG 0
    hit@1 = 1/3, hit@2 = 2/3, MRR = 1.5/3 = 0.5, nDCG@10 = (0.6590 + 0.2754) / 3 = 0.3115.
    """
    rel = {"A": 2, "B": 1, "Z": 0}
    qs = [Question(str(i), f"q{i}", relevant=rel) for i in (1, 2, 3)]
    answers = {
        "q1": answer("q1", [P("Z"), P("A"), P("B")]),
        "q2": answer("q2", [P("B")], "B says so [1]", [C(1, "B", 0, 10)]),
        "q3": answer("q3", [P("x"), P("y")], "wrong [1]", [C(1, "Z", 0, 10)]),
    }
    m, fake = run("beir", qs, answers, k=2)
    assert [k for _, k in fake.asked] == [10, 10, 10]  # BEIR retrieves 10 deep for nDCG@10
    assert m["hit@1"] == pytest.approx(1 / 3)
    assert m["hit@2"] == pytest.approx(2 / 3)
    assert m["mrr"] == pytest.approx(0.5)
    assert m["ndcg@10"] == pytest.approx((0.6590 + 0.2754) / 3, abs=1e-4)
    assert m["answered"] == pytest.approx(2 / 3)
    assert "answer_contains_gold" not in m and "citation_on_gold" not in m  # squad-only figures


def test_docs_metrics_by_hand_several_gold_documents_and_figures() -> None:
    """sec-10q layout, k=2.

    q1 (two sources X, Y; Multi-Doc): Y at rank 1, X at rank 12 -> hit@1 1; all sources in the top 10? no
    q2 (two sources X, Y): X at rank 2, Y at rank 10 -> hit@1 0, hit@2 1, rr 1/2; all sources in top 10: yes
    q3 (Single-Doc Single-Chunk, figure 82,959): right file, figure only in a passage past k -> hit@1 1,
        figure@2 no
    q4 (Single-Doc Single-Chunk, figures 1.5 and 82,959): "182,959" in the top 2 is not the figure, "1.5%" is
    q5 (Single-Doc Multi-Chunk, a figure): not counted in figure@k
    hit@1 = 3/5, hit@2 = 4/5 (q4's top 2 are other files), MRR = (1 + 1/2 + 1 + 0 + 1) / 5 = 0.7;
    all_sources@10 = 1/2 (two multi-document questions); figure@2 = 1/2 over 2 figure questions.
    """
    qs = [
        Question("1", "q1", sources=("X", "Y"), type="Multi-Doc RAG"),
        Question("2", "q2", sources=("X", "Y"), type="Multi-Doc RAG"),
        Question("3", "q3", sources=("X",), figures=("82,959",), type="Single-Doc Single-Chunk RAG"),
        Question("4", "q4", sources=("Y",), figures=("1.5", "82,959"), type="Single-Doc Single-Chunk RAG"),
        Question("5", "q5", sources=("X",), figures=("7.0",), type="Single-Doc Multi-Chunk RAG"),
    ]
    fill = [P(f"f{i}") for i in range(8)]
    answers = {
        "q1": answer("q1", [P("Y"), *fill, P("f8"), P("f9"), P("X")]),
        "q2": answer("q2", [P("f0"), P("X"), *fill[:7], P("Y")]),
        "q3": answer("q3", [P("X", text="net sales"), P("X", text="nothing"), P("X", text="$82,959 million")]),
        "q4": answer("q4", [P("W", text="$182,959 million"), P("W", text="up 1.5% on the year")]),
        "q5": answer("q5", [P("X", text="7.0")]),
    }
    m, fake = run("docs", qs, answers, k=2)
    assert [k for _, k in fake.asked] == [10] * 5
    assert m["hit@1"] == pytest.approx(3 / 5)
    assert m["hit@2"] == pytest.approx(4 / 5)
    assert m["mrr"] == pytest.approx(0.7)
    assert m["all_sources@10"] == pytest.approx(1 / 2)
    assert m["figure_questions"] == 2
    assert m["figure@2"] == pytest.approx(1 / 2)


def test_empty_question_list_gives_zeros_not_a_division_error() -> None:
    m, _ = run("squad", [], {}, k=5)
    assert m["hit@1"] == 0.0 and m["mrr"] == 0.0 and m["answered"] == 0.0
    assert m["latency_p50_ms"] == 0.0 and m["mean_answer_words"] == 0.0


def test_result_table_and_dict() -> None:
    result = EvalResult("set", 2, 5, {"hit@1": 0.5, "latency_p50_ms": 12.345, "mean_answer_words": 7.25}, {"k": 5})
    assert result.table().splitlines() == [
        "set: 2 questions, k=5",
        "  hit@1              0.500",
        "  latency_p50_ms     12.3",
        "  mean_answer_words  7.2",
    ]
    assert json.loads(json.dumps(result.to_dict())) == {
        "name": "set",
        "questions": 2,
        "k": 5,
        "metrics": {"hit@1": 0.5, "latency_p50_ms": 12.345, "mean_answer_words": 7.25},
        "settings": {"k": 5},
    }


# ---------------------------------------------------------------------------------------------- loaders


def jsonl(path: Path, rows: list[dict[str, Any]], blank: bool = True) -> None:
    lines = [json.dumps(r) for r in rows]
    write(path, "\n".join(lines[:1] + ([""] if blank else []) + lines[1:]) + "\n")


def test_load_squad_layout(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "a.txt", "text")
    jsonl(
        tmp_path / "questions.jsonl",
        [
            {"id": 17, "question": "Who?", "source": "a.txt", "spans": [[1, 3], ["5", "9"]], "answers": ["Ann"]},
            {"id": "b", "question": "What?", "source": "a.txt"},
        ],
    )
    loaded = load_eval_set(tmp_path)
    assert (loaded.name, loaded.kind, loaded.docs) == (tmp_path.name, "squad", tmp_path / "docs")
    assert loaded.questions == [
        Question("17", "Who?", "a.txt", ((1, 3), (5, 9)), ("Ann",)),
        Question("b", "What?", "a.txt", (), ()),
    ]


def test_load_sec10q_layout_figures_from_the_reference_answer(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    ref = "Sales were $82,959 million in 2023, up 5.2% (from $ 1,234.5); again $82,959 million, and 3 stores."
    jsonl(
        tmp_path / "questions.jsonl",
        [
            {"id": "s1", "question": "Sales?", "sources": ["2023 Q3 AAPL.pdf"], "type": "Single-Doc Single-Chunk RAG",
             "answer": ref},
            {"id": "s2", "question": "Trend?", "sources": ["a.pdf", "b.pdf"], "type": "Multi-Doc RAG"},
        ],
    )
    loaded = load_eval_set(tmp_path)
    assert loaded.kind == "docs"
    first, second = loaded.questions
    assert first.sources == ("2023 Q3 AAPL.pdf",) and first.type == "Single-Doc Single-Chunk RAG"
    assert first.figures == ("82,959", "5.2", "1,234.5")  # in order, once each; a year or "3" is no figure
    assert first.answers == (ref,)
    assert second.sources == ("a.pdf", "b.pdf") and second.figures == () and second.answers == ("",)


def test_load_forms_layout_questions_by_file(tmp_path: Path) -> None:
    """ntsb-forms: one form per question, a field name and a short answer instead of a type."""
    (tmp_path / "docs").mkdir()
    row = {"id": "f-0", "question": "How badly was the aircraft damaged?", "sources": ["f.pdf"],
           "field": "Aircraft Damage", "answer": "Substantial"}  # fmt: skip
    jsonl(tmp_path / "questions.jsonl", [row])
    (q,) = load_eval_set(tmp_path).questions
    assert (q.id, q.text, q.sources, q.source, q.spans) == ("f-0", row["question"], ("f.pdf",), "", ())
    assert "Substantial" in q.answers


def test_load_beir_layout_writes_cited_documents_once(tmp_path: Path) -> None:
    src = tmp_path / "beir"
    jsonl(
        src / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Otters", "text": "Otters use rocks."},
            {"_id": "d/2", "text": "No title here."},
            {"_id": 3, "title": "", "text": "Numeric id."},
        ],
    )
    queries = [{"_id": "q1", "text": "Tools?"}, {"_id": 2, "text": "Ids?"}, {"_id": "q9", "text": "Unjudged"}]
    jsonl(src / "queries.jsonl", queries)
    write(src / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td/2\t0\n2\t3\t1\nbad line\n")
    cache = tmp_path / "cache"
    loaded = load_eval_set(src, cache=cache)
    assert (loaded.kind, loaded.docs) == ("beir", cache / "docs")
    assert [(q.id, q.text, q.relevant) for q in loaded.questions] == [
        ("q1", "Tools?", {"d1.txt": 2, _safe_name("d/2"): 0}),
        ("2", "Ids?", {"3.txt": 1}),
    ]  # q9 has no judgement: left out
    docs = cache / "docs"
    assert (docs / "d1.txt").read_text() == "Otters\n\nOtters use rocks."
    assert (docs / _safe_name("d/2")).read_text() == "No title here."
    assert (docs / "3.txt").read_text() == "Numeric id."
    # Written once: a second load reuses the cache (an edit to the cache survives), the judgements are re-read.
    (docs / "d1.txt").write_text("kept")
    assert load_eval_set(src, cache=cache).questions == loaded.questions
    assert (docs / "d1.txt").read_text() == "kept"


def test_load_beir_without_judgements_and_unknown_layouts_say_what_is_expected(tmp_path: Path) -> None:
    jsonl(tmp_path / "b" / "corpus.jsonl", [{"_id": "d", "text": "t"}])
    jsonl(tmp_path / "b" / "queries.jsonl", [{"_id": "q", "text": "t"}])
    with pytest.raises(InputError, match=r"qrels/test\.tsv"):
        load_eval_set(tmp_path / "b", cache=tmp_path / "cache")
    write(tmp_path / "half" / "questions.jsonl", "")  # questions but no docs/
    for bad in (tmp_path / "half", tmp_path / "nothing"):
        with pytest.raises(InputError, match=r"docs/ \+ questions\.jsonl .*corpus\.jsonl \+ queries\.jsonl"):
            load_eval_set(bad)


# ---------------------------------------------------------------------------------------------- real path


@pytest.fixture(scope="module")
def facts_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvalSet, Path]:
    """Three documents (FACTS), indexed, and one answerable question on each in the squad layout, its gold
    span taken from the indexed text (an HTML file's text is what the page shows, not its bytes)."""
    base = tmp_path_factory.mktemp("facts-eval")
    asked = {
        "otters.txt": ("What do sea otters use to crack open shellfish?", "rocks"),
        "volcano.md": ("In which year did Mount Pelmora last erupt?", "1873"),
        "bridges.html": ("Who designed the Harlow Bridge?", "Mirela Quist"),
    }
    for name, text in FACTS.items():
        write(base / "docs" / Path(name).name, text)
    assistant = Assistant(index_dir=base / "index")
    assistant.index([base / "docs"])
    rows = []
    for file, (question, gold) in asked.items():
        at = assistant.document_text(file).index(gold)
        span = [[at, at + len(gold)]]
        rows.append({"id": file, "question": question, "source": file, "answers": [gold], "spans": span})
    assistant.store.close()
    jsonl(base / "questions.jsonl", rows)
    return load_eval_set(base), base / "index"


def test_evaluate_with_the_real_assistant(facts_set: tuple[EvalSet, Path]) -> None:
    """Each question's first passage holds its gold span, and the answer quotes it."""
    eval_set, index = facts_set
    m = evaluate(Assistant(index_dir=index), eval_set, eval_set.questions, k=3).metrics
    assert m["hit@1"] == m["hit@3"] == m["mrr"] == 1.0, m
    assert m["answered"] == m["answer_contains_gold"] == m["citation_on_gold"] == m["quote_on_gold"] == 1.0, m


def test_refusal_check_indexes_every_other_file_and_counts_both_halves(
    facts_set: tuple[EvalSet, Path], tmp_path: Path
) -> None:
    """Sorted files bridges.html, otters.txt, volcano.md: bridges and volcano are indexed, otters is not."""
    eval_set, _ = facts_set
    write(tmp_path / "half-docs" / "otters.txt", "left by an earlier run with another half")
    out = refusal_check(Settings(), eval_set, eval_set.questions, tmp_path)
    assert sorted(p.name for p in (tmp_path / "half-docs").iterdir()) == ["bridges.html", "volcano.md"]
    assert out["questions_indexed"] == 2.0 and out["questions_not_indexed"] == 1.0
    assert out["answered_when_indexed"] == 1.0
    assert out["refused_when_not_indexed"] == 1.0
