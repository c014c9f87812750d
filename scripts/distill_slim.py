"""Distil the stock network (26 styles) into the slim student network and write models/slim26.*.

    OMP_NUM_THREADS=1 python scripts/distill_slim.py --steps 4000 --content /work/shared/paintings

Resumable: the state is checkpointed under --cache every --checkpoint-every steps; run the same
command again to continue. --export-only writes the pack from the best checkpoint without training.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    from lab.distill import SLIM_CONFIG, DistillSettings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = DistillSettings()
    ap.add_argument("--steps", type=int, default=defaults.steps)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--seed", type=int, default=defaults.seed)
    ap.add_argument("--batch", type=int, default=defaults.batch)
    ap.add_argument("--crop", type=int, default=defaults.crop)
    ap.add_argument("--lr", type=float, default=defaults.lr)
    ap.add_argument("--content", type=Path, help="a folder of extra training pictures (beside scikit-image's)")
    ap.add_argument("--cache", type=Path, help="checkpoint folder (default: <cache dir>/distill/slim26)")
    ap.add_argument("--out", type=Path, default=REPO / "models" / "slim26.json")
    ap.add_argument("--teacher", type=Path, default=REPO / "models" / "stock26.json")
    ap.add_argument("--stop-at", help="UTC wall time HH:MM to stop at (checkpoint kept; resume later)")
    ap.add_argument("--stop-step", type=int, help="stop at this step (checkpoint kept; resume later)")
    ap.add_argument("--checkpoint", choices=("best", "last", "best_rows"), default="best",
                    help="which checkpoint to ship (best_rows: each style's rows from its own best validation, "
                    "a --per-style-best phase)")
    ap.add_argument("--export-only", action="store_true", help="write the pack from the checkpoint, no training")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--init-from", type=Path, help="a checkpoint (best.pt/last.pt) whose student weights start a new "
                    "--cache (a per-style phase from the shipped network)")
    for f in fields(DistillSettings):
        if f.name not in {"steps", "seed", "batch", "crop", "lr"}:
            kind = type(f.default)
            if kind is bool:  # bool("False") is True: take the word
                kind = lambda v: v.strip().lower() in ("1", "true", "yes")  # noqa: E731
            ap.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    import torch
    from tqdm import tqdm

    from engine.paths import cache_dir
    from engine.styles.packs import StylePack, StyleInfo, save_pack
    from lab.distill import HELD_OUT, TRAIN_PHOTOS, Distiller, student_state, training_photos

    torch.set_num_threads(args.threads)
    settings = DistillSettings(**{f.name: getattr(args, f.name) for f in fields(DistillSettings)})
    cache = args.cache or cache_dir() / "distill" / "slim26"
    teacher_pack = StylePack.load(args.teacher)
    command = "python scripts/distill_slim.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    if not args.export_only:
        photos = training_photos(args.content)
        logging.info("%d training photos; student %s", len(photos), SLIM_CONFIG)
        d = Distiller(teacher_pack.build(), SLIM_CONFIG, settings, photos, cache)
        if not d.resume() and args.init_from:
            start_state = torch.load(args.init_from, map_location="cpu", weights_only=False)
            d.student.load_state_dict(start_state["student"])
            sibling = args.init_from.parent / "last.pt"  # the phases that made it
            earlier = torch.load(sibling, map_location="cpu", weights_only=False).get("phases") if sibling.is_file() else None
            d.init_info = {"from_checkpoint": args.init_from.name, "step": start_state.get("step"), "phases": earlier}
            logging.info("student weights from %s (step %s)", args.init_from, start_state.get("step"))
        d.command = command
        stop_at = None
        if args.stop_at:
            now = time.gmtime()
            hh, mm = map(int, args.stop_at.split(":"))
            minutes = ((hh * 60 + mm) - (now.tm_hour * 60 + now.tm_min)) % (24 * 60)  # past midnight: tomorrow
            stop_at = time.time() + minutes * 60 - now.tm_sec
        bar = tqdm(total=settings.steps, initial=d.step, desc="distil", mininterval=5, file=sys.stderr)
        t0 = time.time()

        def progress(step: int, row: dict) -> None:
            bar.update(1)
            bar.set_postfix(l1=f"{row['l1']:.4f}", total=f"{row['total']:.4f}", refresh=False)
            if step % args.log_every == 0 or "val_l1" in row:
                logging.info("step %d %s (%.2f s/step)", step,
                             " ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "step"),
                             (time.time() - t0) / max(1, step - start))

        start = d.step
        d.train(progress, stop_at=stop_at, stop_step=args.stop_step)
        bar.close()
        logging.info("trained to step %d; best validation %s %.4f at step %d", d.step, d.best.get("metric", "l1"),
                     d.best["loss"], d.best["step"])

    ckpt = cache / f"{args.checkpoint}.pt"
    config, weights, info = student_state(ckpt)
    last = torch.load(cache / "last.pt", map_location="cpu", weights_only=False)
    stock_manifest = json.loads(args.teacher.read_text())
    styles = [StyleInfo(**s) for s in stock_manifest["styles"]]
    recipe = {
        "command": command,
        "script": "scripts/distill_slim.py",
        "teacher": args.teacher.name,
        "teacher_sha256": teacher_pack.digest,
        "steps_trained": last["step"],
        "steps_planned": settings.steps,
        "shipped_checkpoint": args.checkpoint,
        "shipped_step": info.get("step", last["step"]),
        "validation": info.get("val"),
        "seed": settings.seed,
        "threads": args.threads,
        "content": ["scikit-image: " + ", ".join(TRAIN_PHOTOS)]
        + ([str(args.content)] if args.content else []),
        "held_out": list(HELD_OUT),
        "settings": asdict(settings),
        "phases": last.get("phases"),
        "init": last.get("init"),
    }
    save_pack(args.out, config, weights, styles, family="stock",
              extra={"network": "slim", "student_of": Path(args.teacher).stem, "recipe": recipe})
    pack = StylePack.load(args.out)
    logging.info("wrote %s (%d styles, step %s)", args.out, pack.num_styles, recipe["shipped_step"])


if __name__ == "__main__":
    main()
