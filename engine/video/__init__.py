"""Where frames come from: cameras and files (capture), camera discovery, the bundled demo clip and
realistic test footage.

May import: engine.frame, engine.model, engine.defaults, engine.errors, engine.metrics, engine.paths, engine.slot"""
