"""Triton-free serving runtime: validation, windows, the orchestration, results, engines.

The Triton python models under ``model_repository/`` only convert between Triton tensors and
the plain values these modules take and return; everything with logic lives here and is
tested without a server. Nothing in this package imports ``triton_python_backend_utils``.
"""
