#!/usr/bin/env python3
"""TriLM inference on the CPU: spectra's packed ternary kernels beside llama.cpp's TQ2_0 and TQ1_0
on the same model, the same machine and the same number of threads.

For each recipe (a TriLM shape that TQ2_0 holds exactly: every projection's input width a multiple
of 256, one scale per matrix, tp 1):
  1. `spectra bench RECIPE --generate N --prompt-tokens P --repeats R --json --save-model M`:
     random weights (speed does not depend on training), a P-token prompt read at once and N
     tokens decoded greedily, medians of R runs, packed weights with exact (f32) and int8
     activations (and the latent f32 path with --latent); the model file is written for step 2;
  2. `spectra export M --format gguf --type tq2_0` (and tq1_0): the same weights for llama.cpp
     (projections ternary, embedding and head F16, as llama.cpp's converter writes them);
  3. llama.cpp through llama-cpp-python (the test venv's), n_threads = --threads for both prompt
     and decode, n_batch = P: a P-token prompt (random ids) read in one call (timed around it),
     then N greedy tokens one call each (timed around the loop, with its argmax, as spectra's
     bench times its own), R runs.
It prints medians and the ratios spectra / llama.cpp, as a markdown table (also written to --out).

A tokenizer is needed for the GGUF file: one is trained on the embedded corpus (--vocab tokens,
default 4096; the model keeps the recipe's 50304-row embedding and head, which the GGUF
vocabulary pads to).

  python3 bench/compare_llamacpp.py --spectra build/spectra recipes/trilm/560m.yaml
  python3 bench/compare_llamacpp.py --dry-run    # the plan, nothing run
"""
import argparse
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run(cmd, dry):
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    if dry:
        return ""
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"error: {' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p.stdout


def spectra_rows(a, recipe, tokenizer, model_path):
    cmd = [a.spectra, "bench", recipe, "--generate", a.tokens, "--prompt-tokens", a.prompt,
           "--repeats", a.repeats, "--json", "--save-model", model_path,
           "--set", "train.device=cpu", "--set", "train.precision=f32",
           "--set", f"data.tokenizer={tokenizer}"]
    if not a.latent:
        cmd.append("--packed-only")
    for kv in a.set:
        cmd += ["--set", kv]
    env_threads = {"OMP_NUM_THREADS": str(a.threads)}
    print("+ " + " ".join(map(str, cmd)), flush=True)
    if a.dry_run:
        return []
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                       env={**os.environ, **env_threads})
    if p.returncode != 0:
        sys.exit(f"error: spectra bench failed ({p.returncode}):\n{p.stderr[-3000:]}")
    print(p.stdout, end="", flush=True)
    return [json.loads(line[len("json: "):]) for line in p.stdout.splitlines()
            if line.startswith("json: ")]


