#!/usr/bin/env bash
# Reproduce models/selfie_segmentation*.tflite: MediaPipe's selfie segmentation models (Apache-2.0),
# taken unchanged from the mediapipe 0.10.21 wheel on PyPI. stylecam runs them with ai-edge-litert
# (mediapipe itself pins numpy<2, so we ship only the two model files).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
  -d "$tmp" mediapipe==0.10.21
unzip -o -j -q "$tmp"/mediapipe-0.10.21-*.whl 'mediapipe/modules/selfie_segmentation/*.tflite' -d models/
sha256sum models/selfie_segmentation*.tflite
