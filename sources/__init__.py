"""Metric sources: one module (or package) per system, each registering the metrics it provides in
``sources.registry.REGISTRY``. ``sources.catalogue`` imports them all; this package itself imports
nothing, so the engine's lowest layer (``sources.errors``, ``sources.registry``) stays cheap to import
(the Lambda trigger imports the errors without any source).
"""
