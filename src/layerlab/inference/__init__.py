"""A trained run loaded for use: ``trained`` (load a run's model), ``predict``, ``evaluate``, ``export``.

Shared by the CLI (``layerlab predict/evaluate/export``) and the server's predict and export paths.
Serving (``layerlab serve-model`` and the lab's predict endpoint): ``onnx_engine`` (ONNX Runtime checked
against eager, eager fallback), ``batching`` (micro-batcher), ``calibrate`` (batch and wait from a
measured curve), ``inputs``, ``server`` (the standalone WSGI app), ``loadtest``.
May import the engine (``core``, ``nn``, ``data``, ``train``); the engine never imports it, and it never
imports Django (contracts in pyproject.toml).
"""
