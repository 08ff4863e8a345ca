"""The web chat of the assistant (Gradio): ``rag serve`` starts it.

Only :mod:`ui.app` imports Gradio; :mod:`ui.render` (HTML of answers, sources and tables),
:mod:`ui.library` (the uploaded-documents store), :mod:`ui.conversations` (past chats kept in the
browser), :mod:`ui.llm` (the language-model settings) and :mod:`ui.page` (styles and the page script)
are plain Python over the public :mod:`rag` API.
"""
