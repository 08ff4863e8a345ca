"""HTML and Markdown tables: our readers against well-kept libraries, for time and for correctness.

Run: .venv/bin/python bench/tables_compare.py [--repeats 5]
HTML: rag.html_text.read_html (the standard library's HTMLParser, spans spread by rag.html_tables) against
pandas.read_html (lxml flavour), the table reader of a well-kept library already installed with gradio;
the parse alone of lxml.html (installed with python-docx) is timed too, as the floor a tree parser sets.
Markdown: rag.markdown_tables against markdown-it-py (installed with rich) with its GFM table rule.
Correctness: the cell texts of every body row (with the row's label) as a reader gives them, against the
rows the page holds. Prints a table and writes bench/results/tables_compare.json.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FESTIVAL = (
    "<h1>Festival</h1><table><caption>Ticket prices</caption><thead><tr><th>Ticket</th><th>Adult</th><th>Child</th>"
    "</tr></thead><tbody><tr><td>Day pass</td><td>&euro;35</td><td>&euro;15</td></tr><tr><td>Weekend pass</td>"
    "<td>&euro;85</td><td>&euro;40</td></tr><tr><td>Camping add-on</td><td colspan=2>&euro;20</td></tr></tbody></table>"
)
FIGURES = (
    "<table><tr><th></th><th colspan=2>2023</th><th colspan=2>2024</th></tr><tr><th></th><th>H1</th><th>H2</th>"
    "<th>H1</th><th>H2</th></tr><tr><td rowspan=2>Sales</td><td>1,200</td><td>(35)</td><td>07</td><td>13.50</td>"
    "</tr><tr><td>2,400</td><td>21</td><td>0</td><td>1e3</td></tr></table>"
)
NESTED = (
    "<table><thead><tr><th>Stage</th><th>Friday</th><th>Saturday</th></tr></thead><tr><td>Main</td><td>Orviks</td>"
    "<td><table><tr><th>Time</th><th>Act</th></tr><tr><td>18:00</td><td>Lina Berg</td></tr></table></td></tr>"
    "<tr><td>Barn</td><td>Fiddlers</td><td>Harpists</td></tr></table>"
)
LONG = (
    "<table><thead><tr><th>Lot</th><th>Weight</th><th>Grade</th></tr></thead>"
    + "".join(f"<tr><td>Lot {r}</td><td>{r * 3:,}</td><td>{r % 7}</td></tr>" for r in range(10_000))
    + "</table>"
)
WIDE = (
    "<table><tr>"
    + "".join(f"<th>c{i}</th>" for i in range(1000))
    + "</tr>"
    + "".join("<tr>" + "".join(f"<td>{r}.{i}</td>" for i in range(1000)) + "</tr>" for r in range(20))
    + "</table>"
)

#: page -> the body rows it holds (label first), as cell texts; a merged cell counts in each column.
HTML_PAGES: dict[str, tuple[str, list[list[str]]]] = {
    "festival (thead, caption, colspan)": (
        FESTIVAL,
        [["Day pass", "€35", "€15"], ["Weekend pass", "€85", "€40"], ["Camping add-on", "€20", "€20"]],
    ),
    "figures (2 header rows, rowspan)": (
        FIGURES,
        [["Sales", "1,200", "(35)", "07", "13.50"], ["Sales", "2,400", "21", "0", "1e3"]],
    ),
    "nested table": (NESTED, [["Main", "Orviks"], ["Barn", "Fiddlers", "Harpists"], ["18:00", "Lina Berg"]]),
    "10,000 rows": (LONG, [[f"Lot {r}", f"{r * 3:,}", str(r % 7)] for r in range(10_000)]),
    "1,000 columns x 20 rows": (WIDE, [[f"{r}.{i}" for i in range(1000)] for r in range(20)]),
}

CUPS = (
    "# Cups\n\n| site | cups | staff |\n|:--|--:|--:|\n| Oslo | 412 | 38 |\n| Bergen | 296 | 25 |\n"
    "| Tromsø \\| north | 118 | 9 |\n\nAfter.\n"
)
RAGGED = "a | b | c\n--|--|--\n1\n2 | 3 | 4 | 5\n\ntext\n"
MD_LONG = "| lot | weight |\n|---|---|\n" + "".join(f"| Lot {r} | {r * 3} |\n" for r in range(10_000))
MD_PAGES: dict[str, tuple[str, list[list[str]]]] = {
    "cups (aligned, escaped pipe)": (
        CUPS,
        [["Oslo", "412", "38"], ["Bergen", "296", "25"], ["Tromsø | north", "118", "9"]],
    ),
    "ragged rows": (RAGGED, [["1"], ["2", "3", "4"]]),
    "10,000 rows": (MD_LONG, [[f"Lot {r}", str(r * 3)] for r in range(10_000)]),
}


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _score(rows: list[list[str]], expected: list[list[str]]) -> float:
    """Share of expected rows found exactly (cells in order, empty ones left out)."""
    got = {tuple(c for c in r if c) for r in rows}
    return sum(tuple(e) in got for e in expected) / len(expected)


def ours_html(html: str) -> list[list[str]]:
    """Our rows with merged values spread back over the columns they name (to compare with a grid)."""
    from rag.html_text import read_html

    text, _, _ = read_html(html)
    rows = []
    for line in text.splitlines():
        if " | " not in line:
            continue
        cells = line.split(" | ")
        row = [cells[0]]
        for c in cells[1:]:
            heads, _, value = c.rpartition(": ")
            row.extend([value] * (heads.count(" / ") + 1 if heads else 1))
        rows.append(row)
    return rows


def pandas_html(html: str) -> list[list[str]]:
    import pandas as pd

    rows: list[list[str]] = []
    for frame in pd.read_html(io.StringIO(html), flavor="lxml"):
        for values in frame.itertuples(index=False):
            rows.append(["" if (isinstance(v, float) and v != v) else str(v) for v in values])
    return rows


def lxml_parse(html: str) -> Any:
    import lxml.html

    return lxml.html.fromstring(html)


def ours_md(text: str) -> list[list[str]]:
    from rag.markdown_tables import find_tables

    return [r for _, _, rows in find_tables(text) for r in rows[1:]]


def markdown_it_md(text: str) -> list[list[str]]:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    rows: list[list[str]] = []
    in_body = False
    for tok in tokens:
        if tok.type == "tbody_open":
            in_body = True
        elif tok.type == "tbody_close":
            in_body = False
        elif tok.type == "tr_open" and in_body:
            rows.append([])
        elif tok.type == "inline" and in_body and rows:
            rows[-1].append(tok.content.replace("\\|", "|"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, Any] = {"html": {}, "markdown": {}}
    t = time.perf_counter()
    import pandas  # noqa: F401 - import time is part of using it

    results["pandas_import_s"] = round(time.perf_counter() - t, 3)
    for name, (html, expected) in HTML_PAGES.items():
        row: dict[str, Any] = {}
        seconds, got = _best(lambda html=html: ours_html(html), args.repeats)
        row["ours"] = {"ms": round(seconds * 1000, 2), "rows_right": round(_score(got, expected), 3)}
        try:
            seconds, got = _best(lambda html=html: pandas_html(html), args.repeats)
            row["pandas.read_html"] = {"ms": round(seconds * 1000, 2), "rows_right": round(_score(got, expected), 3)}
        except Exception as exc:  # noqa: BLE001 - a failing library is a result
            row["pandas.read_html"] = {"error": f"{type(exc).__name__}: {exc}"[:120]}
        seconds, _ = _best(lambda html=html: lxml_parse(html), args.repeats)
        row["lxml parse only"] = {"ms": round(seconds * 1000, 2)}
        results["html"][name] = row
    for name, (text, expected) in MD_PAGES.items():
        row = {}
        for label, fn in (("ours", ours_md), ("markdown-it-py", markdown_it_md)):
            seconds, got = _best(lambda fn=fn, text=text: fn(text), args.repeats)
            row[label] = {"ms": round(seconds * 1000, 2), "rows_right": round(_score(got, expected), 3)}
        results["markdown"][name] = row
    for kind in ("html", "markdown"):
        for name, row in results[kind].items():
            cells = "  ".join(
                f"{k}: {v.get('ms', '-')} ms, rows right {v.get('rows_right', v.get('error', '-'))}"
                for k, v in row.items()
            )
            print(f"{kind:8} {name:36} {cells}")
    print(f"pandas import: {results['pandas_import_s']} s")
    out = ROOT / "bench" / "results" / "tables_compare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    tmp.replace(out)


if __name__ == "__main__":
    main()
