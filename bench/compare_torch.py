#!/usr/bin/env python3
"""Training-step throughput of spectra beside PyTorch on the same GPU, same model, same batch;
and, with --attention, causal attention alone beside PyTorch's SDPA.

For each recipe, runs `spectra bench RECIPE --json` once per attention implementation
(`--set model.attention=X`, X in --impls: reference, flash, cudnn) and an equivalent PyTorch model
(Hugging Face LlamaForCausalLM with the recipe's shape, f32 master weights under bf16 autocast,
fused AdamW, SDPA attention; TriLM projections quantized with the same absmean ternary quantizer
and a straight-through estimator), eagerly and under torch.compile (--torch). It prints tokens/s,
step time, MFU and peak memory for each, and the ratios spectra / PyTorch.

MFU uses spectra's formula (layers/model_config.h: 6 FLOPs per matmul weight and head weight plus
attention's 12·L·seq·d per token) against the peak of kernels/peak_flops.h for the GPU (989
TFLOP/s bf16 on H100 SXM / H200), or --peak-tflops.

--attention: `spectra bench --attention --json` (or its saved output, --spectra-attention-json)
beside torch.nn.functional.scaled_dot_product_attention with the flash and the cuDNN backends, at
the same B, T, H, Dh in bf16, causal, q/k/v laid out [B, T, H, Dh] as spectra's are. FLOPs:
forward 4·B·H·T²·Dh/2 (causal), backward 2.5x forward; the same convention on both sides.

Results go to the console, as `json: {...}` lines, and as markdown tables ready for
docs/performance.md in --out (default $OUT/compare_torch.md; rewritten after every result, so a
run cut short keeps what it measured). --dry-run prints the planned runs and needs no GPU/torch.

  python3 bench/compare_torch.py --spectra build/spectra recipes/trilm/99m.yaml:8 recipes/floatlm/99m.yaml:8
  (RECIPE:MICRO_BATCH; sequence length --seq, 2048)
  python3 bench/compare_torch.py --spectra build/spectra --attention --impls reference,flash,cudnn
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

IMPLS = ("reference", "flash", "cudnn")
TORCH_MODES = ("eager", "compile")
FLOPS_CONVENTION = "forward 4·B·H·T²·Dh/2 (causal), backward 2.5x forward"


def load_model_section(path):
    """The recipe's model section with `base:` chains merged (recipes keep shared keys in bases)."""
    import yaml
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


