"""The page as a new user meets it (issue 27), in Chromium at 1400 and 1920 px and on a 390 px phone: the
viewer sits beside the chat with both usable, one typeface per text and no font fetched from elsewhere,
no leftovers (a label over the messages, a stray separator, the file name twice, an unexplained empty
box), and the web chat's question limit is the API's, said in the same words. Screenshots go to
test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import SEED_QUESTION
from .test_ui_browser import (  # noqa: F401 - fixtures
    ARTIFACTS,
    WAIT_MS,
    Watch,
    app_url,
    ask,
    browser,
    open_page,
)

pytest.importorskip("playwright")

from playwright.sync_api import Browser, Page

SECOND = "What would the visit include?"


@pytest.fixture()
def sized(browser: Browser, app_url: str, request: pytest.FixtureRequest) -> Iterator[Any]:  # noqa: F811
    """Open the page at a given width: ``sized(1400)`` -> (page, watch)."""
    contexts: list[Any] = []

    def make(width: int, height: int = 900) -> tuple[Page, Watch]:
        watch = Watch()
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda error: watch.errors.append(str(error)))
        page.on("request", lambda req: watch.requests.append(req.url))
        # A failed request (a font that is not there, say); the queue's event stream is cut when a page closes.
        page.on(
            "requestfailed",
            lambda req: None if "/gradio_api/queue/" in req.url else watch.external.append(f"failed: {req.url}"),
        )
        page.on(
            "response",
            lambda res: watch.external.append(f"{res.status}: {res.url}") if res.status >= 400 else None,
        )
        page.goto(app_url)
        page.wait_for_selector("#rag-question textarea")
        return page, watch

    yield make
    for context in contexts:
        context.close()


def _open_viewer(page: Page) -> None:
    page.locator("#rag-chat .rag-sources").last.locator("a.rag-view").first.click()
    page.locator("#rag-viewer:not([hidden]) iframe").wait_for(state="visible")
    page.frame_locator("#rag-viewer iframe").locator("body header").wait_for()


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).last.bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box


@pytest.mark.parametrize("width", [1400, 1920])
def test_the_viewer_sits_beside_the_chat_and_both_stay_usable(sized: Any, width: int) -> None:
    page, watch = sized(width)
    ask(page, SEED_QUESTION)
    _open_viewer(page)
    page.screenshot(path=str(ARTIFACTS / f"page-viewer-{width}.png"))
    panel = _box(page, "#rag-viewer")
    assert panel["x"] + panel["width"] >= width - 1, f"the panel is not at the right edge: {panel}"
    for selector in ("#rag-chat", "#rag-question", "#rag-ask", "#rag-chat .rag-answer"):
        box = _box(page, selector)
        assert box["x"] + box["width"] <= panel["x"] + 1, f"{selector} runs under the viewer: {box} / {panel}"
    assert _box(page, "#rag-chat")["width"] >= 480, "the chat is squeezed"
    # What is under the Ask button's centre is the Ask button, not the viewer's frame.
    hit = page.evaluate(
        """() => { const r = document.querySelector('#rag-ask').getBoundingClientRect();
                   const el = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                   return !!(el && el.closest('#rag-ask')); }"""
    )
    assert hit, "the viewer covers the Ask button"
    # Both usable: a second question is asked with the viewer open, and the viewer still shows its document.
    before = page.locator("#rag-chat .rag-sources").count()
    page.fill("#rag-question textarea", SECOND)
    page.locator("#rag-ask").click(timeout=10_000)
    page.wait_for_function("n => document.querySelectorAll('#rag-chat .rag-sources').length > n", arg=before)
    assert page.locator("#rag-viewer").is_visible()
    page.frame_locator("#rag-viewer iframe").locator("mark.quote").first.wait_for()
    # Closing the viewer gives the chat its width back.
    page.locator("#rag-viewer .rag-viewer-close").click()
    page.locator("#rag-viewer").wait_for(state="hidden")
    assert _box(page, "#rag-chat")["width"] > panel["x"] * 0.9
    page.screenshot(path=str(ARTIFACTS / f"page-viewer-closed-{width}.png"))
    assert watch.errors == []


def test_the_viewer_shows_the_file_name_once(sized: Any) -> None:
    page, _ = sized(1400)
    ask(page, SEED_QUESTION)
    _open_viewer(page)
    name = page.locator("#rag-chat .rag-sources .rag-file").last.inner_text().strip()
    bar = page.locator("#rag-viewer .rag-viewer-bar").inner_text()
    inside = page.frame_locator("#rag-viewer iframe").locator("body header").inner_text()
    assert (bar + "\n" + inside).count(name) == 1, (
        f"the file name is shown {bar.count(name) + inside.count(name)} times"
    )
    assert page.locator("#rag-viewer").get_attribute("aria-label") == f"Document viewer: {name}"


def _fonts(page: Page, selectors: list[str]) -> dict[str, list[str]]:
    """The fonts Chromium drew each element's text with (family names), from the DevTools protocol."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    used = {}
    for selector in selectors:
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node, f"{selector} is not on the page"
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        used[selector] = [
            f"{f['familyName']} ({f['glyphCount']}{', served' if f['isCustomFont'] else ''})" for f in fonts
        ]
    return used


