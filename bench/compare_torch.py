#!/usr/bin/env python3
"""Training-step throughput of spectra beside PyTorch on the same GPU, same model, same batch.

For each recipe, runs `spectra bench RECIPE --json` and an equivalent PyTorch model (Hugging
Face LlamaForCausalLM with the recipe's shape, f32 master weights under bf16 autocast, fused
AdamW, SDPA attention; TriLM projections quantized with the same absmean ternary quantizer and a
straight-through estimator), then prints both and the ratio spectra / PyTorch.

  python3 bench/compare_torch.py --spectra build/spectra recipes/trilm/99m.yaml:8 recipes/floatlm/99m.yaml:8
  (RECIPE:MICRO_BATCH; sequence length 2048)
"""
import argparse
import json
import subprocess
import time

import torch
import yaml


def load_model_section(path):
    """The recipe's model section with `base:` chains merged (recipes keep shared keys in bases)."""
    import os
    with open(path) as f:
        doc = yaml.safe_load(f)
    model = {}
    if "base" in doc:
        model.update(load_model_section(os.path.join(os.path.dirname(path), doc["base"])))
    model.update(doc.get("model") or {})
    tp = (doc.get("parallel") or {}).get("tp")
    if tp:
        model["_tp"] = tp
    return model


class TernaryLinear(torch.nn.Linear):
    """SPECTRA.md's TriLM projection: γ = eps + mean|W|, W_q = γ·clamp(round(W/γ), -1, 1), STE."""

    def forward(self, x):
        w = self.weight
        gamma = w.abs().mean() + 1e-5
        wq = gamma * torch.clamp(torch.round(w / gamma), -1, 1)
        return torch.nn.functional.linear(x, w + (wq - w).detach())


def torch_model(m, rows):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=rows, hidden_size=m["hidden"], intermediate_size=m["ffn"],
                      num_attention_heads=m["heads"], num_key_value_heads=m["heads"],
                      num_hidden_layers=m["layers"], max_position_embeddings=2048, rms_norm_eps=1e-5,
                      rope_theta=10000.0, tie_word_embeddings=False, attn_implementation="sdpa")
    model = LlamaForCausalLM(cfg)
    if m["kind"] == "trilm":
        for layer in model.model.layers:
            for parent, names in ((layer.self_attn, ("q_proj", "k_proj", "v_proj", "o_proj")),
                                  (layer.mlp, ("gate_proj", "up_proj", "down_proj"))):
                for n in names:
                    old = getattr(parent, n)
                    new = TernaryLinear(old.in_features, old.out_features, bias=False)
                    new.weight = old.weight
                    setattr(parent, n, new)
    return model.cuda()


def bench_torch(m, rows, batch, seq, steps, warmup):
    model = torch_model(m, rows)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    ids = torch.randint(0, m["vocab_size"], (batch, seq), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(warmup + steps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    step = sorted(times)[len(times) // 2]
    mem = torch.cuda.max_memory_allocated() / 2**30
    del model, opt
    torch.cuda.empty_cache()
    return batch * seq / step, step, mem


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spectra", default="build/spectra")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("runs", nargs="+", help="RECIPE:MICRO_BATCH")
    a = ap.parse_args()
    rows_out = []
    for run in a.runs:
        recipe, batch = run.rsplit(":", 1)
        batch = int(batch)
        out = subprocess.run([a.spectra, "bench", recipe, "--micro-batch", str(batch), "--seq-len", "2048",
                              "--steps", str(a.steps), "--warmup", str(a.warmup), "--json"],
                             check=True, capture_output=True, text=True).stdout
        s = json.loads([l for l in out.splitlines() if l.startswith("json: ")][0][6:])
        m = load_model_section(recipe)
        tp = m.get("_tp", 1)
        rows = -(-m["vocab_size"] // (128 * tp)) * 128 * tp
        t_tok, t_step, t_mem = bench_torch(m, rows, batch, 2048, a.steps, a.warmup)
        rows_out.append((recipe, batch, s["tokens_per_s"], s["step_ms"], s["peak_mem_gib"], t_tok, 1e3 * t_step, t_mem))
        print(f"done {recipe}", flush=True)
    print(f"\n{'recipe':<28} {'batch':>6} {'spectra tok/s':>14} {'step ms':>9} {'GiB':>6} "
          f"{'torch tok/s':>12} {'step ms':>9} {'GiB':>6} {'ratio':>6}")
    for r in rows_out:
        print(f"{r[0]:<28} {r[1]:>6} {r[2]:>14,.0f} {r[3]:>9.1f} {r[4]:>6.1f} {r[5]:>12,.0f} {r[6]:>9.1f} "
              f"{r[7]:>6.1f} {r[2] / r[5]:>6.2f}")
    print(f"\ntorch {torch.__version__}, {torch.cuda.get_device_name()}")


if __name__ == "__main__":
    main()
