"""`spectra quantize` against GPTQModel, an independent GPTQ: a FloatLM (hidden 256) is trained
here on the embedded corpus and exported to Hugging Face (f32). GPTQModel quantizes that export
with the calibration token ids spectra drew (--save-calibration) and the same settings (sym,
group 128, damping 0.01, natural column order, true-sequential); spectra quantizes the model
file. Their held-out perplexities must agree within 1%. Then spectra's packed export
(`spectra export --gptq`) must load in GPTQ-aware loaders, GPTQModel's and transformers' own,
with the logits of spectra's dequantized model."""
import gzip
import json
import math
import os

import pytest

from conftest import CORPUS, ROOT, prepare_bpe_corpus, run_spectra

# GPTQModel 7.7's settings for a CPU-only, 2-core machine (its defaults spawn one worker where
# its loader needs two, and compile extensions at run time).
os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")
os.environ.setdefault("GPTQMODEL_DISABLE_PACK_EXT", "1")
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
for module in ("torch", "transformers", "optimum", "gptqmodel"):
    pytest.importorskip(module, reason=f"comparing with GPTQModel needs `{module}`")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from gptqmodel import GPTQModel  # noqa: E402
from gptqmodel.nn_modules.qlinear.torch import TorchLinear  # noqa: E402
from gptqmodel.quantization.config import GPTQConfig  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402
from transformers import GPTQConfig as HFGPTQConfig  # noqa: E402

# GPTQModel's torch kernel dequantizes exactly in f32 but declares only f16/bf16.
if torch.float32 not in TorchLinear.SUPPORTS_DTYPES:
    TorchLinear.SUPPORTS_DTYPES = list(TorchLinear.SUPPORTS_DTYPES) + [torch.float32]

SETS = ["model.vocab_size=512", "model.vocab_rows=512", "model.hidden=256", "model.ffn=768",
        "model.layers=2", "train.seq_len=64", "train.micro_batch=16", "train.global_batch=16",
        "train.device=cpu", "train.steps=300", "eval.sample_tokens=0", "eval.tasks=[]",
        "schedule.lr=[{start: 0.0, peak: 3.0e-3, shape: cosine, floor: 0.1}]"]