def test_one_typeface_per_text_and_every_font_served_here(sized: Any) -> None:
    page, watch = sized(1400)
    ask(page, SEED_QUESTION)
    page.evaluate("document.fonts.ready")
    texts = ["h1", "#rag-ask", "#rag-clear", "#rag-chat .rag-answer", "#rag-chat .rag-file", "button[role=tab]"]
    used = _fonts(page, texts)
    mixed = {k: v for k, v in used.items() if len({f.split(" (")[0] for f in v}) != 1}
    assert not mixed, f"text drawn with several typefaces: {mixed}"
    assert all("served" in f for v in used.values() for f in v), f"text drawn with a font of this machine: {used}"
    assert "Mono" in used["#rag-chat .rag-file"][0], used
    fonts = [u for u in watch.requests if "font" in u or u.endswith((".woff", ".woff2", ".ttf"))]
    assert fonts and all(u.startswith(app_url_of(page)) for u in fonts), fonts
    assert watch.external == [], f"requests failed or left the machine: {watch.external}"


def app_url_of(page: Page) -> str:
    return page.url.split("?")[0].rstrip("/")


@pytest.mark.parametrize("width", [1400, 390])
def test_no_leftovers_around_the_chat_and_the_footer(sized: Any, width: int) -> None:
    page, watch = sized(width, 844)
    # The empty Past-chats box says what it is for.
    hint = page.locator("#rag-history").inner_text()
    assert "this browser" in hint and "reopen" in hint, f"the Past-chats box does not explain itself: {hint!r}"
    for question in (SEED_QUESTION, SECOND):
        ask(page, question)
    page.locator("#rag-chat [role=log], #rag-chat .bubble-wrap").first.evaluate("e => e.scrollTop = e.scrollHeight / 2")
    # No label floating over the messages.
    labels = page.locator("#rag-chat [data-testid=block-label]")
    assert labels.count() == 0 or not labels.first.is_visible(), "a 'Chat' label floats over the messages"
    # The footer holds no lone separator or dot.
    shown = page.evaluate(
        """() => [...document.querySelectorAll('footer *')].filter(e => e.checkVisibility()
                 && [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
                 .map(e => [...e.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim())"""
    )
    assert not [t for t in shown if t and not any(ch.isalnum() for ch in t)], f"stray marks in the footer: {shown}"
    page.screenshot(path=str(ARTIFACTS / f"page-leftovers-{width}.png"), full_page=True)
    assert watch.errors == []


def test_the_question_limit_is_the_apis_in_the_same_words(sized: Any, tmp_path: Path) -> None:
    from rag import InputError
    from rag.text import MAX_QUESTION_CHARS, clean_question

    page, _ = sized(1400)
    long = ("How far does the Ostrava kiln fire its porcelain in winter? " * 110)[:6400]
    with pytest.raises(InputError) as refused:
        clean_question(long)
    page.locator("#rag-question textarea").fill(long)
    kept = page.locator("#rag-question textarea").input_value()
    assert len(kept) == len(long), f"the box cut the question silently to {len(kept)} characters"
    page.click("#rag-ask")
    toast = page.locator(".toast-body").filter(has_text=str(MAX_QUESTION_CHARS)).first
    toast.wait_for(state="visible")
    assert str(refused.value) in " ".join(toast.inner_text().split()), toast.inner_text()
    assert page.locator("#rag-chat .rag-question").count() == 0, "the question was asked anyway"
    assert page.locator("#rag-question textarea").input_value() == long, "the question was lost"


LIGHTHOUSE = (
    "# Hexaplume lighthouse\n\nThe Hexaplume lighthouse stands on the northern cliff of Varnholt island. "
    "The keeper {keeper} painted the Hexaplume lighthouse green in 1987. "
    "Its lamp can be seen from forty kilometres away on a clear night.\n"
)
LIGHTHOUSE_QUESTION = "Who painted the Hexaplume lighthouse green?"


