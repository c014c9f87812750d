"""The `stylecam` command line (cli.py; ``python -m stylecam``): parses the text once and drives the engine,
the lab tools (bench, eval, soak) and the desktop app (gui, soak --view). It sits above all three;
nothing imports it. The app is imported only inside the commands that open a window, since Qt (PySide6)
is an optional extra.

May import: engine, app, lab
"""
