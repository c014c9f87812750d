"""stylecam's desktop app (PySide6). It drives the engine's live session through app/workers.py only
(where Qt meets the engine's threads); the other modules use the engine's values and helpers.

May import: engine
"""
