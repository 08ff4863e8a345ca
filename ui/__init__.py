"""The web chat of the assistant (Gradio): ``rag serve`` starts it.

Only :mod:`ui.app` imports Gradio; :mod:`ui.render` (HTML of answers, sources and tables) and
:mod:`ui.library` (the uploaded-documents store) are plain Python over the public :mod:`rag` API.
"""
