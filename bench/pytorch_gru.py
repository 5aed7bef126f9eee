#!/usr/bin/env python3
"""PyTorch's GRU on fastgru's four standard shapes: forward and forward+backward, median ms and GFLOP/s.

resetAfter true is torch.nn.GRU (PyTorch's own form). resetAfter false is the GRU of the d2l chapter
written from scratch as the chapter writes it: per-step matmuls under autograd, the reset gate applied
to h before the candidate's matmul, one bias per gate. forward+backward is loss = sum(output * g)
with a fixed random g, then autograd's backward for x, h0 and every parameter.

PyTorch is not a dependency of fastgru. Debian's python3-torch installs it for /usr/bin/python3:

    /usr/bin/python3 bench/pytorch_gru.py [--threads 2] [--budget 3] [--shapes stream,d2l] [--forms after,before]

bench/peers.mjs runs this as a subprocess and joins its figures to its own table.
Writes bench/results/pytorch.json (or --out PATH).
FLOPs: forward = 2*T*B*3H*(I + H); forward+backward = 3x forward (as bench/bench.mjs counts them).
"""
import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time


def _threads_arg(argv, default=2):
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return str(default)


# Debian's torch calls whatever libblas.so.3 the system (or LD_LIBRARY_PATH) provides. OpenBLAS sizes
# its own thread pool from these variables when it loads, and torch.set_num_threads does not reach it.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, _threads_arg(sys.argv[1:]))

import torch  # noqa: E402

# The standard shapes (T, B, I, H), as bench/bench.mjs's SHAPES.
SHAPES = {
    "stream": (100, 1, 64, 256),
    "serve": (50, 64, 128, 256),
    "large": (100, 32, 256, 512),
    "d2l": (35, 32, 28, 256),
}

IMPL = {
    "after": "torch.nn.GRU",
    "before": "d2l-style GRU from scratch (per-step torch.matmul under autograd, reset before the candidate matmul)",
}


class GRUScratch(torch.nn.Module):
    """The d2l chapter's GRU: Z, R, H_tilde from per-step matmuls; H = Z * H + (1 - Z) * H_tilde."""

    def __init__(self, num_inputs, num_hiddens):
        super().__init__()
        bound = 1 / math.sqrt(num_hiddens)  # nn.GRU's initialisation, so the numbers are alike in size
        init_weight = lambda *shape: torch.nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))
        triple = lambda: (init_weight(num_inputs, num_hiddens), init_weight(num_hiddens, num_hiddens), init_weight(num_hiddens))
        self.W_xz, self.W_hz, self.b_z = triple()  # update gate
        self.W_xr, self.W_hr, self.b_r = triple()  # reset gate
        self.W_xh, self.W_hh, self.b_h = triple()  # candidate hidden state

    def forward(self, inputs, H):
        outputs = []
        for X in inputs:
            Z = torch.sigmoid(torch.matmul(X, self.W_xz) + torch.matmul(H, self.W_hz) + self.b_z)
            R = torch.sigmoid(torch.matmul(X, self.W_xr) + torch.matmul(H, self.W_hr) + self.b_r)
            H_tilde = torch.tanh(torch.matmul(X, self.W_xh) + torch.matmul(R * H, self.W_hh) + self.b_h)
            H = Z * H + (1 - Z) * H_tilde
            outputs.append(H)
        return torch.stack(outputs), H


class TorchGRU(torch.nn.Module):
    def __init__(self, num_inputs, num_hiddens):
        super().__init__()
        self.gru = torch.nn.GRU(num_inputs, num_hiddens)

    def forward(self, inputs, H):
        output, hidden = self.gru(inputs, H.unsqueeze(0))
        return output, hidden[0]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def blas_in_use():
    """The BLAS library this process has mapped (Debian's torch is built against the generic libblas.so.3)."""
    torch.matmul(torch.ones(64, 64), torch.ones(64, 64))
    paths = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                name = os.path.basename(path)
                if "blas" in name.lower() or name.startswith("libmkl"):
                    paths.add(os.path.realpath(path))
    except OSError:
        return "unknown"
    if not paths:
        return "none mapped (MKL or built in)"
    names = sorted(paths)
    if any("openblas" in p for p in names):
        kind = "OpenBLAS"
    elif any("mkl" in p for p in names):
        kind = "MKL"
    elif any("/blas/" in p or p.endswith("libblas.so.3") for p in names):
        kind = "reference BLAS (netlib)"
    else:
        kind = "unknown BLAS"
    return f"{kind}: {', '.join(names)}"


def time_runs(fn, budget, min_runs, max_runs, slow):
    """One warm-up call, then timed calls until budget seconds are spent (and min_runs done) or max_runs."""
    t0 = time.perf_counter()
    fn()
    warm = time.perf_counter() - t0
    if warm > slow:  # as bench/peers.mjs: the first run is the one timing of a very slow case
        return {"medianMs": warm * 1e3, "minMs": warm * 1e3, "runs": 1, "warmupMs": warm * 1e3,
                "note": f"a single run, the first (warm-up) one: it took {warm:.1f} s (> --slow {slow} s)"}
    times, spent = [], 0.0
    while len(times) < max_runs and (len(times) < min_runs or spent < budget):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        times.append(dt * 1e3)
        spent += dt
    return {"medianMs": statistics.median(times), "minMs": min(times), "runs": len(times), "warmupMs": warm * 1e3}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--budget", type=float, default=3.0, help="seconds of timed runs per shape, form and pass (default 3)")
    p.add_argument("--min-runs", type=int, default=1, help="timed runs at least, budget or not (default 1)")
    p.add_argument("--max-runs", type=int, default=300)
    p.add_argument("--slow", type=float, default=8.0, help="a warm-up longer than this many seconds is the one timing (default 8)")
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--forms", default="after,before", help="after (resetAfter true: nn.GRU), before (d2l from scratch)")
    p.add_argument("--no-train", action="store_true", help="forward only")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "pytorch.json"))
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shapes = args.shapes.split(",")
    forms = args.forms.split(",")
    for s in shapes:
        if s not in SHAPES:
            sys.exit(f"unknown shape {s}; known: {', '.join(SHAPES)}")
    for f in forms:
        if f not in IMPL:
            sys.exit(f"unknown form {f}; known: after, before")

    blas = blas_in_use()
    print(f"PyTorch {torch.__version__} · {torch.get_num_threads()} threads · {cpu_model()} · BLAS {blas}", flush=True)
    if blas.startswith("reference"):
        print("  warning: torch's matmuls run on the unoptimised reference BLAS; with Debian's libopenblas0-pthread installed"
              " (or its libblas.so.3 on LD_LIBRARY_PATH) they are an order of magnitude faster", flush=True)
    rows = []
    for name in shapes:
        T, B, I, H = SHAPES[name]
        flops = 2 * T * B * 3 * H * (I + H)
        x = torch.rand(T, B, I) * 2 - 1
        h0 = torch.zeros(B, H)
        g = torch.randn(T, B, H)
        for form in forms:
            model = TorchGRU(I, H) if form == "after" else GRUScratch(I, H)

            def forward():
                with torch.no_grad():
                    model(x, h0)

            xg = x.clone().requires_grad_(True)
            hg = h0.clone().requires_grad_(True)

            def train():
                for t in (xg, hg, *model.parameters()):
                    t.grad = None
                output, _ = model(xg, hg)
                (output * g).sum().backward()

            passes = [("forward", forward, flops)]
            if not args.no_train:
                passes.append(("train", train, 3 * flops))
            for pass_name, fn, pass_flops in passes:
                r = time_runs(fn, args.budget, args.min_runs, args.max_runs, args.slow)
                r["gflops"] = pass_flops / r["medianMs"] / 1e6
                rows.append({"shape": name, "T": T, "B": B, "I": I, "H": H, "form": form, "resetAfter": form == "after",
                             "pass": pass_name, "impl": IMPL[form], "flops": pass_flops, **r})
                label = "forward" if pass_name == "forward" else "fwd+bwd"
                print(f"  {name} ({T},{B},{I},{H}) {form} {label}: {r['medianMs']:.2f} ms · {r['gflops']:.2f} GFLOP/s ({r['runs']} runs)", flush=True)

    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "budgetSeconds": args.budget,
        "impl": IMPL,
        "rows": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
