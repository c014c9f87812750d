"""Quality of the slim student against the full stock network, on the photos it never trained on.

For every stock style and each held-out photo (scikit-image astronaut, chelsea, coffee, rocket,
stereo_motorcycle; long side 384): the full network's output T and the student's S, then
  - content loss (lab.evaluate.PerceptualMetrics: VGG16 relu3_3 MSE against the photo),
  - style loss (PerceptualMetrics: Gram MSE against a style picture — the full network's own output
    for that style on the *next* held-out photo, so neither network is scored against itself),
  - PSNR of S against T, and the Gram distance of S's features to T's on the same photo.
A style passes when the student's mean content and style losses are within --floor (1.2×) of the
full network's. Blends of two styles are scored by PSNR too (they must stay faithful).

    OMP_NUM_THREADS=2 python scripts/slim_eval.py --threads 2 --out docs/slim-eval.json --sheet docs/slim-sheet.jpg
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHEET_STYLES = (3, 7, 19, 12, 0)
SHEET_BLEND = "3:0.5,19:0.5"
BLENDS = ("3:0.5,12:0.5", "7:0.3,19:0.7", "0:0.5,25:0.5", "5:0.5,16:0.5")


def label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.putText(img, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def center_square(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    s = min(h, w)
    return a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0 ** 2 / max(mse, 1e-10))


def mark_within_floor(student: Path, rows: list[dict], summary: dict) -> None:
    """The passing styles into the student's manifest (its weights' checksum is untouched)."""
    manifest = json.loads(student.read_text())
    manifest["within_floor"] = [r["id"] for r in rows if r["passes"]]
    manifest["within_floor_measured"] = {
        "by": "scripts/slim_eval.py", "floor": summary["floor"], "photos": summary["photos"],
        "long_side": summary["eval_long_side"], "styles_scored": [r["id"] for r in rows],
        "ratios": {str(r["id"]): [round(r["content_ratio"], 3), round(r["style_ratio"], 3)] for r in rows}}
    student.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{student}: within_floor {manifest['within_floor']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", type=Path, default=REPO / "models" / "slim26.json")
    ap.add_argument("--teacher", type=Path, default=REPO / "models" / "stock26.json")
    ap.add_argument("--checkpoint", type=Path, help="score a training checkpoint (.pt) instead of --student")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--floor", type=float, default=1.2)
    ap.add_argument("--styles", help="comma-separated style ids (default: all)")
    ap.add_argument("--photos", type=int, default=5, help="how many of the held-out photos")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--sheet", type=Path)
    ap.add_argument("--mark", action="store_true",
                    help="write the styles that pass into --student's manifest (within_floor): the governor "
                         "runs the slim network for them instead of lowering the render scale")
    args = ap.parse_args()
    if args.mark and args.checkpoint:
        ap.error("--mark writes the scores into --student's manifest: not with --checkpoint")

    import torch

    from lab.evaluate import EVAL_SIZE, PerceptualMetrics
    from engine.frame.frames import fit_long
    from engine.model.stylenet import StyleNet
    from engine.styles.packs import StylePack
    from lab.distill import held_out_photos, student_state
    from engine.training.vgg import CONTENT_LAYER, gram

    torch.set_num_threads(args.threads)
    teacher_pack = StylePack.load(args.teacher)
    teacher = teacher_pack.build()
    if args.checkpoint:
        config, weights, _ = student_state(args.checkpoint)
        student = StyleNet(config)
        student.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        student = student.eval().requires_grad_(False)
        student_name = str(args.checkpoint)
    else:
        student_pack = StylePack.load(args.student)
        student, config = student_pack.build(), student_pack.config
        student_name = args.student.name
    mult = max(config.downsample, teacher_pack.config.downsample)

    photos = {}
    for name, img in list(held_out_photos().items())[:args.photos]:
        img = fit_long(img, EVAL_SIZE)
        h, w = img.shape[0] // mult * mult, img.shape[1] // mult * mult
        photos[name] = np.ascontiguousarray(img[:h, :w])
    names = list(photos)
    metrics = PerceptualMetrics()
    vgg = metrics.vgg

    def run(net, img, weights):
        x = torch.from_numpy(img.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)
        with torch.no_grad():
            y = net(x, torch.from_numpy(weights))[0]
        return (y.permute(1, 2, 0).numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)

    def features(img):
        with torch.no_grad():
            return vgg(metrics._t(img))

    photo_content = {n: features(photos[n])[CONTENT_LAYER] for n in names}
    styles = [int(s) for s in args.styles.split(",")] if args.styles else list(range(teacher_pack.num_styles))
    t0 = time.time()
    rows, outputs = [], {}
    for sid in styles:
        wvec = teacher_pack.weights(sid)
        t_out = {n: run(teacher, photos[n], wvec) for n in names}
        s_out = {n: run(student, photos[n], wvec) for n in names}
        outputs[sid] = (t_out, s_out)
        per = []
        for k, n in enumerate(names):
            ref = t_out[names[(k + 1) % len(names)]]  # the style picture: the full network on another photo
            with torch.no_grad():
                ref_grams = {key: gram(v) for key, v in vgg(metrics._t(fit_long(ref, 256))).items()}
            ft, fs = features(t_out[n]), features(s_out[n])
            r = {"photo": n, "psnr": psnr(s_out[n], t_out[n])}
            for who, f in (("full", ft), ("slim", fs)):
                r[f"content_{who}"] = torch.nn.functional.mse_loss(f[CONTENT_LAYER], photo_content[n]).item()
                r[f"style_{who}"] = sum(torch.nn.functional.mse_loss(gram(f[key]), ref_grams[key]).item()
                                        for key in ref_grams)
            r["gram_slim_vs_full"] = sum(torch.nn.functional.mse_loss(gram(fs[key]), gram(ft[key])).item() for key in fs)
            per.append(r)
        mean = lambda key: float(np.mean([r[key] for r in per]))  # noqa: E731
        row = {"id": sid, "name": teacher_pack.styles[sid].name,
               "content_full": mean("content_full"), "content_slim": mean("content_slim"),
               "style_full": mean("style_full"), "style_slim": mean("style_slim"),
               "psnr_mean": mean("psnr"), "psnr_min": float(min(r["psnr"] for r in per)),
               "gram_slim_vs_full": mean("gram_slim_vs_full"), "per_photo": per}
        row["content_ratio"] = row["content_slim"] / row["content_full"]
        row["style_ratio"] = row["style_slim"] / row["style_full"]
        row["passes"] = row["content_ratio"] <= args.floor and row["style_ratio"] <= args.floor
        rows.append(row)
        print(f"{sid:2d} {row['name']:<16} content x{row['content_ratio']:.3f} style x{row['style_ratio']:.3f} "
              f"PSNR {row['psnr_mean']:.2f} (min {row['psnr_min']:.2f}) {'ok' if row['passes'] else 'FAIL'}"
              f"  [{time.time() - t0:.0f}s]", flush=True)

    blends = []
    for spec in BLENDS:
        wvec = teacher_pack.weights(spec)
        ps = [psnr(run(student, photos[n], wvec), run(teacher, photos[n], wvec)) for n in names]
        blends.append({"spec": spec, "psnr_mean": float(np.mean(ps)), "psnr_min": float(min(ps))})
        print(f"blend {spec}: PSNR {np.mean(ps):.2f} (min {min(ps):.2f})", flush=True)

    summary = {
        "student": student_name, "teacher": args.teacher.name, "photos": names, "eval_long_side": EVAL_SIZE,
        "floor": args.floor,
        "style_picture": "the full network's output for the style on the next held-out photo (fit_long 256)",
        "content_ratio_mean": float(np.mean([r["content_ratio"] for r in rows])),
        "content_ratio_max": float(max(r["content_ratio"] for r in rows)),
        "style_ratio_mean": float(np.mean([r["style_ratio"] for r in rows])),
        "style_ratio_max": float(max(r["style_ratio"] for r in rows)),
        "psnr_mean": float(np.mean([r["psnr_mean"] for r in rows])),
        "psnr_min": float(min(r["psnr_min"] for r in rows)),
        "styles_passing": sum(r["passes"] for r in rows), "styles": len(rows),
        "failing": [f"{r['id']} {r['name']}" for r in rows if not r["passes"]],
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"summary": summary, "styles": rows, "blends": blends}, indent=2) + "\n")
    if args.mark:
        mark_within_floor(args.student, rows, summary)
    if args.sheet:
        tile = (320, 320)
        sheet_rows = []
        sheet_photos = ["astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle"]
        specs = [s for s in SHEET_STYLES if s in outputs] + [SHEET_BLEND]
        for i, spec in enumerate(specs):
            n = [p for p in sheet_photos if p in photos][i % len(photos)]
            img = photos[n]
            wvec = teacher_pack.weights(spec)
            full, slim = run(teacher, img, wvec), run(student, img, wvec)
            crop = lambda a: cv2.resize(center_square(a), tile, interpolation=cv2.INTER_AREA)  # noqa: E731
            desc = teacher_pack.describe(spec)
            sheet_rows.append(np.hstack([label(crop(img), f"{n}"), label(crop(full), f"full: {desc}"[:34]),
                                         label(crop(slim), f"slim {psnr(slim, full):.1f} dB")]))
        cv2.imwrite(str(args.sheet), cv2.cvtColor(np.vstack(sheet_rows), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 88])


if __name__ == "__main__":
    main()
