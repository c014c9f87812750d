"""Named defaults, in one place: every module and the CLI take them from here."""
from __future__ import annotations

FRAME_SIZE = (640, 480)  # live sources, the virtual camera, the synthetic pattern, bench
FPS = 30.0  # cameras, stills, the synthetic pattern, outputs without a source rate
SERVE_HOST = "127.0.0.1"
SERVE_PORT = 8080
READ_TIMEOUT_S = 2.0  # a live source silent this long is "lost" (CLI)
LIVE_READ_TIMEOUT_S = 0.25  # the app: notice a lost camera quickly, keep handling requests
IDLE_WAIT_S = 0.05  # a loop with nothing to do sleeps this long
VIEW_POLL_MS = 16  # the Qt view polls the latest frame this often
TARGET_FPS_LIVE = 30.0  # live runs hold this frame rate by the render scale (the governor); files and bench: off
STABILIZE_LIVE = True  # live runs (camera, vcam, serve, the app) are steadied unless told not; files are not
PREBUILD_AFTER_S = 10.0  # steady this long, a live session builds the rest of the governor's ladder aside
# a file shorter than this (frames × pixels) runs on a backend that needs no build (a build repays
# after ~1000 640×480 frames: docs/performance.md); a cached build is always used
BUILD_PAYS_PIXEL_FRAMES = 1000 * 640 * 480
WARMUP_DELAY_S = 0.5  # a window closed this quickly never even starts the build process
QUIT_WAIT_S = 60.0  # quitting waits this long for a compile under way in the process (killing it aborts)


def size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
