"""Answers: the value asked for with its labels, the sentences that answer, or a refusal.

- :mod:`.question`: what a question asks for and pins down (names, dates, quarters, spans of months);
- :mod:`.cells`: the form fields and table cells of a passage, with their offsets;
- :mod:`.constraints`: whether a passage, its document and a cell's column match the question;
- :mod:`.values`: the cell or field that holds the asked value (:mod:`.acronyms`: "R&D" read as the label
  words that spell it);
- :mod:`.answerer`: the whole answer (cell, else sentences from :mod:`rag.extractive`, else a refusal).
"""

from .answerer import Answerer, Checked, check_passages, document_identity, wants_value
from .cells import Cell, cells_of
from .question import Asked, Period, read_question

__all__ = [
    "Answerer",
    "Asked",
    "Cell",
    "Checked",
    "Period",
    "cells_of",
    "check_passages",
    "document_identity",
    "read_question",
    "wants_value",
]
