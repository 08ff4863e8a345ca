"""Evaluation: measure retrieval and answers on a question set (squad-dev or BEIR layout)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import string
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .assistant import Assistant
from .config import Settings
from .errors import IndexMismatchError, InputError
from .types import Answer, IndexReport, Passage

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_MARKER = re.compile(r"\[\d+\]")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


@dataclass(frozen=True)
class Question:
    """One evaluation question: gold answers (squad) and/or relevant documents (BEIR)."""

    id: str
    text: str
    source: str = ""
    spans: tuple[tuple[int, int], ...] = ()
    answers: tuple[str, ...] = ()
    relevant: dict[str, int] = field(default_factory=dict)
    #: Document-level sets (sec-10q layout): every file holding the answer, the reference answer's
    #: figures, and the question's type ("Multi-Doc RAG", "Single-Doc Single-Chunk RAG", ...).
    sources: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    type: str = ""
    #: A form field's value as printed (ntsb-forms layout: ``field`` and ``answer``).
    value: str = ""


@dataclass
class EvalSet:
    """Documents folder and questions of an evaluation set."""

    name: str
    kind: str  # "squad", "beir" or "docs" (questions answered by whole files, e.g. sec-10q)
    docs: Path
    questions: list[Question]
    #: Questions the documents cannot answer (``unanswerable.jsonl`` beside ``questions.jsonl``).
    unanswerable: list[Question] = field(default_factory=list)


def load_eval_set(path: Path, cache: Path | None = None) -> EvalSet:
    """Read ``docs/`` + ``questions.jsonl`` (squad-dev) or ``corpus.jsonl`` + ``queries.jsonl`` + ``qrels/test.tsv``
    (BEIR). BEIR documents are written once as text files under ``cache`` so they can be indexed and cited."""
    path = Path(path).expanduser()
    if (path / "questions.jsonl").is_file() and (path / "docs").is_dir():
        questions = []
        for line in (path / "questions.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            q = json.loads(line)
            if "sources" in q:
                questions.append(_docs_question(q))
                continue
            questions.append(
                Question(
                    str(q["id"]),
                    q["question"],
                    q["source"],
                    tuple((int(a), int(b)) for a, b in q.get("spans", [])),
                    tuple(q.get("answers", [])),
                )
            )
        kind = "docs" if questions and questions[0].sources else "squad"
        unanswerable = []
        if (path / "unanswerable.jsonl").is_file():
            for line in (path / "unanswerable.jsonl").read_text(encoding="utf-8").splitlines():
                if line.strip():
                    q = json.loads(line)
                    unanswerable.append(Question(str(q["id"]), q["question"]))
        return EvalSet(path.name, kind, path / "docs", questions, unanswerable)
    if (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file():
        return _load_beir(path, cache)
    raise InputError(
        f"{path} is not an evaluation set: expected docs/ + questions.jsonl (squad-dev layout) "
        "or corpus.jsonl + queries.jsonl + qrels/test.tsv (BEIR layout)"
    )


#: Figures in a reference answer: amounts, percentages, numbers with thousands separators or decimals.
_FIGURE = re.compile(r"\$\s?\d[\d,]*(?:\.\d+)?|\d[\d,]*(?:\.\d+)?\s?%|\b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b|\b\d+\.\d+\b")


def _docs_question(q: dict[str, Any]) -> Question:
    figures = tuple(dict.fromkeys(re.sub(r"[^\d.,]", "", f).strip(".,") for f in _FIGURE.findall(q.get("answer", ""))))
    return Question(
        str(q["id"]),
        q["question"],
        sources=tuple(q["sources"]),
        figures=tuple(f for f in figures if f),
        type=str(q.get("type", "")),
        answers=(q.get("answer", ""),),
        value=str(q.get("answer", "")) if "field" in q else "",
    )


def value_found(value: str, text: str) -> bool:
    """Whether a field's ``value`` is in ``text``, case and runs of white space ignored."""
    wanted = " ".join(value.lower().split())
    return bool(wanted) and wanted in " ".join(text.lower().split())


def figure_found(figure: str, text: str) -> bool:
    """Whether ``figure`` (digits with separators) is in ``text`` as a whole number ("82,959" not in "182,959")."""
    return re.search(rf"(?<![\d,.]){re.escape(figure)}(?![\d]|[,.]\d)", text) is not None


