#!/usr/bin/env bash
# GPU check of the paper configuration: LUV-Net (DenseNet-161, H=8, k=13), 30 x 256 x 256 clips, batch 4.
#
# Measures training steps/s and peak GPU memory in fp32 and in bf16 autocast + channels_last (and with
# torch.compile), then inference seconds per clip (batch 1; the seed reports 0.065 s). Prints a markdown table
# with the card's name for BENCHMARKS.md.
#
# Needs only Python with torch and timm (torchvision is not used), no network and no luskit install: the model
# comes from this checkout (training/models needs torch + timm only). Takes < 8 minutes on one GPU.
#
#   bash bench/gpu_check.sh                # on a CUDA machine, from anywhere inside the checkout
#   bash bench/gpu_check.sh --no-compile   # skip torch.compile (it costs 1-3 minutes of compilation)
#   bash bench/gpu_check.sh --dry-run      # CPU, tiny sizes, no compile: checks that the script itself works
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" - "$@" <<'PY'
import argparse
import platform
import sys
import time
from datetime import datetime, timezone

import torch

from training.models import build_model

parser = argparse.ArgumentParser(prog="gpu_check.sh")
parser.add_argument("--dry-run", action="store_true", help="CPU, tiny encoder and clips: test the script only")
parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
parser.add_argument("--steps", type=int, default=12, help="timed training steps per mode")
parser.add_argument("--budget", type=float, default=420.0, help="seconds; later modes are skipped past it")
args = parser.parse_args()
started = time.perf_counter()

if args.dry_run:
    device, frames, size, batch, steps, warmup, infer_clips = torch.device("cpu"), 4, 32, 2, 2, 1, 2
    config = {"encoder": "test_byobnet", "heads": 4, "kernel": 3, "attn_hidden": 16, "head_hidden": 8}
    card = f"CPU dry run ({platform.processor() or platform.machine()})"
else:
    if not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device visible to torch (torch.cuda.is_available() is False). Run it on a GPU "
                 "machine, or use --dry-run to test the script on a CPU.")
    device, frames, size, batch, steps, warmup, infer_clips = torch.device("cuda"), 30, 256, 4, args.steps, 3, 20
    config = {"encoder": "densenet161", "heads": 8, "kernel": 13}  # the paper's LUV-Net; other keys default
    card = torch.cuda.get_device_name(0)


def make(channels_last: bool, compiled: bool):
    torch.manual_seed(0)
    model = build_model("luvnet", config).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, (torch.compile(model) if compiled else model)


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak():
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib():
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")


def autocast(bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def train_mode(bf16: bool, channels_last: bool, compiled: bool) -> dict:
    """Steps/s of Adam training on random clips (B, T, 1, S, S) with BCE on 4 labels, and peak memory."""
    reset_peak()
    model, net = make(channels_last, compiled)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)
    x = torch.randn(batch, frames, 1, size, size, device=device)
    mask = torch.ones(batch, frames, dtype=torch.bool, device=device)
    y = torch.randint(0, 2, (batch, 4), device=device).float()
    first = time.perf_counter()
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        with autocast(bf16):
            logits = net(x, mask)["logits"]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync()
    seconds = time.perf_counter() - t0
    result = {"steps_s": steps / seconds, "clips_s": steps * batch / seconds, "peak": peak_gib(),
              "warmup_s": t0 - first}
    del model, net, optimizer
    return result


@torch.no_grad()
def infer_mode(bf16: bool, channels_last: bool) -> float:
    """Seconds per clip, batch 1, eval mode (the seed's evaluation unit)."""
    model, _ = make(channels_last, False)
    model.eval()
    x = torch.randn(1, frames, 1, size, size, device=device)
    mask = torch.ones(1, frames, dtype=torch.bool, device=device)
    for i in range(3 + infer_clips):
        if i == 3:
            sync()
            t0 = time.perf_counter()
        with autocast(bf16):
            model(x, mask)
    sync()
    return (time.perf_counter() - t0) / infer_clips


modes = [("fp32", False, False, False), ("bf16 + channels_last", True, True, False)]
if not (args.no_compile or args.dry_run):  # inductor on a CPU compiles C++ for minutes: not for a dry run
    modes.append(("bf16 + channels_last + torch.compile", True, True, True))
rows = []
for name, bf16, cl, compiled in modes:
    if time.perf_counter() - started > args.budget:
        rows.append((name, None))
        continue
    try:
        rows.append((name, train_mode(bf16 and device.type == "cuda", cl, compiled)))
    except Exception as err:  # noqa: BLE001 - report the mode as failed, keep the others
        rows.append((name, f"failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}"))
infer = {name: infer_mode(bf16 and device.type == "cuda", cl) for name, bf16, cl, _ in modes[:2]}

print(f"\n### GPU check: LUV-Net paper configuration ({card})\n")
print(f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; torch {torch.__version__}; "
      f"command: bash bench/gpu_check.sh {' '.join(sys.argv[1:])}".rstrip())
print(f"- model: luvnet {config}; clips {batch} x {frames} x {size} x {size} (batch x frames x side), Adam; "
      f"{steps} timed steps after {warmup} warm-up")
tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
print(f"- fp32 here means torch defaults: TF32 convolutions {'on' if tf32[0] else 'off'}, "
      f"TF32 matmuls {'on' if tf32[1] else 'off'}\n")
print("| mode | train steps/s | clips/s | peak memory (GiB) | first steps incl. warm-up (s) |")
print("|---|---|---|---|---|")
for name, r in rows:
    if r is None:
        print(f"| {name} | skipped (time budget) | | | |")
    elif isinstance(r, str):
        print(f"| {name} | {r} | | | |")
    else:
        print(f"| {name} | {r['steps_s']:.2f} | {r['clips_s']:.1f} | {r['peak']:.1f} | {r['warmup_s']:.1f} |")
print("\n| inference (batch 1, eval) | seconds per clip |")
print("|---|---|")
for name, seconds in infer.items():
    print(f"| {name} | {seconds:.4f} |")
print("| the seed (reported) | 0.065 |")
print(f"\ntotal {time.perf_counter() - started:.0f} s")
PY
