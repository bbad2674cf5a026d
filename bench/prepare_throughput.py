#!/usr/bin/env python3
"""`spectra prepare` throughput beside Hugging Face `tokenizers` on the same text, same run.

Trains a GPT-NeoX-style byte-level BPE with HF on the embedded corpus, writes the corpus (repeated
--repeat times) as JSONL documents of --lines lines each, then times
  - `spectra prepare` with 1 and 2 threads (reading JSONL, tokenizing, writing HDF5, as timed
    by spectra itself; the wall clock of the whole command, which adds process start-up and
    MPI initialization, is shown beside it), and
  - HF `Tokenizer.encode_batch` over the same documents (already in memory) with 1 and 2 rayon
    threads,
and prints MB/s of text for each and the spectra/HF ratio. Not a test: run it by hand,
  python3 bench/prepare_throughput.py --spectra build/spectra
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HF_TIMER = r"""
import json, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
docs = [json.loads(l)["text"] for l in open(sys.argv[2], encoding="utf-8")]
tok.encode_batch(docs[:50], add_special_tokens=False)  # warm up the thread pool
best = 1e9
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    out = tok.encode_batch(docs, add_special_tokens=False)
    best = min(best, time.perf_counter() - t)
print(best, sum(len(e.ids) + 1 for e in out))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spectra", default=str(ROOT / "build" / "spectra"))
    ap.add_argument("--repeat", type=int, default=4, help="copies of the 4.3 MB corpus")
    ap.add_argument("--lines", type=int, default=40, help="corpus lines per document")
    ap.add_argument("--vocab", type=int, default=16384)
    ap.add_argument("--runs", type=int, default=3, help="best of this many runs")
    a = ap.parse_args()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    text = gzip.open(ROOT / "data" / "corpus" / "kjv.txt.gz", "rb").read().decode("utf-8")
    lines = text.split("\n")
    docs = ["\n".join(lines[i:i + a.lines]) + "\n" for i in range(0, len(lines), a.lines)] * a.repeat
    mb = sum(len(d.encode()) for d in docs) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(docs[: len(docs) // a.repeat], trainers.BpeTrainer(
            vocab_size=a.vocab, special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
        tok.save(str(tmp / "tokenizer.json"))
        data = tmp / "docs.jsonl"
        with open(data, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"text": d}) + "\n")
        print(f"text: {mb:.1f} MB in {len(docs)} documents; tokenizer: GPT-NeoX-style BPE, vocabulary {a.vocab}")

        results = {}
        wall = {}
        for threads in (1, 2):
            best, best_wall, tokens = 1e9, 1e9, None
            for _ in range(a.runs):
                t = time.perf_counter()
                p = subprocess.run([a.spectra, "prepare", "-q", "--threads", str(threads), "--tokenizer",
                                    str(tmp / "tokenizer.json"), "--out", str(tmp / "out.h5"), str(data)],
                                   capture_output=True, text=True)
                best_wall = min(best_wall, time.perf_counter() - t)
                if p.returncode != 0:
                    sys.exit(f"spectra prepare failed: {p.stderr}")
                # "prepared D documents, N tokens, X MB of text in S s (R MB/s)"
                tokens = int(p.stdout.split(" documents, ")[1].split(" tokens")[0])
                best = min(best, float(p.stdout.split(" of text in ")[1].split("s ")[0]))
            name = f"spectra prepare, {threads} thread{'s' if threads > 1 else ''}"
            results[name] = (best, tokens)
            wall[name] = best_wall
        for threads in (1, 2):
            env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
            out = subprocess.run([sys.executable, "-c", HF_TIMER, str(tmp / "tokenizer.json"), str(data), str(a.runs)],
                                 capture_output=True, text=True, env=env, check=True).stdout.split()
            results[f"HF tokenizers encode_batch, {threads} thread{'s' if threads > 1 else ''}"] = (float(out[0]), int(out[1]))

    counts = {n for _, n in results.values()}
    for name, (sec, n) in results.items():
        extra = f"; whole command {wall[name]:.2f} s, {mb / wall[name]:.1f} MB/s" if name in wall else ""
        print(f"{name:42s} {mb / sec:8.1f} MB/s  ({sec:.2f} s, {n} tokens{extra})")
    if len(counts) != 1:
        print(f"WARNING: token counts differ: {counts}")
    for t in ("1 thread", "2 threads"):
        s = next(v for k, v in results.items() if k.startswith("spectra") and k.endswith(t))
        h = next(v for k, v in results.items() if k.startswith("HF") and k.endswith(t))
        print(f"ratio spectra/HF, {t}: {h[0] / s[0]:.2f}x")


if __name__ == "__main__":
    main()
