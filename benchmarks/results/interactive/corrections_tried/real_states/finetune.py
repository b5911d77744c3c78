"""Fine-tune the packaged correction network on recorded real pipeline states mixed with simulated ones."""
import sys, time, pickle, argparse, numpy as np, torch
from pathlib import Path
from torch.nn import functional as F
from medseg.build import load_correction_net
from medseg.interactive.train3d import load_volumes, sample, loss_fn
from medseg.predict.correct3d import to_grid, corrected, crop_box
import copy

ap = argparse.ArgumentParser()
ap.add_argument("--states", nargs="+"); ap.add_argument("--out"); ap.add_argument("--steps", type=int, default=400)
ap.add_argument("--real", type=int, default=2); ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--lr", type=float, default=3e-4); ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--val-every", type=int, default=5, help="every k-th source is validation")
ap.add_argument("--eval-only", action="store_true")
args = ap.parse_args()
torch.set_num_threads(2); torch.manual_seed(args.seed); rng = np.random.default_rng(args.seed)
states = [s for f in args.states for s in pickle.load(open(f, "rb"))]
srcs = sorted({s["src"].rsplit("/", 1)[0] for s in states})
val_src = set(srcs[::args.val_every])
train_s = [s for s in states if s["src"].rsplit("/", 1)[0] not in val_src]
val_s = [s for s in states if s["src"].rsplit("/", 1)[0] in val_src]
print(f"states {len(states)} train {len(train_s)} val {len(val_s)} sources {len(srcs)}", flush=True)

def dice(a, b):
    return 2 * (a & b).sum() / max(1, a.sum() + b.sum())

SHIPPED = load_correction_net()
for s in states:
    if "after" in s:
        s["refused"] = bool(not s["clicks"][-1][3] and dice(corrected(SHIPPED, s["image"], s["mask"], s["clicks"]), s["after"]) > 0.97)

def evaluate(model, which=None):
    which = val_s if which is None else which
    rows = []
    for s in which:
        if "after" not in s: continue
        new = corrected(model, s["image"], s["mask"], s["clicks"])
        rows.append((dice(s["mask"], s["truth"]), dice(s["after"], s["truth"]), dice(new, s["truth"]), s["refused"]))
    r = np.array(rows, float)
    ref = r[r[:, 3] > 0]
    return (f"n {len(r)} before {r[:, 0].mean():.4f} shipped {r[:, 1].mean():.4f} net-all {r[:, 2].mean():.4f} | "
            f"refused n {len(ref)} shipped {ref[:, 1].mean() if len(ref) else 0:.4f} net {ref[:, 2].mean() if len(ref) else 0:.4f}")

model = copy.deepcopy(load_correction_net())
for q in model.parameters(): q.requires_grad_(True)
print("val", evaluate(model.eval()), flush=True)
if args.eval_only: sys.exit()

def real_pair(s):
    img, m, t, cl = s["image"], s["mask"], s["truth"], list(s["clicks"])
    for axis in (1, 2):
        if rng.random() < 0.5:
            n = img.shape[axis]
            img, m, t = np.flip(img, axis), np.flip(m, axis), np.flip(t, axis)
            cl = [tuple(n - 1 - v if k == axis else v for k, v in enumerate(c[:3])) + (c[3],) for c in cl]
    img = np.ascontiguousarray(img.astype(np.float32)); m = np.ascontiguousarray(m); t = np.ascontiguousarray(t)
    if rng.random() < 0.5:
        img = 255.0 * (img / 255.0) ** rng.uniform(0.7, 1.5)
    box = crop_box(m, cl, t.shape)
    x = to_grid(m[box], img[box], [(a - box[0].start, b - box[1].start, c - box[2].start, q) for a, b, c, q in cl], box, model.config.grid)
    y = F.interpolate(torch.from_numpy(t[box].astype(np.float32))[None, None], size=model.config.grid, mode="trilinear", align_corners=False)[0]
    return x, y

volumes = load_volumes()
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
t0, run = time.time(), []
model.train()
for step in range(1, args.steps + 1):
    pairs = [real_pair(train_s[rng.integers(len(train_s))]) for _ in range(args.real)]
    pairs += [sample(volumes, model.config.grid, rng) for _ in range(args.batch - args.real)]
    x, y = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
    loss = loss_fn(model(x), y, x[:, 1:2], 0.0)
    opt.zero_grad(); loss.backward(); opt.step(); sched.step(); run.append(float(loss))
    if step % 50 == 0:
        print(f"step {step} loss {np.mean(run[-50:]):.4f} {time.time() - t0:.0f}s", flush=True)
    if step % 200 == 0 or step == args.steps:
        model.eval()
        print("step", step, "val", evaluate(model), flush=True)
        model.train()
        torch.save({"config": model.config.to_dict(), "state_dict": model.state_dict()}, args.out)
