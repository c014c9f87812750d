"""Where frames come from: cameras and files (capture), camera discovery, the bundled demo clip and
realistic test footage.

May import: frame, model and the helpers."""
