"""stylecam's desktop app (PySide6). It drives the engine's live session through app/workers.py only
(where Qt meets the engine's threads: requests in, events out; the catalog's reloads and a style's removal
go through it to the session too); the other modules use the engine's values and helpers (styles, mixes,
sizes, defaults, meters). tests/test_layout.py holds both rules.

May import: engine
"""