def vocab_rows(m):
    """The embedding rows spectra allocates: the vocabulary padded to a multiple of 128·tp."""
    if "vocab_rows" in m:
        return m["vocab_rows"]
    q = 128 * m.get("_tp", 1)
    return -(-m["vocab_size"] // q) * q


def train_flops_per_token(m, rows, seq):
    """layers/model_config.h's train_flops_per_token: the same MFU numerator as spectra's."""
    d, L = m["hidden"], m["layers"]
    matmul = L * (4 * d * d + 3 * d * m["ffn"]) + rows * d
    return 6.0 * matmul + 12.0 * L * seq * d


def peak_flops(name):
    """kernels/peak_flops.h's dense bf16 peaks by device name (0: unknown)."""
    n = name.upper()
    if "H100" in n and "PCIE" in n:
        return 756e12
    if "H100" in n and "NVL" in n:
        return 835e12
    if "H100" in n or "H200" in n or "GH200" in n:
        return 989e12
    if "A100" in n:
        return 312e12
    if "L40S" in n:
        return 362e12
    if "A10G" in n:
        return 70e12
    return 0.0


def model_label(m, recipe):
    kind = {"trilm": "TriLM", "floatlm": "FloatLM"}.get(m.get("kind"), m.get("kind", "?"))
    size = str(m.get("size") or os.path.splitext(os.path.basename(recipe))[0]).upper()
    return f"{kind} {size}"


def torch_model(m, rows):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    class TernaryLinear(torch.nn.Linear):
        """SPECTRA.md's TriLM projection: γ = eps + mean|W|, W_q = γ·clamp(round(W/γ), -1, 1), STE."""

        def forward(self, x):
            w = self.weight
            gamma = w.abs().mean() + 1e-5
            wq = gamma * torch.clamp(torch.round(w / gamma), -1, 1)
            return torch.nn.functional.linear(x, w + (wq - w).detach())

    cfg = LlamaConfig(vocab_size=rows, hidden_size=m["hidden"], intermediate_size=m["ffn"],
                      num_attention_heads=m["heads"], num_key_value_heads=m["heads"],
                      num_hidden_layers=m["layers"], max_position_embeddings=2048, rms_norm_eps=1e-5,
                      rope_theta=10000.0, tie_word_embeddings=False, attn_implementation="sdpa")
    with torch.device("cuda"):  # initialized on the GPU: seconds less for the 1.1B models
        model = LlamaForCausalLM(cfg)
    if m["kind"] == "trilm":
        for layer in model.model.layers:
            for parent, names in ((layer.self_attn, ("q_proj", "k_proj", "v_proj", "o_proj")),
                                  (layer.mlp, ("gate_proj", "up_proj", "down_proj"))):
                for n in names:
                    old = getattr(parent, n)
                    new = TernaryLinear(old.in_features, old.out_features, bias=False, device="meta")
                    new.weight = old.weight
                    setattr(parent, n, new)
    return model.cuda()


def bench_torch(m, rows, batch, seq, steps, warmup, mode="eager", scope="layers"):
    """tokens/s, step seconds (median), peak GiB of one PyTorch training step; mode eager or
    compile (scope layers: each decoder layer compiled, the identical layers sharing the code;
    model: the whole model, embedding, head and loss included)."""
    import torch
    torch._dynamo.reset()
    model = torch_model(m, rows)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    ids = torch.randint(0, m["vocab_size"], (batch, seq), device="cuda")
    fwd = model
    if mode == "compile":
        if scope == "model":
            fwd = torch.compile(model)
        else:
            for layer in model.model.layers:
                layer.compile()
    torch.cuda.reset_peak_memory_stats()
    times = []
    try:
        for i in range(warmup + steps):
            torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = fwd(input_ids=ids, labels=ids).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t)
        step = sorted(times)[len(times) // 2]
        mem = torch.cuda.max_memory_allocated() / 2**30
    finally:
        del model, opt, fwd
        torch.cuda.empty_cache()
    return batch * seq / step, step, mem


def spectra_cmd(a, recipe, batch, impl):
    cmd = [a.spectra, "bench", recipe, "--micro-batch", str(batch), "--seq-len", str(a.seq),
           "--steps", str(a.steps), "--warmup", str(a.warmup), "--json"]
    if impl:
        cmd += ["--set", f"model.attention={impl}"]
    for s in a.set:
        cmd += ["--set", s]
    return cmd


def run_spectra(cmd, timeout):
    """The first `json:` line of a spectra command, or {"error": its last error line}."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [{"error": f"timed out after {timeout} s"}]
    sys.stdout.write(p.stdout)
    sys.stdout.flush()
    rows = [json.loads(l[6:]) for l in p.stdout.splitlines() if l.startswith("json: ")]
    if not rows:
        lines = [l for l in (p.stderr + p.stdout).splitlines() if l.strip()]
        err = next((l for l in reversed(lines) if l.startswith("error")), lines[-1] if lines else "")
        return [{"error": f"exit {p.returncode}: {err}"}]
    return rows


def time_cuda(fn, steps, warmup):
    """Seconds per call: median of three rounds of `steps` back-to-back calls (CUDA events), the
    same scheme as spectra bench --attention."""
    import torch
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    rounds = []
    for _ in range(3):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(steps):
            fn()
        e.record()
        e.synchronize()
        rounds.append(s.elapsed_time(e) / 1e3 / steps)
    return sorted(rounds)[1]


def attention_flops(b, t, h, dh):
    f = 4.0 * b * h * t * t * dh / 2
    return f, 2.5 * f


def torch_attention(b, t, h, dh, steps, warmup, backend):
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    be = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
          "efficient": SDPBackend.EFFICIENT_ATTENTION}[backend]
    g = torch.Generator(device="cuda").manual_seed(1000 + t)

    def rnd(grad):
        x = (torch.rand((b, t, h, dh), device="cuda", generator=g) * 2 - 1).to(torch.bfloat16)
        return x.requires_grad_(grad)

    q, k, v, dout = rnd(True), rnd(True), rnd(True), rnd(False)
    with sdpa_kernel([be]):
        def fwd():  # [B, T, H, Dh] viewed as [B, H, T, Dh]: spectra's layout, no copies
            return torch.nn.functional.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        f_s = time_cuda(fwd, steps, warmup)
        o = fwd()
        g_o = dout.transpose(1, 2)
        b_s = time_cuda(lambda: torch.autograd.grad(o, (q, k, v), g_o, retain_graph=True), steps, warmup)
    ff, bf = attention_flops(b, t, h, dh)
    return {"impl": f"torch sdpa {backend}", "batch": b, "seq_len": t, "heads": h, "head_dim": dh,
            "forward_ms": 1e3 * f_s, "backward_ms": 1e3 * b_s,
            "forward_tflops": ff / f_s / 1e12, "backward_tflops": bf / b_s / 1e12}


def spectra_attention_cmd(a):
    b, h, dh = a.attention_shape
    return [a.spectra, "bench", "--attention", "--impl", ",".join(a.impls), "--batch", str(b),
            "--heads", str(h), "--head-dim", str(dh), "--seq", ",".join(map(str, a.attention_seq)),
            "--steps", str(a.attention_steps), "--warmup", str(a.warmup), "--json"]


def fmt_num(x, spec):
    return "" if x is None else format(x, spec)


class Report:
    """Collects results and rewrites the markdown file after each one."""

    def __init__(self, a):
        self.a = a
        self.train = []   # dicts: label, recipe, batch, run, tok_s, step_ms, mfu, mem, error
        self.attn = []    # dicts from spectra bench --attention and torch_attention
        self.device = "?"
        self.torch_version = "?"
        self.peak = 0.0

    def add_train(self, r):
        self.train.append(r)
        print("json: " + json.dumps({"compare": "train", **r}), flush=True)
        self.write()

    def add_attn(self, r):
        self.attn.append(r)
        print("json: " + json.dumps({"compare": "attention", **r}), flush=True)
        self.write()

    def train_rows(self):
        out = []
        keys = []
        for r in self.train:
            if (r["label"], r["batch"]) not in keys:
                keys.append((r["label"], r["batch"]))
        for key in keys:
            group = [r for r in self.train if (r["label"], r["batch"]) == key]
            base = {r["run"]: r.get("tok_s") for r in group if r["run"].startswith(("PyTorch", "torch."))}
            sref = next((r.get("tok_s") for r in group if r["run"] == "spectra reference"), None)
            eager = next((v for k, v in base.items() if k.startswith("PyTorch eager")), None)
            comp = next((v for k, v in base.items() if k.startswith("torch.compile")), None)
            for r in group:
                if r.get("error"):
                    out.append((key[0], key[1], r["run"], "error: " + r["error"].replace("|", "/")[:160],
                                "", "", "", "", "", ""))
                    continue
                tok = r["tok_s"]
                out.append((key[0], key[1], r["run"], f"{tok:,.0f}", f"{r['step_ms']:.1f}",
                            f"{100 * r['mfu']:.1f}%" if r.get("mfu") else "",
                            fmt_num(r.get("mem"), ".1f"),
                            f"{tok / sref:.2f}" if sref and r["run"].startswith("spectra") else "",
                            f"{tok / eager:.2f}" if eager else "", f"{tok / comp:.2f}" if comp else ""))
        return out

    def attn_rows(self):
        out = []
        for shape in sorted({(r["batch"], r["seq_len"], r["heads"], r["head_dim"]) for r in self.attn}):
            group = [r for r in self.attn if (r["batch"], r["seq_len"], r["heads"], r["head_dim"]) == shape]
            ref = next((r for r in group if r["impl"] == "torch sdpa flash" and not r.get("error")), None)
            for r in group:
                dims = "×".join(map(str, shape))
                name = r["impl"] if r["impl"].startswith("torch") else f"spectra {r['impl']}"
                if r.get("error"):
                    out.append((name, dims, "error: " + r["error"].replace("|", "/")[:160], "", "", "", "", ""))
                    continue
                out.append((name, dims, f"{r['forward_ms']:.3f}", f"{r['forward_tflops']:.1f}",
                            f"{r['backward_ms']:.3f}", f"{r['backward_tflops']:.1f}",
                            f"{r['forward_tflops'] / ref['forward_tflops']:.2f}" if ref else "",
                            f"{r['backward_tflops'] / ref['backward_tflops']:.2f}" if ref else ""))
        return out

    def markdown(self):
        a = self.a
        day = datetime.date.today().isoformat()
        md = [f"<!-- bench/compare_torch.py {' '.join(sys.argv[1:])} -->", ""]
        if self.train:
            md += [f"### Training throughput vs PyTorch ({day}, {self.device})", "",
                   f"Synthetic tokens, sequence length {a.seq}, bf16 compute with f32 master weights, one "
                   f"GPU, {a.steps} timed steps after {a.warmup} warm-up (median step). spectra: `spectra "
                   f"bench --set model.attention=X{''.join(' --set ' + s for s in a.set)}`. "
                   f"PyTorch {self.torch_version}: Hugging Face LlamaForCausalLM, bf16 autocast, fused AdamW, "
                   f"SDPA attention, TriLM projections through the same absmean ternary quantizer (STE); "
                   f"torch.compile with scope `{a.compile_scope}`. MFU against "
                   f"{self.peak / 1e12:.0f} TFLOP/s (spectra's FLOPs per token).", "",
                   "| model | micro-batch | run | tok/s | step ms | MFU | peak GiB | / spectra reference "
                   "| / PyTorch eager | / torch.compile |",
                   "|---|---|---|---|---|---|---|---|---|---|"]
            md += ["| " + " | ".join(str(c) for c in row) + " |" for row in self.train_rows()]
            md.append("")
        if self.attn:
            md += [f"### Causal attention alone ({day}, {self.device})", "",
                   f"bf16, q/k/v [B, T, H, Dh], {a.attention_steps} calls × 3 rounds after {a.warmup} warm-up "
                   f"(median round). FLOPs: {FLOPS_CONVENTION}. spectra: `spectra bench --attention`; "
                   f"PyTorch {self.torch_version}: `scaled_dot_product_attention(is_causal=True)` with one "
                   f"SDPA backend. Ratios: TFLOP/s over PyTorch's flash backend.", "",
                   "| implementation | B×T×H×Dh | fwd ms | fwd TFLOP/s | bwd ms | bwd TFLOP/s | fwd / torch flash | bwd / torch flash |",
                   "|---|---|---|---|---|---|---|---|"]
            md += ["| " + " | ".join(str(c) for c in row) + " |" for row in self.attn_rows()]
            md.append("")
        return "\n".join(md)

    def write(self):
        if not self.a.out:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.a.out)), exist_ok=True)
        with open(self.a.out + ".tmp", "w") as f:
            f.write(self.markdown())
        os.replace(self.a.out + ".tmp", self.a.out)

    def console(self):
        if self.train:
            print(f"\n{'model':<14} {'batch':>5} {'run':<26} {'tok/s':>10} {'step ms':>9} {'MFU':>6} "
                  f"{'GiB':>6} {'/ref':>6} {'/eager':>7} {'/compile':>8}")
            for r in self.train_rows():
                if r[3].startswith("error"):
                    print(f"{r[0]:<14} {r[1]:>5} {r[2]:<26} {r[3]}")
                else:
                    print(f"{r[0]:<14} {r[1]:>5} {r[2]:<26} {r[3]:>10} {r[4]:>9} {r[5]:>6} {r[6]:>6} "
                          f"{r[7]:>6} {r[8]:>7} {r[9]:>8}")
        if self.attn:
            print(f"\n{'attention':<22} {'BxTxHxDh':<16} {'fwd ms':>8} {'fwd TF/s':>9} {'bwd ms':>8} "
                  f"{'bwd TF/s':>9} {'fwd/tfl':>8} {'bwd/tfl':>8}")
            for r in self.attn_rows():
                if r[2].startswith("error"):
                    print(f"{r[0]:<22} {r[1]:<16} {r[2]}")
                else:
                    print(f"{r[0]:<22} {r[1]:<16} {r[2]:>8} {r[3]:>9} {r[4]:>8} {r[5]:>9} {r[6]:>8} {r[7]:>8}")
        print(f"\nFLOPs (attention): {FLOPS_CONVENTION}")
        print(f"torch {self.torch_version}, {self.device}")
        if self.a.out:
            print(f"markdown: {self.a.out}")


def parse_runs(a):
    runs = []
    for run in a.runs:
        recipe, _, batch = run.rpartition(":")
        if not recipe or not batch.isdigit():
            sys.exit(f"error: '{run}' is not RECIPE:MICRO_BATCH")
        if not os.path.isfile(recipe):
            sys.exit(f"error: recipe {recipe} does not exist")
        m = load_model_section(recipe)
        runs.append((recipe, int(batch), m, vocab_rows(m)))
    return runs


def dry_run(a, runs):
    print(f"planned runs (sequence {a.seq}, {a.steps} timed steps after {a.warmup} warm-up):")
    ok = True
    if runs and not os.access(a.spectra, os.X_OK):
        print(f"  MISSING spectra binary: {a.spectra}")
        ok = False
    for recipe, batch, m, rows in runs:
        fpt = train_flops_per_token(m, rows, a.seq)
        print(f"{model_label(m, recipe)} ({recipe}), micro-batch {batch}: hidden {m['hidden']}, ffn {m['ffn']}, "
              f"{m['heads']} heads x {m['hidden'] // m['heads']}, {m['layers']} layers, {rows} vocab rows, "
              f"{fpt:.3e} training FLOPs/token")
        for impl in a.impls:
            print("  spectra " + " ".join(spectra_cmd(a, recipe, batch, impl)))
        for mode in a.torch:
            what = "eager" if mode == "eager" else f"torch.compile (scope {a.compile_scope})"
            print(f"  PyTorch {what}: LlamaForCausalLM, bf16 autocast, fused AdamW, SDPA"
                  f"{', ternary projections' if m['kind'] == 'trilm' else ''}")
    if a.attention:
        b, h, dh = a.attention_shape
        if a.spectra_attention_json:
            print(f"attention: spectra results read from {a.spectra_attention_json}; PyTorch SDPA "
                  f"{', '.join(a.torch_attention)} at the shapes found there")
            if not os.path.isfile(a.spectra_attention_json):
                print("  (that file does not exist yet)")
        else:
            print("attention: " + " ".join(spectra_attention_cmd(a)))
            for t in a.attention_seq:
                print(f"  PyTorch SDPA {', '.join(a.torch_attention)} at {b}x{t}x{h}x{dh} bf16 causal")
    print(f"markdown: {a.out or '(none)'}")
    try:
        import torch  # noqa: F401
        print(f"torch {torch.__version__} importable here")
    except ImportError:
        print("torch not importable here (needed only for the real run)")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spectra", default="build/spectra")
    ap.add_argument("--steps", type=int, default=5, help="timed training steps (default 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps / calls first (default 2)")
    ap.add_argument("--seq", type=int, default=2048, help="sequence length of the training runs")
    ap.add_argument("--impls", default=",".join(IMPLS),
                    help="spectra model.attention values to run, comma-separated (default all; "
                         "'none': no spectra training runs)")
    ap.add_argument("--torch", default=",".join(TORCH_MODES),
                    help="PyTorch baselines: eager, compile, both comma-separated, or none")
    ap.add_argument("--compile-scope", choices=("layers", "model"), default="layers",
                    help="torch.compile each decoder layer (identical layers share one compiled "
                         "code: short compile) or the whole model (default layers)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra recipe override for every spectra run (e.g. train.cuda_graph=true)")
    ap.add_argument("--peak-tflops", type=float, default=0,
                    help="peak for MFU (default: kernels/peak_flops.h's for the GPU)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per spectra run")
    ap.add_argument("--attention", action="store_true", help="also compare attention alone")
    ap.add_argument("--attention-shape", default="4,16,128", help="B,H,Dh of --attention (default 4,16,128)")
    ap.add_argument("--attention-seq", default="2048", help="T values of --attention, comma-separated")
    ap.add_argument("--attention-steps", type=int, default=10, help="calls per round of --attention")
    ap.add_argument("--torch-attention", default="flash,cudnn",
                    help="PyTorch SDPA backends for --attention: flash, cudnn, efficient")
    ap.add_argument("--spectra-attention-json", metavar="FILE",
                    help="read spectra's attention figures from this saved `spectra bench --attention "
                         "--json` output instead of running it")
    ap.add_argument("--out", default=None,
                    help="markdown file (default $OUT/compare_torch.md, else gpu-check-logs/compare_torch.md)")
    ap.add_argument("--dry-run", action="store_true", help="print the planned runs and exit")
    ap.add_argument("runs", nargs="*", help="RECIPE:MICRO_BATCH")
    a = ap.parse_args()
    a.impls = [] if a.impls == "none" else [s for s in a.impls.split(",") if s]
    for s in a.impls:
        if s not in IMPLS:
            ap.error(f"--impls: '{s}' is not one of {', '.join(IMPLS)}")
    a.torch = [] if a.torch == "none" else [s for s in a.torch.split(",") if s]
    for s in a.torch:
        if s not in TORCH_MODES:
            ap.error(f"--torch: '{s}' is not one of eager, compile, none")
    a.torch_attention = [s for s in a.torch_attention.split(",") if s]
    try:
        a.attention_shape = [int(x) for x in a.attention_shape.split(",")]
        a.attention_seq = [int(x) for x in a.attention_seq.split(",")]
        assert len(a.attention_shape) == 3
    except (ValueError, AssertionError):
        ap.error("--attention-shape is B,H,Dh and --attention-seq T[,T...], integers")
    if not a.runs and not a.attention:
        ap.error("nothing to run: give RECIPE:MICRO_BATCH runs and/or --attention")
    if a.out is None:
        a.out = os.path.join(os.environ.get("OUT") or "gpu-check-logs", "compare_torch.md")
    runs = parse_runs(a)
    if a.dry_run:
        return dry_run(a, runs)

    import torch
    rep = Report(a)
    rep.device = torch.cuda.get_device_name()
    rep.torch_version = torch.__version__
    rep.peak = a.peak_tflops * 1e12 if a.peak_tflops > 0 else peak_flops(rep.device)

    if a.attention:  # short, and the figure the attention work is judged by: first
        if a.spectra_attention_json:
            with open(a.spectra_attention_json) as f:
                srows = [json.loads(l[6:]) for l in f if l.startswith("json: ")]
        else:
            srows = run_spectra(spectra_attention_cmd(a), a.timeout)
        for r in srows:
            if "impl" in r:
                rep.add_attn(r)
            elif r.get("error"):
                print(f"spectra bench --attention: {r['error']}")
        b, h, dh = a.attention_shape
        shapes = [(b, t, h, dh) for t in a.attention_seq]
        if a.spectra_attention_json:  # PyTorch at the shapes spectra measured
            shapes = sorted({(r["batch"], r["seq_len"], r["heads"], r["head_dim"]) for r in srows if "impl" in r})
        for b, t, h, dh in shapes:
            for backend in a.torch_attention:
                try:
                    rep.add_attn(torch_attention(b, t, h, dh, a.attention_steps, a.warmup, backend))
                except Exception as e:  # a backend this torch/GPU lacks
                    rep.add_attn({"impl": f"torch sdpa {backend}", "batch": b, "seq_len": t, "heads": h,
                                  "head_dim": dh, "error": str(e).splitlines()[0] if str(e) else repr(e)})
                torch.cuda.empty_cache()

    for recipe, batch, m, rows in runs:
        label = model_label(m, recipe)
        fpt = train_flops_per_token(m, rows, a.seq)
        for impl in a.impls:
            r = run_spectra(spectra_cmd(a, recipe, batch, impl), a.timeout)[0]
            row = {"label": label, "recipe": recipe, "batch": batch, "run": f"spectra {impl}"}
            if r.get("error"):
                row["error"] = r["error"]
            else:
                row.update(tok_s=r["tokens_per_s"], step_ms=r["step_ms"], mfu=r.get("mfu"),
                           mem=r.get("peak_mem_gib"), forward_ms=r.get("forward_ms"),
                           backward_ms=r.get("backward_ms"), optimizer_ms=r.get("optimizer_ms"))
            rep.add_train(row)
        for mode in a.torch:
            run = "PyTorch eager (SDPA)" if mode == "eager" else f"torch.compile ({a.compile_scope})"
            row = {"label": label, "recipe": recipe, "batch": batch, "run": run}
            try:
                t0 = time.perf_counter()
                tok, step, mem = bench_torch(m, rows, batch, a.seq, a.steps, a.warmup, mode, a.compile_scope)
                row.update(tok_s=tok, step_ms=1e3 * step, mem=mem, wall_s=time.perf_counter() - t0,
                           mfu=tok * fpt / rep.peak if rep.peak else None)
            except Exception as e:  # out of memory, a compile failure: the rest goes on
                row["error"] = (str(e).splitlines() or [repr(e)])[0]
                torch.cuda.empty_cache()
            rep.add_train(row)
        print(f"done {recipe}", flush=True)
    rep.console()
    return 0


if __name__ == "__main__":
    sys.exit(main())