def _upload(page: Page, *files: Path) -> None:
    _tab(page, "Documents")
    page.wait_for_selector("#rag-documents table")
    page.evaluate("() => document.querySelectorAll('#rag-upload-status li').forEach(li => li.dataset.old = '1')")
    page.set_input_files("#rag-upload input[type=file]", [str(f) for f in files])


def _status(page: Page) -> str:
    page.wait_for_selector("#rag-upload-status li:not([data-old])")
    return page.locator("#rag-upload-status ul").inner_text()


def _listed(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#rag-documents td.rag-doc-name").all_inner_texts()]


def _tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _chat(page: Page) -> None:
    _tab(page, "Chat")


def test_a_file_of_the_same_name_replaces_the_old_one_after_a_confirmation(sized: Any, tmp_path: Path) -> None:
    page, watch = sized(1400)
    old, new, third = (tmp_path / n / "lighthouse.txt" for n in ("a", "b", "c"))
    for path, keeper in ((old, "Oskar Lund"), (new, "Greta Holm"), (third, "Ida Berg")):
        path.parent.mkdir()
        path.write_text(LIGHTHOUSE.format(keeper=keeper), encoding="utf-8")
    _upload(page, old)
    assert "lighthouse.txt: indexed" in _status(page)
    _chat(page)
    ask(page, LIGHTHOUSE_QUESTION)
    assert "Oskar Lund" in page.locator("#rag-chat .rag-answer").last.inner_text()

    _upload(page, new)
    confirm = page.locator("#rag-replace").first  # Gradio sets a group's id on two nested elements
    confirm.wait_for(state="visible")
    assert "lighthouse.txt" in confirm.inner_text()
    page.screenshot(path=str(ARTIFACTS / "page-replace-confirm.png"), full_page=True)
    page.locator("#rag-replace-yes").click()
    status = _status(page)
    assert "lighthouse.txt: replaced lighthouse.txt" in status, status
    assert "1 file(s) uploaded: 1 replaced" in status, status
    confirm.wait_for(state="hidden")
    names = _listed(page)
    assert names.count("lighthouse.txt") == 1 and not [n for n in names if n.startswith("lighthouse-")], names

    _chat(page)
    ask(page, LIGHTHOUSE_QUESTION)
    answer = page.locator("#rag-chat .bot .message:not(.thought)").last.inner_text()
    sources = page.locator("#rag-chat .rag-sources").last.inner_text()
    assert "Greta Holm" in answer and "Oskar Lund" not in answer + sources, (answer, sources)

    # "Add as a copy" stays an explicit choice.
    _upload(page, third)
    confirm.wait_for(state="visible")
    page.locator("#rag-replace-copy").click()
    assert "lighthouse.txt: indexed (stored as lighthouse-2.txt)" in _status(page)
    assert {"lighthouse.txt", "lighthouse-2.txt"} <= set(_listed(page))
    assert watch.errors == []


def test_upload_counts_what_the_user_did_and_names_the_file_being_read(sized: Any, tmp_path: Path) -> None:
    page, _ = sized(1400)
    page.evaluate(
        """() => { window.__progress = [];
        new MutationObserver(() => {
            const t = document.querySelector('#rag-upload-status [data-testid=status-tracker]');
            if (t && t.innerText.trim()) window.__progress.push(t.innerText.trim());
        }).observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
    )
    files = []
    for i, town in enumerate(("Ostrava", "Brno")):
        files.append(tmp_path / f"kiln-{town.lower()}.md")
        files[-1].write_text(f"# Kiln of {town}\n\nThe kiln of {town} fires porcelain at 12{i}0 degrees.\n")
    _upload(page, *files)
    status = _status(page)
    assert "2 file(s) uploaded: 2 indexed" in status, status
    assert "unchanged" not in status, f"files the user did not upload are counted: {status}"
    seen = page.evaluate("window.__progress")
    assert any("kiln-ostrava.md" in t or "kiln-brno.md" in t for t in seen), f"no file named in: {seen[-10:]}"


def test_on_a_phone_the_viewer_covers_the_chat_with_nothing_drawn_over_it(sized: Any) -> None:
    page, _ = sized(390, 844)
    ask(page, SEED_QUESTION)
    ask(page, SECOND)
    _open_viewer(page)
    covered = page.evaluate(
        """() => { const out = [];
            for (let x = 5; x < 390; x += 10) for (let y = 40; y < 844; y += 10) {
                const el = document.elementFromPoint(x, y);
                if (el && !el.closest('#rag-viewer')) out.push(el.outerHTML.slice(0, 80)); }
            return out; }"""
    )
    assert covered == [], f"drawn over the viewer on a phone: {covered[:3]}"
    page.screenshot(path=str(ARTIFACTS / "page-viewer-390.png"))
