"""Forms on a page: rows of ``Label: value`` fields set out side by side, and the lines that identify a document.

A form row holds several fields at fixed positions (``Location: Tallahassee, FL   Accident Number: NYC08CA055``).
Fields are found from the layout, not from a list of known labels: a fragment shaped like a label (a short
capitalised phrase ending in a colon) starts a field, and so does a fragment that starts where labels of
other rows on the page start (a label printed without its colon). Each field is then written on a line of
its own, so that a field's label and value stay a pair and an empty field (``Registration:``) is seen as
empty rather than as the label of its neighbour.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .page_rows import Fragment, Row
from .text import DATE

#: A label: a short phrase starting with a capital letter (or a bracket), ending in a colon.
LABEL = re.compile(r"^[A-Z(][^:.!?]{0,48}(?:\.(?=\S)[^:.!?]{0,8})?:(?=\s|$)")
MAX_LABEL_WORDS = 7
#: How far (points) a fragment may start from a label column and still be taken to start a field there.
COLUMN_SLACK = 4.0


def is_label(text: str) -> bool:
    """Whether ``text`` starts with a field label (``Altimeter Setting:``, ``Date & Time:``): a short
    phrase ending in a colon, of at most two words or with at least half its longer words capitalised
    (``The pilot said:`` is the start of a sentence, not a label)."""
    m = LABEL.match(text)
    if not m:
        return False
    words = m.group()[:-1].split()
    if len(words) > MAX_LABEL_WORDS:
        return False
    long_words = [w for w in words if len(w.strip("()/,&")) > 3]
    return len(words) <= 2 or 2 * sum(w.strip("(")[:1].isupper() for w in long_words) >= len(long_words)


def label_columns(rows: Sequence[Row]) -> list[float]:
    """Left edges of labels that stand after another fragment on their row: the columns of a form."""
    columns: list[float] = []
    for row in rows:
        if len(row.fragments) < 2 or not is_label(row.fragments[0].text):
            continue
        for fragment in row.fragments[1:]:
            if is_label(fragment.text) and not any(abs(fragment.x0 - c) <= COLUMN_SLACK for c in columns):
                columns.append(fragment.x0)
    return columns


def form_fields(row: Row, columns: Sequence[float]) -> list[list[Fragment]]:
    """The fields of a form row, each a list of fragments (label first); [] when the row is not a form row.

    A row is a form row when it has several fragments and starts with a label.
    """
    if len(row.fragments) < 2 or not is_label(row.fragments[0].text):
        return []
    fields: list[list[Fragment]] = [[row.fragments[0]]]
    for fragment in row.fragments[1:]:
        at_column = any(abs(fragment.x0 - c) <= COLUMN_SLACK for c in columns)
        if is_label(fragment.text) or at_column:
            fields.append([fragment])
        else:
            fields[-1].append(fragment)
    return fields if len(fields) > 1 else []


# ------------------------------------------------------------------ a document's identity

_FIELD_LINE = re.compile(r"^([A-Z(][^:\n]{0,48}):\s*(\S.*)$")
#: Longest line taken as identifying (longer ones are prose or boilerplate).
_MAX_LINE = 120
IDENTITY_LINES = 4
IDENTITY_CHARS = 200


def identity_lines(first_page: str) -> list[str]:
    """The lines of a first page that say which document this is: filled-in fields (``Location: ...``,
    ``Accident Number: ...``) and short lines that hold a date (``For the quarterly period ended July 1,
    2023``), in reading order, at most :data:`IDENTITY_LINES` of them."""
    found: list[str] = []
    total = 0
    for raw in first_page.splitlines():
        line = " ".join(raw.split())
        if not line or len(line) > _MAX_LINE or " | " in line:
            continue
        field = _FIELD_LINE.match(line)
        if not ((field and is_label(line) and any(ch.isalnum() for ch in field.group(2))) or DATE.search(line)):
            continue
        if total + len(line) > IDENTITY_CHARS:
            break
        found.append(line)
        total += len(line)
        if len(found) >= IDENTITY_LINES:
            break
    return found
