"""The generator: retrieve -> prompt -> stream with live citations -> verify, or the extractive answer with a note."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import GenerationError
from ..types import NOT_FOUND, Answer, Passage
from .citations import REFUSAL, CitationStream, verify
from .client import LLMClient
from .prompts import PROMPT_VERSION, build_messages, build_rewrite_messages

if TYPE_CHECKING:
    from ..config import Settings


#: A generated answer is withheld (the extractive one shown) when more than half of its sentences, and
#: at least this many, are not backed by the passages they cite; fewer are shown with a note.
MIN_WITHHELD = 2


class Generator:
    """Grounded, verified answers from an OpenAI-compatible server, falling back to extractive ones."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> Generator:
        """A generator for ``settings.llm_*``."""
        return cls(LLMClient(settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout))

    @property
    def model(self) -> str:
        """The model name (empty until resolved when not configured)."""
        return self.client.model

    def stream(
        self,
        question: str,
        passages: Sequence[Passage],
        fallback: Callable[[], Answer],
        matched: Sequence[tuple[int, str]] = (),
    ) -> Iterator[str | Answer]:
        """Text deltas of the generated answer as they arrive, then the final verified :class:`Answer`.

        ``matched`` names the cells or fields that hold the asked value (see :func:`build_messages`).

        The deltas join to the final ``Answer.text``, except when the answer falls back to
        ``fallback()`` (the extractive answer) because the server failed or no citation was valid:
        then the final Answer's text differs, its ``note`` says why, and an interface should show
        that text instead of what was streamed.
        """
        passages = list(passages)
        rewriter = CitationStream(len(passages))
        chat = self.client.stream_chat(build_messages(question, passages, matched))
        try:
            for delta in chat:
                out = rewriter.feed(delta)
                if out:
                    yield out
            out = rewriter.close()
            if out:
                yield out
        except GenerationError as exc:
            yield self._fallback(fallback(), f"{_sentence(str(exc))} Showing the extractive answer instead.")
            return
        finally:
            chat.close()
        text = rewriter.text
        if not rewriter.numbers:
            if REFUSAL.search(text):
                why = f"{self.model} found no answer in the passages."
            else:
                why = (
                    f"The answer of {self.model} cited none of the passages, so it cannot be checked and is not shown."
                )
            yield self._not_found(fallback(), why)
            return
        checked = verify(text, rewriter.numbers, passages, question)
        note = None
        unsupported = [c for c in checked.claims if not c.supported]
        if len(unsupported) >= MIN_WITHHELD and len(unsupported) * 2 > len(checked.claims):
            # Mostly not from the passages (an injected text echoed, say): not presented as the answer.
            yield self._fallback(
                fallback(),
                f"{len(unsupported)} of {len(checked.claims)} sentence(s) of the answer of {self.model} are not "
                "backed by the passages they cite, so it is not shown. Showing the extractive answer instead.",
            )
            return
        if unsupported:
            note = (
                f"{len(unsupported)} of {len(checked.claims)} sentence(s) are not backed by the passages they cite "
                "(or cite none): check them against the sources."
            )
        if rewriter.dropped:
            dropped = ", ".join(f"[{n}]" for n in dict.fromkeys(rewriter.dropped))
            extra = f"Removed citation(s) {dropped}: there were only {len(passages)} passage(s)."
            note = f"{note} {extra}" if note else extra
        yield Answer(
            question,
            text,
            True,
            checked.citations,
            passages,
            generator="llm",
            note=note,
            model=self.model,
            prompt_version=PROMPT_VERSION,
            claims=checked.claims,
        )

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """``question`` as a standalone question, given the earlier (question, answer) turns."""
        reply = self.client.complete(build_rewrite_messages(question, history))
        reply = re.sub(r"(?s)^\s*<think>.*?</think>", "", reply).strip()
        line = next((ln.strip() for ln in reply.splitlines() if ln.strip()), "")
        line = re.sub(r"^(standalone question|rewritten question|question)\s*:\s*", "", line, flags=re.I)
        line = line.strip().strip("\"'“”‘’`").strip()
        if not line or len(line) > max(400, 4 * len(question)):
            raise GenerationError(f"{self.model} did not give a usable standalone question")
        return line

    def _fallback(self, extractive: Answer, note: str) -> Answer:
        return replace(extractive, note=note, model=self.model or None, prompt_version=PROMPT_VERSION)

    def _not_found(self, extractive: Answer, why: str) -> Answer:
        """'Not in the documents', plus the extractive answer's closest sentences when it has some."""
        if extractive.answered:
            text = f"{NOT_FOUND} The closest sentences in them: {extractive.text}"
            note = f"{why} Showing the closest sentences from the documents (extractive), unverified as an answer."
        else:
            text, note = NOT_FOUND, why
        return replace(
            extractive, text=text, answered=False, note=note, model=self.model or None, prompt_version=PROMPT_VERSION
        )


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