def _safe_name(doc_id: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", doc_id)[:80]
    if cleaned != doc_id:
        cleaned += "-" + hashlib.sha256(doc_id.encode()).hexdigest()[:8]
    return cleaned + ".txt"


def _load_beir(path: Path, cache: Path | None) -> EvalSet:
    qrels_file = path / "qrels" / "test.tsv"
    if not qrels_file.is_file():
        raise InputError(f"{path} has no qrels/test.tsv: BEIR sets need relevance judgements")
    relevant: dict[str, dict[str, int]] = {}
    for i, line in enumerate(qrels_file.read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if len(parts) < 3 or (i == 0 and not parts[2].strip().lstrip("-").isdigit()):
            continue
        relevant.setdefault(parts[0], {})[_safe_name(parts[1])] = int(parts[2])
    docs = (cache or Path(tempfile.gettempdir()) / f"rag-eval-{path.name}") / "docs"
    marker = docs / ".complete"
    if not marker.is_file():
        docs.mkdir(parents=True, exist_ok=True)
        with open(path / "corpus.jsonl", encoding="utf-8") as corpus:
            for line in corpus:
                if line.strip():
                    doc = json.loads(line)
                    title = doc.get("title") or ""
                    body = f"{title}\n\n{doc.get('text', '')}" if title else doc.get("text", "")
                    (docs / _safe_name(str(doc["_id"]))).write_text(body, encoding="utf-8")
        marker.write_text("ok")
    questions = []
    for line in (path / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            qid = str(q["_id"])
            if qid in relevant:
                questions.append(Question(qid, q["text"], relevant=relevant[qid]))
    return EvalSet(path.name, "beir", docs, questions)


def sample(questions: list[Question], n: int | None) -> list[Question]:
    """Every ~len/n-th question (deterministic, spread over the whole set)."""
    if not n or n >= len(questions):
        return list(questions)
    step = len(questions) // n
    return questions[::step][:n]


def _passage_hit(passage: Passage, q: Question) -> bool:
    if q.relevant:
        return q.relevant.get(passage.source, 0) > 0
    if q.sources:
        return passage.source in q.sources
    return passage.source == q.source and any(passage.start < b and a < passage.end for a, b in q.spans)


def _ndcg10(passages: list[Passage], q: Question) -> float:
    ranked: list[str] = []
    for p in passages:
        if p.source not in ranked:
            ranked.append(p.source)
    gains = [q.relevant.get(doc, 0) for doc in ranked[:10]]
    dcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted(q.relevant.values(), reverse=True)[:10]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


@dataclass
class EvalResult:
    """Figures of one evaluation run."""

    name: str
    questions: int
    k: int
    metrics: dict[str, float]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "questions": self.questions,
            "k": self.k,
            "metrics": self.metrics,
            "settings": self.settings,
        }

    def table(self) -> str:
        """The figures as aligned text lines."""
        lines = [f"{self.name}: {self.questions} questions, k={self.k}"]
        width = max(len(key) for key in self.metrics)
        for key, value in self.metrics.items():
            shown = f"{value:.1f}" if key.endswith(("ms", "words")) else f"{value:.3f}"
            lines.append(f"  {key:<{width}}  {shown}")
        return "\n".join(lines)


def evaluate(
    assistant: Assistant,
    eval_set: EvalSet,
    questions: list[Question],
    k: int = 5,
    progress: Callable[[int], None] | None = None,
) -> EvalResult:
    """Ask every question and measure retrieval (hit@1, hit@k, MRR, nDCG@10) and answers."""
    hit1 = hitk = rr = ndcg = contains = cited = quoted = answered = 0.0
    words: list[int] = []
    latencies: list[float] = []
    depth = max(k, 10) if eval_set.kind in ("beir", "docs") else k
    all_sources = multi = figure_hits = figure_questions = figure_answers = 0.0
    value_questions = value1 = valuek = value_answers = 0.0
    for q in questions:
        began = time.perf_counter()
        answer = assistant.ask(q.text, k=depth)
        latencies.append(time.perf_counter() - began)
        passages = answer.passages
        hits = [_passage_hit(p, q) for p in passages]
        hit1 += bool(hits[:1] and hits[0])
        hitk += any(hits[:k])
        rr += next((1 / (i + 1) for i, h in enumerate(hits[:k]) if h), 0.0)
        if eval_set.kind == "beir":
            ndcg += _ndcg10(passages, q)
        if eval_set.kind == "docs":
            if len(q.sources) > 1:
                multi += 1
                all_sources += set(q.sources) <= {p.source for p in passages[:10]}
            if q.figures and q.type.startswith("Single-Doc Single-Chunk"):
                figure_questions += 1
                figure_hits += any(figure_found(f, p.text) for f in q.figures for p in passages[:k])
                said = _MARKER.sub("", answer.text)
                figure_answers += answer.answered and any(figure_found(f, said) for f in q.figures)
            if q.value:
                value_questions += 1
                held = [p.source in q.sources and value_found(q.value, p.text) for p in passages]
                value1 += bool(held[:1] and held[0])
                valuek += any(held[:k])
                value_answers += answer.answered and value_found(q.value, _MARKER.sub("", answer.text))
        if answer.answered:
            answered += 1
            words.append(len(_MARKER.sub("", answer.text).split()))
            if q.answers:
                text = normalize_answer(answer.text)
                contains += any(normalize_answer(g) and normalize_answer(g) in text for g in q.answers)
            cited += _cited_on_gold(answer, q, highlights=False)
            quoted += _cited_on_gold(answer, q, highlights=True)
        if progress is not None:
            progress(1)
    n = max(1, len(questions))
    latencies.sort()
    metrics = {"hit@1": hit1 / n, f"hit@{k}": hitk / n, "mrr": rr / n}
    if eval_set.kind == "beir":
        metrics["ndcg@10"] = ndcg / n
    if eval_set.kind == "docs":
        metrics["all_sources@10"] = all_sources / max(1.0, multi)
        if figure_questions:
            metrics[f"figure@{k}"] = figure_hits / figure_questions
            metrics["figure_in_answer"] = figure_answers / figure_questions
            metrics["figure_questions"] = figure_questions
        if value_questions:
            metrics["value@1"] = value1 / value_questions
            metrics[f"value@{k}"] = valuek / value_questions
            metrics["value_in_answer"] = value_answers / value_questions
            metrics["value_questions"] = value_questions
    if eval_set.kind == "squad":
        metrics["answer_contains_gold"] = contains / n
        metrics["citation_on_gold"] = cited / n
        metrics["quote_on_gold"] = quoted / n
    metrics["answered"] = answered / n
    metrics["mean_answer_words"] = sum(words) / max(1, len(words))
    metrics["latency_p50_ms"] = 1000 * latencies[len(latencies) // 2] if latencies else 0.0
    metrics["latency_p95_ms"] = (
        1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] if latencies else 0.0
    )
    if eval_set.unanswerable:
        refused = sum(not assistant.ask(q.text, k=depth).answered for q in eval_set.unanswerable)
        metrics["unanswerable_refused"] = refused / len(eval_set.unanswerable)
        metrics["unanswerable_questions"] = float(len(eval_set.unanswerable))
    settings = {"k": k, "min_score": assistant.settings.min_score, "chunk_tokens": assistant.settings.chunk_tokens}
    return EvalResult(eval_set.name, len(questions), k, metrics, settings)


def _cited_on_gold(answer: Answer, q: Question, highlights: bool) -> bool:
    for c in answer.citations:
        if q.relevant or q.sources:
            if q.relevant.get(c.source, 0) > 0 or c.source in q.sources:
                return True
            continue
        if c.source != q.source:
            continue
        spans = c.highlights if highlights else ((c.start, c.end),)
        if any(a < gb and ga < b for a, b in spans for ga, gb in q.spans):
            return True
    return False


def index_cache(assistant: Assistant, docs: Path, progress: bool = False) -> IndexReport:
    """Bring an evaluation's own index of ``docs`` up to date, rebuilding it when it was built with other
    settings or by another version (it is a cache: nothing in it is the user's)."""
    try:
        return assistant.index([docs], progress=progress)
    except IndexMismatchError:
        return assistant.index([docs], progress=progress, rebuild=True)


def refusal_check(
    settings: Settings,
    eval_set: EvalSet,
    questions: list[Question],
    workdir: Path,
    progress: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Index every other document only, ask about both halves: answered and refused rates."""
    files = sorted(p for p in eval_set.docs.iterdir() if p.is_file() and not p.name.startswith("."))
    half = workdir / "half-docs"
    half.mkdir(parents=True, exist_ok=True)
    kept = {p.name for p in files[::2]}
    for p in files:
        target = half / p.name
        if p.name in kept and not target.exists():
            target.write_bytes(p.read_bytes())
        elif p.name not in kept and target.exists():
            target.unlink()
    assistant = Assistant(settings=settings, index_dir=workdir / "half-index")
    index_cache(assistant, half)
    inside = outside = answered_in = refused_out = 0
    for q in questions:
        gold = set(q.relevant) if q.relevant else set(q.sources) if q.sources else {q.source}
        answer = assistant.ask(q.text)
        if gold & kept:
            inside += 1
            answered_in += answer.answered
        else:
            outside += 1
            refused_out += not answer.answered
        if progress is not None:
            progress(1)
    return {
        "answered_when_indexed": answered_in / max(1, inside),
        "refused_when_not_indexed": refused_out / max(1, outside),
        "questions_indexed": float(inside),
        "questions_not_indexed": float(outside),
    }
