"""Process start → the first frame of a live session (auto, 640x480) and the backend that made it."""
import time
T0 = time.perf_counter()
import os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from engine.live.session import Session, SessionSettings
from engine.live.pipeline import StyleSettings
from engine.styles.user_styles import load_catalog
from engine.live.governor import GovernorSettings

def main():
    s = SessionSettings(source=sys.argv[1], size=(640, 480), backend="auto", style=StyleSettings("7", stabilize=True),
                        governor=GovernorSettings(target_fps=30))
    with Session(load_catalog(), s).open() as session:
        r = session.pipeline.step()
        print(f"first frame after {time.perf_counter() - T0:.2f} s of the process, on {r.backend} ({'+'.join(r.networks)}, {r.render_scale})")
        for _ in range(60):
            r = session.pipeline.step()
        print(f"60 frames later: {r.backend[:14]} {'+'.join(r.networks)} {r.render_scale}")
if __name__ == "__main__":
    main()
