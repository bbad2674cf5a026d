"""`spectra convert` (Hugging Face -> spectra) against transformers and against `spectra export`:
  - export then convert gives back a model file equal in every weight (a TriLM's latent weights
    differ, but its trits and scales, the weights it computes with, are identical);
  - a randomly initialized LlamaForCausalLM made by transformers converts, and spectra's
    log-probabilities of a text equal transformers' within 1e-4;
  - a run started from a converted model trains;
  - foreign, truncated and unsupported checkpoints fail with one error line."""
import json
import shutil

import pytest

from conftest import ROOT, prepare_bpe_corpus, run_spectra

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from safetensors.numpy import load_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

SHAPE = ["model.vocab_size=512", "model.vocab_rows=512", "model.hidden=64", "model.ffn=128",
         "model.layers=2", "train.seq_len=64", "train.micro_batch=4", "train.global_batch=4",
         "train.device=cpu", "eval.sample_tokens=0", "eval.tasks=[]"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("convert")
    tok, tokens = prepare_bpe_corpus(d)
    return d, tok, tokens


def train(d, tok, tokens, kind, name, *extra):
    model = d / f"{name}.h5"
    sets = SHAPE + ["train.steps=20", f"data.tokenizer={tok}", f"data.datasets=[{tokens}]",
                    f"train.out={model}", *extra]
    code, _, err = run_spectra("train", ROOT / "recipes" / "tiny" / f"{kind}-bpe.yaml",
                               *[a for s in sets for a in ("--set", s)])
    assert code == 0, err
    return model


def export(model, out, *flags):
    code, _, err = run_spectra("export", model, "-o", out, *flags)
    assert code == 0, err
    return out


@pytest.mark.parametrize("kind,shards", [("floatlm", 1), ("trilm", 1), ("trilm", 2)])
def test_export_then_convert_is_identical(data, kind, shards, tmp_path):
    d, tok, tokens = data
    model = train(d, tok, tokens, kind, f"{kind}{shards}", f"model.ternary_shards={shards}")
    hf = export(model, tmp_path / "hf", "--dtype", "f32")
    back = tmp_path / "back.h5"
    code, out, err = run_spectra("convert", hf, "-o", back)
    assert code == 0, err
    assert kind in out.decode()
    again = export(back, tmp_path / "again", "--dtype", "f32")
    a, b = load_file(str(hf / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:  # the weights the models compute with, bit for bit
        assert np.array_equal(a[name], b[name]), name
    if kind == "floatlm":  # and the model files' parameters themselves
        code, out, err = run_spectra("inspect", back)
        assert code == 0, err


def test_sharded_checkpoints_convert(data, tmp_path):
    """model.safetensors.index.json naming two shards (as large checkpoints are saved)."""
    from safetensors.numpy import save_file
    d, tok, tokens = data
    hf = export(train(d, tok, tokens, "trilm", "sharded"), tmp_path / "hf", "--dtype", "f16")
    weights = load_file(str(hf / "model.safetensors"))
    (hf / "model.safetensors").unlink()
    names = sorted(weights)
    halves = {"model-00001-of-00002.safetensors": names[::2],
              "model-00002-of-00002.safetensors": names[1::2]}
    for file, part in halves.items():
        save_file({n: weights[n] for n in part}, str(hf / file))
    index = {"metadata": {}, "weight_map": {n: f for f, part in halves.items() for n in part}}
    (hf / "model.safetensors.index.json").write_text(json.dumps(index))
    code, out, err = run_spectra("convert", hf, "-o", tmp_path / "m.h5")
    assert code == 0 and "trilm" in out.decode(), err
    again = load_file(str(export(tmp_path / "m.h5", tmp_path / "again", "--dtype", "f16") /
                          "model.safetensors"))
    for n in names:
        assert np.array_equal(again[n], weights[n]), n


def test_transformers_model_converts_with_equal_logprobs(data, tmp_path):
    d, tok, _ = data
    cfg = transformers.LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=4, max_position_embeddings=128,
                                   rms_norm_eps=1e-5, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).float().eval()
    hf = tmp_path / "hf"
    model.save_pretrained(hf, safe_serialization=True)
    shutil.copy(tok, hf / "tokenizer.json")
    spectra_model = tmp_path / "model.h5"
    code, _, err = run_spectra("convert", hf, "-o", spectra_model)
    assert code == 0, err
    # spectra's log-probabilities of the tokens it samples, against transformers' of the same.
    logprobs = tmp_path / "logprobs.jsonl"
    code, _, err = run_spectra("generate", spectra_model, "--prompt", "And God said", "-n", "24",
                               "--temperature", "1", "--top-k", "0", "--logprobs", logprobs)
    assert code == 0, err
    rows = [json.loads(line) for line in logprobs.read_text().splitlines()]
    ids = [r["id"] for r in rows]
    prompt = Tokenizer.from_file(str(tok)).encode("And God said").ids
    seq = torch.tensor([prompt + ids])
    with torch.inference_mode():
        logp = torch.log_softmax(model(seq).logits[0].double(), -1)
    for i, r in enumerate(rows):
        pos = len(prompt) + i - 1
        assert abs(logp[pos, r["id"]].item() - r["logprob"]) < 1e-4, (i, r)


def test_a_converted_model_trains(data, tmp_path):
    d, tok, tokens = data
    hf = export(train(d, tok, tokens, "floatlm", "start", "train.steps=80"), tmp_path / "hf",
                "--dtype", "f32")
    start = tmp_path / "start.h5"
    code, _, err = run_spectra("convert", hf, "-o", start)
    assert code == 0, err

    def losses(*extra):
        sets = SHAPE + ["train.steps=10", f"data.tokenizer={tok}", f"data.datasets=[{tokens}]",
                        "log.interval=1", *extra]
        code, out, err = run_spectra("train", ROOT / "recipes" / "tiny" / "floatlm-bpe.yaml",
                                     *[a for s in sets for a in ("--set", s)])
        assert code == 0, err
        return [float(line.split("loss ")[1].split()[0])
                for line in (out.decode() + err).splitlines() if line.startswith("step ")]

    fresh, started = losses(), losses(f"train.init={start}")
    assert started[0] < fresh[0] - 0.3, (started, fresh)  # it starts where the model left off
    assert started[-1] < started[0], started  # and trains on


def test_bad_checkpoints_fail_with_one_error_line(data, tmp_path):
    d, tok, tokens = data
    hf = export(train(d, tok, tokens, "floatlm", "bad"), tmp_path / "hf", "--dtype", "f32")

    def convert_error(directory):
        code, _, err = run_spectra("convert", directory, "-o", tmp_path / "x.h5")
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        return err

    def variant(name, edit_config=None, edit_weights=None):
        v = tmp_path / name
        shutil.copytree(hf, v)
        if edit_config:
            cfg = json.loads((v / "config.json").read_text())
            edit_config(cfg)
            (v / "config.json").write_text(json.dumps(cfg))
        if edit_weights:
            edit_weights(v / "model.safetensors")
        return v

    def truncate(p):
        p.write_bytes(p.read_bytes()[:-100])

    assert "truncated" in convert_error(variant("short", edit_weights=truncate))
    assert "not a safetensors" in convert_error(
        variant("foreign", edit_weights=lambda p: p.write_bytes(b"\x01" * 7)))
    assert "grouped key/value" in convert_error(
        variant("gqa", lambda c: c.update(num_key_value_heads=2)))
    assert "attention_bias" in convert_error(variant("bias", lambda c: c.update(attention_bias=True)))
    assert "tie_word_embeddings" in convert_error(
        variant("tied", lambda c: c.update(tie_word_embeddings=True)))
    assert "vocab_size" in convert_error(variant("vocab", lambda c: c.update(vocab_size=256)))
    assert not (tmp_path / "x.h5").exists()
