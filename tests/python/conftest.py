"""Shared helpers for the tests that compare spectra with independent implementations.

SPECTRA_BIN names the spectra binary (ctest sets it); the tests skip with a message when it or
the `tokenizers` package is missing."""
import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "data" / "corpus" / "kjv.txt.gz"


def spectra_bin():
    path = os.environ.get("SPECTRA_BIN", str(ROOT / "build" / "spectra"))
    if not Path(path).exists():
        pytest.skip(f"spectra binary not found at {path} (set SPECTRA_BIN)")
    return path


def run_spectra(*args, stdin=b""):
    """Runs `spectra ARGS` with bytes on stdin; returns (exit code, stdout bytes, stderr text)."""
    p = subprocess.run([spectra_bin(), *map(str, args)], input=stdin, capture_output=True, timeout=600)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def prepare_bpe_corpus(d, vocab=512):
    """A byte-level BPE tokenizer trained on the embedded corpus, and the corpus prepared with it
    (tokenizer.json and kjv.h5 in d)."""
    tok, data = d / "tokenizer.json", d / "kjv.h5"
    for args in (("tokenizer", "train", CORPUS, "--vocab-size", str(vocab), "-o", tok),
                 ("prepare", "--tokenizer", tok, "-o", data, CORPUS)):
        code, _, err = run_spectra(*args)
        assert code == 0, err
    return tok, data


def spectra_encode(tokenizer_json, text):
    code, out, err = run_spectra("tokenizer", "encode", "--tokenizer", tokenizer_json, stdin=text.encode("utf-8"))
    assert code == 0, err
    return [int(x) for x in out.split()]


def spectra_decode(tokenizer_json, ids, *extra):
    stdin = "\n".join(map(str, ids)).encode()
    code, out, err = run_spectra("tokenizer", "decode", "--tokenizer", tokenizer_json, *extra, stdin=stdin)
    assert code == 0, err
    return out.decode("utf-8")


def spectra_encode_many(tokenizer_json, texts):
    """Encodes many texts in one run (`encode --jsonl`): a list of id lists."""
    stdin = "".join(json.dumps(t) + "\n" for t in texts).encode()
    code, out, err = run_spectra("tokenizer", "encode", "--jsonl", "--tokenizer", tokenizer_json, stdin=stdin)
    assert code == 0, err
    lines = out.decode().split("\n")[:-1]
    assert len(lines) == len(texts)
    return [[int(x) for x in line.split()] for line in lines]


def spectra_decode_many(tokenizer_json, id_lists, *extra):
    """Decodes many id sequences in one run (`decode --jsonl`): a list of strings."""
    stdin = "".join(" ".join(map(str, ids)) + "\n" for ids in id_lists).encode()
    code, out, err = run_spectra("tokenizer", "decode", "--jsonl", "--tokenizer", tokenizer_json, *extra, stdin=stdin)
    assert code == 0, err
    return [json.loads(line) for line in out.decode().split("\n")[:-1]]


@pytest.fixture(scope="session")
def corpus_text():
    # newline="" semantics: the bytes as they are, decoded (the corpus is UTF-8).
    return gzip.open(CORPUS, "rb").read().decode("utf-8")
