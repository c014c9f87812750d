"""stylecam's desktop app (PySide6). It drives the engine through app/workers.py only."""
