"""The lab: tools that measure and train, clients of the engine like the app, not part of the live
runtime. bench.py (per-stage frame timings), evaluate.py (perceptual losses, steadiness), soak.py (the
live soak: a real session for minutes, a per-second report), distill.py (training the slim network).
`stylecam bench`, `stylecam eval` and `stylecam soak` run them; scripts/ uses them too.

May import: engine
"""
