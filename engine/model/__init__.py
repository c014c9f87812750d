"""The style networks: CIN (cin.py), StyleNet and its config (stylenet.py, config.py), the imports of
the stock and picture networks (stock.py, picture.py) and the style predictor (predictor.py).
Nothing is imported here, so reading a manifest never loads torch.

May import: engine.errors
"""
