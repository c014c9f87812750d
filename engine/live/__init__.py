"""The live run: the session (the one owner of live state: style, catalog, governor, source, backend,
outputs), the pipeline (the only frame loop), the governor, the events, and the work that runs
a network on frames for the app (previews, thumbnails). Nothing else in the engine imports it but the
public names (engine/__init__.py).

May import: engine.backends, engine.sinks, engine.training, engine.styles, engine.video, engine.frame,
engine.model, engine.cpu_tuning, engine.defaults, engine.errors, engine.metrics, engine.paths, engine.slot"""