def llamacpp_row(a, gguf_path, vocab):
    """Medians of a.repeats runs: a random a.prompt-token prompt, then greedy tokens."""
    import llama_cpp
    import numpy as np
    llm = llama_cpp.Llama(model_path=gguf_path, n_ctx=a.prompt + a.tokens + 8, n_batch=a.prompt,
                          n_ubatch=a.prompt, n_threads=a.threads, n_threads_batch=a.threads,
                          logits_all=False, verbose=False)
    n_vocab = llm.n_vocab()
    rng = random.Random(1)
    prompt_rate, decode_rate = [], []
    for _ in range(a.repeats):
        prompt = [rng.randrange(vocab) for _ in range(a.prompt)]
        llm.reset()
        start = time.perf_counter()
        llm.eval(prompt)  # one llama_decode call of the whole prompt (n_batch = prompt)
        prompt_rate.append(a.prompt / (time.perf_counter() - start))
        start = time.perf_counter()
        for _ in range(a.tokens - 1):  # the first new token comes from the prompt's logits
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1),
                                           shape=(n_vocab,))
            llm.eval([int(logits.argmax())])
        decode_rate.append((a.tokens - 1) / (time.perf_counter() - start))
    return {"prompt_tokens_per_s": statistics.median(prompt_rate),
            "decode_tokens_per_s": statistics.median(decode_rate),
            "file_bytes": os.path.getsize(gguf_path)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 1)[1])
    p.add_argument("recipes", nargs="*", default=["recipes/trilm/560m.yaml"])
    p.add_argument("--spectra", default=os.path.join(ROOT, "build", "spectra"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--prompt", type=int, default=512, help="prompt tokens")
    p.add_argument("--tokens", type=int, default=128, help="generated tokens")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--types", default="tq2_0,tq1_0", help="GGUF types for llama.cpp")
    p.add_argument("--vocab", type=int, default=4096, help="tokenizer size for the GGUF file")
    p.add_argument("--latent", action="store_true", help="also time spectra's latent f32 path")
    p.add_argument("--work", help="folder for the tokenizer, model and GGUF files (default: temp)")
    p.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."),
                                                 "compare_llamacpp.md"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="recipe override for spectra (e.g. parallel.tp=1)")
    p.add_argument("--reuse", action="store_true",
                   help="reuse --work's spectra figures and model file from an earlier run")
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args()
    if not a.dry_run:
        import llama_cpp  # noqa: F401  (fails early when the venv lacks it)
    work = a.work or tempfile.mkdtemp(prefix="compare_llamacpp-")
    os.makedirs(work, exist_ok=True)
    tokenizer = os.path.join(work, f"tokenizer-{a.vocab}.json")
    if not os.path.exists(tokenizer):
        run([a.spectra, "tokenizer", "train", os.path.join(ROOT, "data", "corpus", "kjv.txt.gz"),
             "-o", tokenizer, "--vocab-size", a.vocab, "--special", "<|endoftext|>"], a.dry_run)

    date = datetime.date.today().isoformat()
    lines = [f"Measured {date} on {cpu_model()}, {a.threads} threads, prompt {a.prompt} tokens, "
             f"{a.tokens} generated, median of {a.repeats} (bench/compare_llamacpp.py).", "",
             "| model | engine | weights | prompt tok/s | decode tok/s | prompt vs TQ2_0 | "
             "decode vs TQ2_0 |", "|---|---|---|---|---|---|---|"]
    for recipe in a.recipes:
        name = os.path.splitext(os.path.basename(recipe))[0]
        model_path = os.path.join(work, f"{name}.h5")
        saved = os.path.join(work, f"{name}-spectra.json")
        if a.reuse and os.path.exists(saved) and os.path.exists(model_path):
            with open(saved) as f:
                rows = json.load(f)
        else:
            rows = spectra_rows(a, recipe, tokenizer, model_path)
            if not a.dry_run:
                with open(saved, "w") as f:
                    json.dump(rows, f)
        ref = {}
        for t in a.types.split(","):
            gguf_path = os.path.join(work, f"{name}-{t}.gguf")
            if not (a.reuse and os.path.exists(gguf_path)):
                run([a.spectra, "export", model_path, "--format", "gguf", "--type", t, "-o",
                     gguf_path], a.dry_run)
            if a.dry_run:
                continue
            ref[t] = llamacpp_row(a, gguf_path, a.vocab)
            print(f"llama.cpp {t}: prompt {ref[t]['prompt_tokens_per_s']:.1f} tok/s, decode "
                  f"{ref[t]['decode_tokens_per_s']:.2f} tok/s", flush=True)
        if a.dry_run:
            continue
        base = ref.get("tq2_0")

        def ratio(v, key):
            return f"{v / base[key]:.2f}x" if base else "-"

        for t, r in ref.items():
            lines.append(f"| {name} TriLM | llama.cpp | {t.upper()} "
                         f"({r['file_bytes'] / 1e6:.0f} MB file) | "
                         f"{r['prompt_tokens_per_s']:.1f} | {r['decode_tokens_per_s']:.2f} | "
                         f"{ratio(r['prompt_tokens_per_s'], 'prompt_tokens_per_s')} | "
                         f"{ratio(r['decode_tokens_per_s'], 'decode_tokens_per_s')} |")
        for r in rows:
            what = (f"packed, {r['activations']} activations ({r['ternary_bits_per_weight']:.2f} "
                    f"bits/w)" if r["weights"] == "packed" else "latent f32")
            lines.append(f"| {name} TriLM | spectra ({r['isa']}) | {what} | "
                         f"{r['prompt_tokens_per_s']:.1f} | {r['decode_tokens_per_s']:.2f} | "
                         f"{ratio(r['prompt_tokens_per_s'], 'prompt_tokens_per_s')} | "
                         f"{ratio(r['decode_tokens_per_s'], 'decode_tokens_per_s')} |")
        with open(a.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not a.dry_run:
        print(f"(written to {a.out})")


if __name__ == "__main__":
    main()
