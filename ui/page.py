"""What the web chat adds to Gradio's page: styles for narrow screens, a small script, and wording.

The script (:data:`PAGE_JS`, run once when the page loads) does two things Gradio's chatbot does not:

- every ``[n]`` of an answer becomes a link (``role="link"``, reachable with Tab, Enter or a click)
  that opens the answer's Sources block if it is folded and scrolls to source card ``[n]``;
- each message's ``aria-label`` is the message's text, not its HTML (Gradio labels a message with
  its raw content, which screen readers would read out tag by tag);
- a message's copy button copies its text (and the answer's sources with their quoted sentences),
  not the HTML that Gradio would copy.

No document text goes through the script: it only reads what the page already shows.
"""

from __future__ import annotations

from pathlib import Path

#: Gradio's own wording that its English bundle lacks (a live region otherwise reads "common.complete").
I18N_EN = {"common.complete": "Done", "common.error": "Error"}

#: The page's style sheet (ui/app.css), read once.
CSS = Path(__file__).with_name("app.css").read_text(encoding="utf-8")

PAGE_JS = r"""
() => {
  // Text of an HTML string, without running or loading anything (DOMParser documents are inert).
  const text = (markup) => (new DOMParser().parseFromString(markup, 'text/html').body.textContent || '')
    .replace(/\s+/g, ' ').trim();
  const LABEL = /^(.*?'s message: )\s*(<.*)$/s;
  const tidy = () => {
    const chat = document.querySelector('#rag-chat');
    if (!chat) return;
    chat.querySelectorAll('[aria-label]').forEach((el) => {
      const label = el.getAttribute('aria-label') || '';
      const m = label.match(LABEL);
      if (m) el.setAttribute('aria-label', m[1] + text(m[2]).slice(0, 400));
    });
    // Gradio's markup that an accessibility audit (axe-core) flags:
    // example questions in a role=list without list items,
    document.querySelectorAll('#rag-chat .examples[role="list"]').forEach((el) => {
      el.setAttribute('role', 'group');
      el.setAttribute('aria-label', 'Example questions');
    });
    // an unnamed button nested in the (already clickable) title of the Sources block,
    chat.querySelectorAll('.thought-group .title button:not([disabled])').forEach((el) => {
      el.setAttribute('disabled', '');
      el.setAttribute('aria-hidden', 'true');
      el.setAttribute('tabindex', '-1');
    });
    // and an upload area whose name ("Click to upload or drop files") is not its visible text.
    document.querySelectorAll('#rag-upload .upload-container[aria-label]').forEach((el) => {
      el.removeAttribute('aria-label');
    });
    chat.querySelectorAll('.rag-cite:not([role])').forEach((el) => {
      el.setAttribute('role', 'link');
      el.setAttribute('tabindex', '0');
      el.setAttribute('aria-label', 'source ' + el.textContent.replace(/[\[\]]/g, ''));
    });
  };
  new MutationObserver(tidy).observe(document.body, {
    subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['aria-label'],
  });
  tidy();

  const after = (node, selector) => {
    const all = document.querySelectorAll('#rag-chat ' + selector);
    for (const el of all) {
      if (node.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) return el;
    }
    return null;
  };
  const show = (cite, tries) => {
    const n = (cite.textContent.match(/\d+/) || [''])[0];
    const group = after(cite, '.thought-group');
    const sources = after(cite, '.rag-sources');
    const inGroup = sources && (!group || group.contains(sources));
    if (!inGroup) {
      const title = group && group.querySelector('.title');
      if (title && tries > 0) { title.click(); setTimeout(() => show(cite, tries - 1), 120); }
      return;
    }
    const card = [...sources.querySelectorAll('.rag-source')].find(
      (c) => (c.querySelector('.rag-n') || {}).textContent === '[' + n + ']');
    if (!card) return;
    document.querySelectorAll('#rag-chat .rag-target').forEach((c) => c.classList.remove('rag-target'));
    card.classList.add('rag-target');
    card.setAttribute('tabindex', '-1');
    card.scrollIntoView({block: 'center'});
    card.focus({preventScroll: true});
    const link = card.querySelector('a.rag-view');
    if (link) openViewer(link);
  };
  // The document viewer: a panel beside the chat (the page narrows to make room for it; app.css), the
  // whole screen on a phone. Its document names the file; the panel's bar only opens or closes it.
  const setViewer = (panel, open) => {
    panel.hidden = !open;
    document.body.classList.toggle('rag-viewer-open', open);
  };
  const openViewer = (link) => {
    let panel = document.getElementById('rag-viewer');
    if (!panel) {
      panel = document.createElement('aside');
      panel.id = 'rag-viewer';
      const bar = document.createElement('div');
      bar.className = 'rag-viewer-bar';
      const tab = document.createElement('a');
      tab.className = 'rag-viewer-tab';
      tab.target = '_blank';
      tab.rel = 'noopener';
      tab.textContent = 'open in a new tab';
      const close = document.createElement('button');
      close.type = 'button';
      close.className = 'rag-viewer-close';
      close.textContent = 'Close';
      close.addEventListener('click', () => setViewer(panel, false));
      bar.append(tab, close);
      const frame = document.createElement('iframe');
      frame.title = 'Cited document';
      panel.append(bar, frame);
      document.body.append(panel);
      document.addEventListener('keydown', (e) => { if (e.key === 'Escape') setViewer(panel, false); });
      const phone = window.matchMedia('(max-width: 600px)');
      const fit = () => document.body.classList.toggle('rag-phone', phone.matches);
      phone.addEventListener('change', fit);
      fit();
    }
    const card = link.closest('.rag-source');
    const name = ((card && card.querySelector('.rag-file')) || link).textContent;
    panel.setAttribute('aria-label', 'Document viewer: ' + name);
    panel.querySelector('.rag-viewer-tab').href = link.href;
    panel.querySelector('iframe').src = link.href;
    setViewer(panel, true);
  };
  document.addEventListener('click', (event) => {
    const link = event.target && event.target.closest && event.target.closest('#rag-chat a.rag-view');
    if (!link) return;
    event.preventDefault(); event.stopPropagation();
    openViewer(link);
  }, true);
  // Copy buttons: the message as people read it (its text and its sources), not its HTML.
  const copyText = (button) => {
    let row = button.closest('.message-buttons');
    row = row && row.previousElementSibling;
    while (row && !row.querySelector('.message-content')) row = row.previousElementSibling;
    if (!row) return null;
    const shown = '.rag-question, .rag-searched, .rag-answer, .rag-refusal, .rag-error, .rag-note';
    const parts = [...row.querySelectorAll(shown)].map((e) => e.innerText.trim()).filter(Boolean);
    const sources = [...row.querySelectorAll('.rag-source')].map((card) => {
      const n = (card.querySelector('.rag-n') || {}).innerText || '';
      const file = (card.querySelector('.rag-file') || {}).innerText || '';
      const section = (card.querySelector('.rag-section') || {}).innerText || '';
      const quote = [...card.querySelectorAll('mark')].map((m) => m.innerText.trim()).join(' ... ');
      return `${n} ${file}${section ? ', ' + section : ''}${quote ? ': "' + quote + '"' : ''}`.trim();
    });
    if (sources.length) parts.push('Sources:\n' + sources.join('\n'));
    return parts.length ? parts.join('\n\n') : null;
  };
  document.addEventListener('click', (event) => {
    const copy = '#rag-chat button[aria-label="Copy message"]';
    const button = event.target && event.target.closest && event.target.closest(copy);
    const text = button && copyText(button);
    if (!text || !navigator.clipboard) return;
    event.preventDefault(); event.stopPropagation(); event.stopImmediatePropagation();
    navigator.clipboard.writeText(text).then(() => { button.setAttribute('title', 'Copied'); });
  }, true);

  const cite = (event) => event.target && event.target.closest && event.target.closest('#rag-chat .rag-cite');
  document.addEventListener('click', (event) => {
    const c = cite(event);
    if (c) { event.preventDefault(); event.stopPropagation(); show(c, 3); }
  }, true);
  document.addEventListener('keydown', (event) => {
    const c = cite(event);
    if (!c || (event.key !== 'Enter' && event.key !== ' ')) return;
    event.preventDefault(); event.stopPropagation(); show(c, 3);
  }, true);
}
"""

__all__ = ["CSS", "I18N_EN", "PAGE_JS"]