CALIBRATION = ["--samples", "64", "--seq-len", "128"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("quant")
    tok, data = prepare_bpe_corpus(d)
    model = d / "floatlm.h5"
    sets = SETS + [f"data.tokenizer={tok}", f"data.datasets=[{data}]", f"train.out={model}"]
    code, _, err = run_spectra("train", ROOT / "recipes" / "tiny" / "floatlm-bpe.yaml",
                               *[a for s in sets for a in ("--set", s)])
    assert code == 0, err
    code, _, err = run_spectra("export", model, "-o", d / "float-hf", "--dtype", "f32")
    assert code == 0, err
    # Held-out text: the corpus's last 40k characters lie in the tail the trainer held out and
    # calibration never draws from. Windows of 128 tokens.
    text = gzip.open(CORPUS, "rt", encoding="utf-8").read()[-40000:]
    ids = Tokenizer.from_file(str(tok)).encode(text).ids
    held = torch.tensor(ids[: len(ids) // 128 * 128]).view(-1, 128)
    return d, data, model, held


def quantize_spectra(d, data, model, name, *flags):
    out = d / f"{name}.h5"
    code, _, err = run_spectra("quantize", model, "-o", out, "--calibration", data, *CALIBRATION,
                               "--save-calibration", d / f"{name}.npy", "--no-progress", *flags)
    assert code == 0, err
    return out


def quantize_gptqmodel(src, calibration, bits, out):
    """GPTQModel with the reference's settings (its defaults differ: damping 0.05, a group-aware
    column order, calibration sorted by length, an RTN fallback, bf16 on the CPU)."""
    cfg = GPTQConfig(bits=bits, group_size=128, sym=True, desc_act=False, act_group_aware=False,
                     static_groups=False, mse=0.0, damp_percent=0.01, damp_auto_increment=0.0,
                     true_sequential=True, fallback=None, offload_to_disk=False, format="gptq",
                     device="cpu")
    cwd = os.getcwd()
    os.chdir(out.parent)  # GPTQModel writes ./logs
    try:
        q = GPTQModel.load(str(src), cfg, dtype=torch.float32)
        rows = [{"input_ids": r.tolist(), "attention_mask": [1] * len(r)} for r in calibration]
        q.quantize(rows, batch_size=1, calibration_sort=None, calibration_data_min_length=0)
        q.save(str(out))
    finally:
        os.chdir(cwd)
    return out


def load_gptq(path):
    return GPTQModel.load(str(path), device="cpu", backend="torch", dtype=torch.float32).model.eval()


def load_hf(path):
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()


def perplexity(model, held):
    nll, count = 0.0, 0
    with torch.inference_mode():
        for row in held:
            logp = torch.log_softmax(model(row[None]).logits.float()[0, :-1], -1)
            nll -= logp.gather(1, row[1:, None]).sum().item()
            count += len(row) - 1
    return math.exp(nll / count)


@pytest.mark.parametrize("bits", [4, 3])
def test_perplexity_matches_gptqmodel(trained, bits, tmp_path):
    d, data, model, held = trained
    q = quantize_spectra(d, data, model, f"q{bits}", "--bits", str(bits))
    code, _, err = run_spectra("export", q, "-o", tmp_path / "spectra-hf", "--dtype", "f32")
    assert code == 0, err
    calibration = np.load(d / f"q{bits}.npy")
    assert calibration.shape == (64, 128)
    ref = quantize_gptqmodel(d / "float-hf", calibration, bits, tmp_path / "gptqmodel")
    base = perplexity(load_hf(d / "float-hf"), held)
    ours = perplexity(load_hf(tmp_path / "spectra-hf"), held)
    theirs = perplexity(load_gptq(ref), held)
    print(f"{bits}-bit held-out perplexity: float {base:.4f}, spectra {ours:.4f}, "
          f"GPTQModel {theirs:.4f}")
    assert abs(ours / theirs - 1) < 0.01
    assert ours > base and theirs > base  # quantization costs something: the runs did quantize


@pytest.mark.parametrize("bits,scheme", [(4, "--sym"), (3, "--sym"), (8, "--sym"), (4, "--asym")])
def test_packed_export_loads_with_the_dequantized_logits(trained, bits, scheme, tmp_path):
    d, data, model, held = trained
    q = quantize_spectra(d, data, model, f"p{bits}{scheme}", "--bits", str(bits), scheme)
    unpacked, packed = tmp_path / "unpacked", tmp_path / "packed"
    for out, flags in ((unpacked, []), (packed, ["--gptq"])):
        code, _, err = run_spectra("export", q, "-o", out, "--dtype", "f32", *flags)
        assert code == 0, err
    config = json.loads((packed / "config.json").read_text())["quantization_config"]
    assert config["bits"] == bits and config["sym"] == (scheme == "--sym")
    ids = held[:2]
    with torch.inference_mode():
        want = load_hf(unpacked)(ids).logits
        got = load_gptq(packed)(ids).logits
        assert torch.allclose(got, want, rtol=0, atol=1e-4), (got - want).abs().max()
        if scheme == "--sym":  # transformers' own loader (through GPTQModel's torch kernel)
            hf = AutoModelForCausalLM.from_pretrained(
                str(packed), device_map="cpu", dtype=torch.float32,
                quantization_config=HFGPTQConfig(bits=bits, backend="torch")).eval()
            got = hf(ids).logits
            assert torch.allclose(got, want, rtol=0, atol=2e-3), (got - want).abs().max()


def test_packed_export_refuses_what_it_cannot_pack(trained):
    d, data, model, _ = trained
    q6 = quantize_spectra(d, data, model, "q6", "--bits", "6")
    code, _, err = run_spectra("export", q6, "-o", d / "q6-hf", "--gptq")
    assert code == 2 and "2, 3, 4 and 8 bits only" in err, err
    code, _, err = run_spectra("export", model, "-o", d / "float-packed", "--gptq")
    assert code == 2 and "not a QuantLM" in err, err
