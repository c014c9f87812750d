"""Styles as data: a network's weights and styles (packs), every style across networks (catalog), the
user's own store, style pictures, and the importers of Magenta's ONNX files.

May import: engine.video, engine.frame, engine.model, engine.errors, engine.locking, engine.paths"""
