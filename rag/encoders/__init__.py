"""Encoders: one :class:`~rag.encoders.base.Encoder` protocol, three implementations.

- :mod:`.numpy_bert`: questions and small jobs, no torch import (fast cold start);
- :mod:`.torch_bert`: bulk embedding of plain BERT mean-pooling models (the packaged one);
- :mod:`.st_encoder`: any other sentence-transformers model.

:class:`rag.embedding.Embedder` picks them for a model folder.
"""
