"""Two quarterly statements of one company, as Markdown tables, for follow-up questions across periods.

The third-quarter filing has columns for three and nine months ended July 1, 2023 and June 25, 2022; the
first-quarter filing has three months ended December 31, 2022 and December 25, 2021. Every figure differs,
so an answer shows which row and which column it came from. (Figures from Apple's 10-Q filings.)
"""

from __future__ import annotations

from pathlib import Path

_COLUMNS = (
    "| Category | Three Months Ended July 1, 2023 | Three Months Ended June 25, 2022 "
    "| Nine Months Ended July 1, 2023 | Nine Months Ended June 25, 2022 |"
)
THIRD_QUARTER = f"""# Apple Inc. Form 10-Q

For the quarterly period ended July 1, 2023.

## Net sales by category

{_COLUMNS}
|---|---|---|---|---|
| iPhone | $ 39,669 | $ 40,665 | $ 156,778 | $ 162,863 |
| Mac | 6,840 | 7,382 | 21,743 | 28,669 |
| iPad | 5,791 | 7,224 | 21,857 | 22,118 |
| Wearables, Home and Accessories | 8,284 | 8,084 | 30,523 | 31,591 |
| Services | 21,213 | 19,604 | 62,886 | 58,941 |
| Total net sales | $ 81,797 | $ 82,959 | $ 293,787 | $ 304,182 |

Net sales of iPhone and Mac fell in the third quarter of fiscal 2023 compared with a year earlier.
"""

FIRST_QUARTER = """# Apple Inc. Form 10-Q

For the quarterly period ended December 31, 2022.

## Net sales by category

| Category | Three Months Ended December 31, 2022 | Three Months Ended December 25, 2021 |
|---|---|---|
| iPhone | $ 65,775 | $ 71,628 |
| Mac | 7,735 | 10,852 |
| iPad | 9,396 | 7,248 |
| Wearables, Home and Accessories | 13,482 | 14,701 |
| Services | 20,766 | 19,516 |
| Total net sales | $ 117,154 | $ 123,945 |

Net sales of Mac fell in the first quarter of fiscal 2023 compared with a year earlier.
"""

FILES = {"apple-10q-2023-q3.md": THIRD_QUARTER, "apple-10q-2023-q1.md": FIRST_QUARTER}

#: The conversation, and what each answer must hold (its row's figure in the asked column) and must not
#: (the same row's figures in the other columns and in the other filing).
FIRST = "What were iPhone net sales for the three months ended July 1, 2023?"
TURNS = (
    (FIRST, "39,669", ("40,665", "156,778", "65,775")),
    ("And Mac?", "6,840", ("7,382", "21,743", "28,669", "7,735", "10,852")),
    ("What about the nine months?", "21,743", ("6,840", "7,382", "28,669", "7,735")),
)


def write_statements(folder: Path) -> Path:
    """Write both filings into ``folder`` (made if missing); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder
