"""Save the text classifier of examples/text-classifier/ once, with PyTorch's logits.

The model is PyTorch's: ``embed = nn.Embedding(V, 16, padding_idx=0)``, ``gru
= nn.GRU(16, 16, num_layers=2, bidirectional=True, batch_first=True)`` and
``head = nn.Linear(32, 4)`` over the last layer's two final states. It is
seeded and trains nothing: the point is that Node computes what PyTorch
computes. Characters are the tokens (0 pads, 1 is any character not in the
vocabulary).

It writes, beside itself:

* ``model.safetensors``: ``model.state_dict()``, as
  ``safetensors.torch.save_file(model.state_dict(), path)`` writes it (by that
  very call when the safetensors package is installed; otherwise by the same
  bytes written here by hand: 8-byte little-endian header length, compact JSON
  header with ``__metadata__`` first and tensors sorted by name, padded with
  spaces to a multiple of 8, then the float32 data).
* ``expected.json``: the vocabulary, the texts, and PyTorch's logits for each
  text on its own (batch of one, no padding), computed in float64 from the
  float32 weights.

Run it from the repository root with a python3 that has PyTorch (Debian:
``apt-get install python3-torch``)::

    python3 examples/text-classifier/make_model.py

The output is deterministic.
"""

import json
import os
import struct
from collections import OrderedDict

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = ["<pad>", "<unk>"] + list(" abcdefghijklmnopqrstuvwxyz.,!?'")  # 0 pads, 1 is unknown
TEXTS = [
    "the match went to extra time",
    "rain again tomorrow, then sun",
    "a bowl of noodles with chili oil",
    "the new chip runs twice as fast!",
    "is it going to snow?",
    "ok",
]


class TextClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), 16, padding_idx=0)
        self.gru = nn.GRU(16, 16, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(32, 4)

    def forward(self, ids):
        _, h_n = self.gru(self.embed(ids))
        return self.head(torch.cat([h_n[-2], h_n[-1]], dim=1))


def encode(text):
    return [VOCAB.index(c) if c in VOCAB[2:] else 1 for c in text]


def save_file(state_dict, path):
    try:
        import safetensors.torch
    except ImportError:
        pass
    else:
        safetensors.torch.save_file(state_dict, path, metadata={"format": "pt"})
        return
    order = sorted(state_dict.items(), key=lambda kv: kv[0].encode("utf-8"))
    header = OrderedDict([("__metadata__", {"format": "pt"})])
    blobs, offset = [], 0
    for name, t in order:
        data = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = OrderedDict([("dtype", "F32"), ("shape", list(t.shape)),
                                    ("data_offsets", [offset, offset + len(data)])])
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    torch.manual_seed(2024)
    model = TextClassifier()
    save_file(model.state_dict(), os.path.join(HERE, "model.safetensors"))
    model64 = TextClassifier().double()
    model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    with torch.no_grad():
        logits = [model64(torch.tensor([encode(t)])).reshape(-1).tolist() for t in TEXTS]
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        f.write("{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in
                                    [("vocab", VOCAB), ("texts", TEXTS), ("logits", logits)]) + "\n}\n")


if __name__ == "__main__":
    main()
