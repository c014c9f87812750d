"""The live run: the session (the one owner of live state: style, catalog, governor, source, backend,
outputs), the pipeline (the only frame loop), the governor, the events, and the work that runs
a network on frames for the app (previews, thumbnails).

May import: backends, sinks, training, styles, video, frame, model and the helpers. Nothing below imports it."""
