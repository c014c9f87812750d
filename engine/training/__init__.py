"""Training new styles: the perceptual loss network, the arbitrary-style teacher, and row fitting.

May import: engine.styles, engine.video, engine.frame, engine.model, engine.errors, engine.paths
"""
