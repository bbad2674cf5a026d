"""`spectra export` against independent readers: the `safetensors` package reads the file, a
LLaMA forward pass written here in numpy (from the Hugging Face LlamaForCausalLM definition)
computes with the exported weights what spectra computed when it sampled, and, where PyTorch and
transformers are installed (the GPU host), LlamaForCausalLM itself loads the directory and
agrees with numpy."""
import json

import pytest

from conftest import CORPUS, run_spectra

np = pytest.importorskip("numpy")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

SHAPE = dict(hidden=64, ffn=128, heads=4, layers=2)
PROMPT = "And God said"
COLUMN = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")  # split by rows under TP


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny byte-level TriLM with two scales per projection (what tp=2 trains), exported."""
    d = tmp_path_factory.mktemp("export")
    recipe = CORPUS.parents[2] / "recipes" / "tiny" / "trilm.yaml"
    sets = [f"model.{k}={v}" for k, v in SHAPE.items()] + [
        "model.ternary_shards=2", "train.steps=150", "train.seq_len=32", "train.micro_batch=8",
        "train.global_batch=8", "train.device=cpu", "eval.batches=1", "eval.sample_tokens=0",
        "schedule.warmup_steps=5", f"train.out={d / 'model.h5'}"]
    code, _, err = run_spectra("train", recipe, *[a for s in sets for a in ("--set", s)])
    assert code == 0, err
    for dtype in ("f32", "f16"):
        code, _, err = run_spectra("export", d / "model.h5", "-o", d / dtype, "--dtype", dtype)
        assert code == 0, err
    return d


def load(d):
    return safetensors_numpy.load_file(str(d / "model.safetensors")), json.loads(
        (d / "config.json").read_text())


def rmsnorm(x, g, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g


def rope(x, theta):  # x [T, H, D], rotate-half (HF Llama)
    t, _, dim = x.shape
    inv = theta ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    ang = np.arange(t, dtype=np.float64)[:, None] * inv[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x1, x2 = x[..., : dim // 2], x[..., dim // 2:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def llama_logits(w, cfg, ids):
    """LlamaForCausalLM's forward pass in float64; returns [T, vocab] logits."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    eps, theta, heads = cfg["rms_norm_eps"], cfg["rope_theta"], cfg["num_attention_heads"]
    x = w["model.embed_tokens.weight"][ids]
    t, d = x.shape
    hd = d // heads
    mask = np.triu(np.full((t, t), -np.inf), 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rmsnorm(x, w[p + "input_layernorm.weight"], eps)
        q, k, v = (h @ w[p + f"self_attn.{n}_proj.weight"].T for n in "qkv")
        q, k = rope(q.reshape(t, heads, hd), theta), rope(k.reshape(t, heads, hd), theta)
        v = v.reshape(t, heads, hd)
        s = np.einsum("thd,uhd->htu", q, k) / np.sqrt(hd) + mask
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        o = np.einsum("htu,uhd->thd", a, v).reshape(t, d)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, w[p + "post_attention_layernorm.weight"], eps)
        g, u = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T
    return rmsnorm(x, w["model.norm.weight"], eps) @ w["lm_head.weight"].T


def test_names_shapes_and_config(exported):
    w, cfg = load(exported / "f32")
    d, f, L = SHAPE["hidden"], SHAPE["ffn"], SHAPE["layers"]
    want = {"model.embed_tokens.weight": (256, d), "model.norm.weight": (d,),
            "lm_head.weight": (256, d)}
    for i in range(L):
        p = f"model.layers.{i}."
        want |= {p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,),
                 p + "mlp.gate_proj.weight": (f, d), p + "mlp.up_proj.weight": (f, d),
                 p + "mlp.down_proj.weight": (d, f)}
        want |= {p + f"self_attn.{n}_proj.weight": (d, d) for n in "qkvo"}
    assert {k: v.shape for k, v in w.items()} == want
    assert all(v.dtype == np.float32 for v in w.values())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["vocab_size"] == 256
    assert cfg["hidden_size"] == d and cfg["intermediate_size"] == f
    assert cfg["num_hidden_layers"] == L and cfg["num_attention_heads"] == SHAPE["heads"]
    assert cfg["tie_word_embeddings"] is False and cfg["pretraining_model_parallel"] == 2
    w16, cfg16 = load(exported / "f16")
    assert all(v.dtype == np.float16 for v in w16.values()) and cfg16["torch_dtype"] == "float16"


def test_projections_are_unpacked_ternary_with_one_scale_per_shard(exported):
    w, _ = load(exported / "f32")
    projections = [k for k in w if k.endswith("_proj.weight")]
    assert len(projections) == 7 * SHAPE["layers"]
    for name in projections:
        m = w[name]
        axis = 0 if any(c in name for c in COLUMN) else 1
        blocks = np.split(m, 2, axis=axis)
        scales = []
        for b in blocks:
            mags = set(np.abs(b[b != 0]).tolist())
            assert len(mags) == 1, (name, mags)  # each block: 0 and ±γ of that block only
            scales += mags
        assert scales[0] != scales[1], name  # two shards, two scales
        assert len(set(np.abs(m[m != 0]).tolist())) == 2


def test_numpy_llama_computes_what_spectra_sampled(exported):
    """spectra samples (temperature 1, all tokens) and reports each token's log-probability;
    the numpy forward over the exported weights gives the same log-probabilities. The TriLM runs
    on its packed weights with f32 activations (`--activations exact`; generate's default int8
    moves log-probabilities by its rounding, docs/evaluation.md)."""
    w, cfg = load(exported / "f32")
    scores = exported / "logprobs.jsonl"
    code, out, err = run_spectra("generate", exported / "model.h5", "--prompt", PROMPT, "-n", "24",
                                 "--temperature", "1", "--top-k", "0", "--logprobs", scores,
                                 "--activations", "exact")
    assert code == 0, err
    steps = [json.loads(line) for line in scores.read_text().splitlines()]
    ids = list(PROMPT.encode()) + [s["id"] for s in steps]
    assert out.rstrip(b"\n") == bytes(ids) and len(steps) == 24
    logits = llama_logits(w, cfg, np.array(ids))
    top = logits.max(-1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
    for i, s in enumerate(steps):
        pos = len(PROMPT) + i
        assert abs(logp[pos - 1, ids[pos]] - s["logprob"]) <= 2e-5 * max(1.0, abs(s["logprob"])), i


def test_transformers_loads_the_directory(exported):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    w, cfg = load(exported / "f32")
    model = transformers.LlamaForCausalLM.from_pretrained(str(exported / "f32"),
                                                          torch_dtype=torch.float32).eval()
    ids = list(PROMPT.encode())
    with torch.no_grad():
        got = model(torch.tensor([ids])).logits[0].double().numpy()
    want = llama_logits(w, cfg, np.array(ids))
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
