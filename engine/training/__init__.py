"""Training new styles: the perceptual loss network, the arbitrary-style teacher, and row fitting.

May import: styles, video, frame, model and the helpers.
"""
