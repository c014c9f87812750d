"""stylecam's icon, desktop entry and photos, installed as the package stylecam_data.assets (see pyproject.toml)."""
