"""Work on one frame, independent of any network: conversions and sizes, steady video (stabilize),
the edge-aware upscale, the person mask.

May import: engine.model, engine.errors, engine.paths"""
