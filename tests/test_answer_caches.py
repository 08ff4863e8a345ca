"""What the answer layer keeps between questions gives what computing it afresh gives.

The label-word weights of the cell search are judged among the cells of the candidate passages and of the
whole document; the document's totals are kept, and the candidates it shares are counted once.
"""

from __future__ import annotations

from rag.answers import cells_of
from rag.answers.values import label_weights, passage_weights
from rag.types import Passage

ROWS = [
    "Net sales | Three Months Ended July 1, 2023: 81,797 | Three Months Ended June 25, 2022: 82,959",
    "Cost of sales | Three Months Ended July 1, 2023: 45,384",
    "Gross margin | Three Months Ended July 1, 2023: 36,413",
    "Research and development | Three Months Ended July 1, 2023: 7,442",
    "Net income | Three Months Ended July 1, 2023: 19,881",
    "Operating expenses | Total operating expenses: 13,415",
]


def _passage(i: int, text: str, source: str = "10q.pdf") -> Passage:
    return Passage(source, 1000 * i, 1000 * i + len(text), text, 0.5, "Statements of Operations", chunk_id=i)


def test_weights_among_passages_and_their_document_equal_those_counted_afresh() -> None:
    document = [_passage(i, "\n".join(ROWS[i : i + 3])) for i in range(len(ROWS))]
    other = _passage(99, "Net sales | Services: 21,213", source="other.pdf")
    for candidates in ([], [document[1]], [document[0], document[4], other], [other], document):
        seen = {p.chunk_id for p in candidates}
        union = [*candidates, *(p for p in document if p.chunk_id not in seen)]
        expected = label_weights([c for p in union for c in cells_of(p)])
        for _ in range(2):  # the second time from the kept totals
            assert passage_weights(candidates, document) == expected
    assert passage_weights([other]) == label_weights(cells_of(other))


def test_letters_of_plain_and_accented_text_as_read_letter_by_letter() -> None:
    import re
    import unicodedata

    from rag.answers.constraints import Scope, _letters

    def reference(text: str) -> str:
        plain = unicodedata.normalize("NFKD", text.lower().replace("’", "'").replace("'s ", " "))
        plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
        return " " + " ".join(re.findall(r"[a-z0-9]+", plain)) + " "

    for text in ["Apple's Total Net Sales, Q3 2023", "Stürmer & Müller’s café", "NTSB ½ Ångström", ""]:
        assert _letters(text) == reference(text)
        scope = Scope(text, "identity line")
        assert scope.words == frozenset(reference(scope.all).split())
        assert scope.compact == reference(scope.all).replace(" ", "")


def test_letters_of_a_long_text_with_accents_and_punctuation() -> None:
    from rag.answers.constraints import _letters

    text = "Naïve café — “Stürmer’s” Å ĳ ﬁnance • 10‑Q " * 500
    import re
    import unicodedata

    plain = unicodedata.normalize("NFKD", text.lower().replace("’", "'").replace("'s ", " "))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    assert _letters(text) == " " + " ".join(re.findall(r"[a-z0-9]+", plain)) + " "
    assert " naive " in _letters(text) and " sturmer " in _letters(text)


def test_what_is_kept_per_text_is_bounded_by_characters_and_equals_a_fresh_reading() -> None:
    import threading

    from rag.answers.constraints import _words
    from rag.answers.kept import KeptPerText

    calls: list[str] = []

    def count(text: str) -> int:
        calls.append(text)
        return len(text.split())

    kept = KeptPerText(count, entries=100, budget=1_000)
    documents = [f"document {i} " + "word " * 90 for i in range(30)]  # about 500 characters each
    assert [kept(d) for d in documents] == [len(d.split()) for d in documents]
    assert kept.kept_chars <= 1_000 and len(calls) == 30  # two documents fit, each read once
    assert kept(documents[-1]) == len(documents[-1].split()) and len(calls) == 30  # the latest is kept
    assert kept(documents[0]) == len(documents[0].split()) and len(calls) == 31  # the first was let go
    assert kept("x" * 5_000) == 1 and kept.kept_chars <= 1_000  # larger than the budget: not kept
    few = KeptPerText(count, entries=3)
    for d in documents[:5]:
        few(d)
    assert len(few._kept) == 3  # at most ``entries`` too

    results: list[list[int]] = [[] for _ in range(4)]
    threads = [threading.Thread(target=lambda r=r: r.extend(kept(d) for d in documents)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[len(d.split()) for d in documents]] * 4 and kept.kept_chars <= 1_000
    # The name checks' own cache answers as a fresh reading does.
    text = "Research and Development at Stürmer AG, R&D"
    fresh = frozenset({"research", "and", "development", "at", "sturmer", "ag", "r", "d"})
    assert _words(text) == _words.__wrapped__(text) == fresh


def test_documents_prepared_before_the_first_question_give_the_same_answers(seed_index) -> None:
    from rag import Assistant
    from rag.answers import Answerer, values
    from rag.extractive import _sentences

    document = [_passage(i, "\n".join(ROWS[i : i + 3])) for i in range(len(ROWS))]
    identity = "10q.pdf\nOrchard Devices Inc.\nFor the quarterly period ended July 1, 2023"
    question = "What was Orchard Devices' net income for the three months ended July 1, 2023?"
    for kept in (values._label_counts, values._key_index, _sentences):
        kept.cache_clear()
    fresh = Answerer().answer(question, document[3:5], {"10q.pdf": identity})
    for kept in (values._label_counts, values._key_index, _sentences):
        kept.cache_clear()
    answerer = Answerer()
    text = "\n".join(p.text for p in document)
    assert answerer.prepare([(identity, text, document)]) == len(document)
    assert values._label_counts.cache_info().currsize >= len(document)
    assert _sentences.cache_info().currsize >= len(document)
    prepared = answerer.answer(question, document[3:5], {"10q.pdf": identity})
    assert prepared == fresh and prepared.text.startswith("Net income, Three Months Ended July 1, 2023: 19,881")
    # Out of time: the document it is on is finished, the next ones are left for the questions.
    assert answerer.prepare([(identity, text, document)] * 3, seconds=0.0) == len(document)
    # A warmed assistant has prepared its documents: their sentences are kept before any question.
    _sentences.cache_clear()
    Assistant(index_dir=seed_index).warm()
    assert _sentences.cache_info().currsize > 0


def test_a_failure_while_preparing_documents_does_not_stop_warm_up(seed_index, monkeypatch, caplog) -> None:
    from rag import Assistant
    from rag.answers import Answerer

    def broken(self, documents, seconds=0.0):  # type: ignore[no-untyped-def]
        raise ValueError("a document the answer layer cannot read")

    monkeypatch.setattr(Answerer, "prepare", broken)
    assistant = Assistant(index_dir=seed_index)
    assistant.warm()  # does not raise
    assert "preparing the documents for answers stopped" in caplog.text
    assert assistant.ask("What did the leaders agree on?").passages
