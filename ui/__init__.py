"""The web chat of the assistant (Gradio): ``rag serve`` starts it.

Only :mod:`ui.app` (the page: its title and tabs), the tabs it is made of (:mod:`ui.chat_tab`,
:mod:`ui.documents_tab`, :mod:`ui.settings_tab`: each lays its part out and wires its events) and
:mod:`ui.server` (launching it) import Gradio. :mod:`ui.handlers` (what each event does: plain values in
and out), :mod:`ui.render`
(HTML of answers, sources and tables, every text escaped by :mod:`ui.escaping`), :mod:`ui.library` (the
uploaded-documents store), :mod:`ui.conversations` (past chats kept in the browser), :mod:`ui.llm` (the
language-model settings) and :mod:`ui.page` (styles and the page script) are plain Python over the
public :mod:`rag` API.
"""
