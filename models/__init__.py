"""stylecam's weights and manifests, installed as the package stylecam_data.models (see pyproject.toml)."""
