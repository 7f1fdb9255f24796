"""conv4 inference throughput in PyTorch (CPU), the reference of bench/embed-bench.ts.

Prints one JSON line: images/s at each input size, batch 256, no_grad, with the given number of
threads, for the eager model in eval mode and for torch.jit.optimize_for_inference (BatchNorm
folded, oneDNN layouts); the reference is the faster of the two. Used only when
`python3 -c "import torch"` works (Debian: python3-torch).

    python3 bench/pytorch/conv4_inference.py --threads 2 --seconds 6
"""
import argparse
import json
import time

import torch
from torch import nn


def conv4(channels):
    layers = []
    for i in range(4):
        layers += [nn.Conv2d(channels if i == 0 else 64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten()).eval()


def measure(model, shape, batch, seconds):
    x = torch.rand(batch, *shape)
    with torch.no_grad():
        model(x)
        batches, started = 0, time.perf_counter()
        while batches == 0 or time.perf_counter() - started < seconds:
            model(x)
            batches += 1
        return batches * batch / (time.perf_counter() - started), batches


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []
    for rows, channels in ((28, 1), (84, 3)):
        shape = (channels, rows, rows)
        eager, batches = measure(conv4(channels), shape, args.batch, args.seconds)
        with torch.no_grad():
            optimized_model = torch.jit.optimize_for_inference(torch.jit.script(conv4(channels)))
        optimized, _ = measure(optimized_model, shape, args.batch, args.seconds)
        results.append({
            "input": f"{rows}x{rows}x{channels}", "imagesPerSecond": round(max(eager, optimized)),
            "eager": round(eager), "optimizeForInference": round(optimized), "batchesTimed": batches,
        })
    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "batch": args.batch, "results": results}))


if __name__ == "__main__":
    main()
