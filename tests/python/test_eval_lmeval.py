"""`spectra eval` against lm-evaluation-harness: a tiny BPE FloatLM and a tiny BPE TriLM are
trained here and exported to Hugging Face (f32); `lm_eval --model hf` loads each export as a
user would (transformers on the CPU) and runs lm-eval's own task definitions (its installed task
YAMLs, pointed at the same local JSONL files of data/tasks), and `spectra eval` runs the model
file on those files. The accuracies must be equal, the perplexities and every document's
log-likelihoods (per choice, per rolling document) equal within 1e-4 relative. MMLU runs as
lm-eval runs it: one task per subject (its own YAML) under lm-eval's group layout.

Few-shot contexts are compared with those lm-eval's own task objects build (the requests of
`Task.build_all_requests` after `--num_fewshot N` and its default sampler seed), for N = 0, 1, 5:
every context and continuation string identical. TriviaQA's generations (greedy, cut at its stop
strings) must be lm-eval's character for character, and its exact matches equal."""
import json
import math
import os
import subprocess
import sys

import pytest

from conftest import CORPUS, ROOT, run_spectra

lm_eval = pytest.importorskip("lm_eval", reason="comparing with lm-eval needs `lm_eval`")
for module in ("torch", "transformers", "accelerate"):  # what `lm_eval --model hf` runs on
    pytest.importorskip(module, reason=f"lm-evaluation-harness's hf model needs `{module}`")

TASK_DIR = ROOT / "data" / "tasks"
LMEVAL_TASKS = os.path.join(os.path.dirname(lm_eval.__file__), "tasks")
SETS = ["model.vocab_size=512", "model.vocab_rows=512", "model.hidden=64", "model.ffn=128",
        "model.heads=4", "model.layers=2", "train.steps=300", "train.micro_batch=8",
        "train.global_batch=8", "train.device=cpu", "eval.batches=1", "eval.sample_tokens=0",
        "schedule.warmup_steps=10"]
TASKS = [  # spectra task, data file, the lm-eval task YAML it stands for, the split it evaluates
    ("lambada", "lambada_kjv", "lambada/lambada_openai.yaml", "test"),
    ("arc_easy", "arc_kjv", "arc/arc_easy.yaml", "test"),
    ("arc_challenge", "arc_kjv", "arc/arc_challenge.yaml", "test"),
    ("hellaswag", "hellaswag_kjv", "hellaswag/hellaswag.yaml", "validation"),
    ("piqa", "piqa_kjv", "piqa/piqa.yaml", "validation"),
    ("sciq", "sciq_kjv", "sciq/sciq.yaml", "test"),
    ("winogrande", "winogrande_kjv", "winogrande/default.yaml", "validation"),
    ("boolq", "boolq_kjv", "super_glue/boolq/default.yaml", "validation"),
    ("logiqa", "logiqa_kjv", "logiqa/logiqa.yaml", "test"),
    ("truthfulqa_mc1", "truthfulqa_kjv", "truthfulqa/truthfulqa_mc1.yaml", "validation"),
    ("crows_pairs_english", "crows_pairs_kjv", "crows_pairs/crows_pairs_english.yaml", "test"),
    ("multiple_choice", "generic_kjv", None, "test"),  # spectra's own format, described below
    ("perplexity", "wikitext_kjv", "wikitext/wikitext.yaml", "test"),
    ("mmlu_continuation", "mmlu_kjv", None, "test"),  # a group of per-subject tasks, below
]
# The generative task runs on its own: lm-eval's HF backend asserts max_gen_toks (default 256) <
# the model's length (here 256), and pads a batch's prompts so that a shorter one may generate
# more; spectra does what lm-eval does at batch size 1 with --gen_kwargs max_gen_toks=32.
TRIVIAQA = ("triviaqa", "triviaqa_kjv", "triviaqa/default.yaml", "validation")
MAX_GEN_TOKS = 32
MMLU_DEV = TASK_DIR / "mmlu_dev_kjv.jsonl"
MMLU_GROUPS = ["stem", "other", "social sciences", "humanities"]
GENERIC = """output_type: multiple_choice
doc_to_text: context
doc_to_target: gold
doc_to_choice: choices
metric_list:
  - metric: acc
  - metric: acc_norm
"""
# wikitext (its process_results counts words and bytes of "page") without its detokenizer
NO_DETOKENIZER = "doc_to_target: page\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{kind: (model.h5, exported directory)} for a tiny BPE FloatLM and TriLM."""
    d = tmp_path_factory.mktemp("lmeval")
    tok, data = d / "tokenizer.json", d / "kjv.h5"
    code, _, err = run_spectra("tokenizer", "train", CORPUS, "--vocab-size", "512", "-o", tok)
    assert code == 0, err
    code, _, err = run_spectra("prepare", "--tokenizer", tok, "-o", data, CORPUS)
    assert code == 0, err
    out = {}
    for kind in ("floatlm", "trilm"):
        model, hf_dir = d / f"{kind}.h5", d / f"{kind}-hf"
        sets = SETS + [f"data.tokenizer={tok}", f"data.datasets=[{data}]", f"train.out={model}"]
        recipe = ROOT / "recipes" / "tiny" / f"{kind}-bpe.yaml"
        code, _, err = run_spectra("train", recipe, *[a for s in sets for a in ("--set", s)])
        assert code == 0, err
        code, _, err = run_spectra("export", model, "-o", hf_dir, "--dtype", "f32")
        assert code == 0, err
        out[kind] = (model, hf_dir)
    return out


def mmlu_subjects():
    """{subject: [its test records]} of the MMLU file, in file order."""
    out = {}
    for line in (TASK_DIR / "mmlu_kjv.jsonl").read_text().splitlines():
        out.setdefault(json.loads(line)["subject"], []).append(line)
    return out


def write_mmlu_yamls(folder):
    """lm-eval's mmlu_continuation for the subjects the file holds: each subject's own YAML on
    its records (test, and dev for the few-shot examples), grouped as lm-eval's _mmlu.yaml groups
    them (acc weighted by size). Returns {subject: its lm-eval group}."""
    groups = {}
    dev = [line for line in MMLU_DEV.read_text().splitlines()]
    for subject, lines in mmlu_subjects().items():
        subject_yaml = os.path.join(LMEVAL_TASKS, "mmlu", "continuation", f"mmlu_{subject}.yaml")
        tag = next(l for l in open(subject_yaml) if l.startswith('"tag"')).split('"')[3]
        groups[subject] = tag.replace("mmlu_", "").replace("_continuation", "").replace("_", " ")
        test_file, dev_file = folder / f"mmlu_{subject}.jsonl", folder / f"mmlu_{subject}_dev.jsonl"
        test_file.write_text("\n".join(lines) + "\n")
        dev_file.write_text("\n".join(l for l in dev if json.loads(l)["subject"] == subject) + "\n")
        (folder / f"mmlu_kjv_{subject}.yaml").write_text(
            f"include: {subject_yaml}\ntag: []\ntask: mmlu_kjv_{subject}\ndataset_path: json\n"
            f"dataset_name: null\ndataset_kwargs:\n  data_files:\n    test: {test_file}\n"
            f"    dev: {dev_file}\n")
    text = "group: mmlu_continuation_kjv\ntask:\n"
    for g in MMLU_GROUPS:
        text += f"  - group: kjv_{g.replace(' ', '_')}\n    task:\n"
        text += "".join(f"      - mmlu_kjv_{s}\n" for s in groups if groups[s] == g)
        text += "    aggregate_metric_list:\n      - metric: acc\n        weight_by_size: True\n"
    text += "aggregate_metric_list:\n  - metric: acc\n    weight_by_size: True\n"
    (folder / "mmlu_continuation_kjv.yaml").write_text(text)
    return groups


def write_task_yamls(folder):
    """One lm-eval task per TASKS row, named `<spectra task>_kjv`, reading the local JSONL."""
    write_mmlu_yamls(folder)
    for task, data, yaml, split in TASKS + [TRIVIAQA]:
        if task == "mmlu_continuation":
            continue
        splits = {s: (s if s == split else None) for s in ("training", "validation", "test")}
        text = "".join([
            f"include: {os.path.join(LMEVAL_TASKS, yaml)}\ntag: []\n" if yaml else GENERIC,
            NO_DETOKENIZER if task == "perplexity" else "",
            f"task: {task}_kjv\ndataset_path: json\ndataset_name: null\n",
            f"dataset_kwargs:\n  data_files:\n    {split}: {TASK_DIR / data}.jsonl\n",
            *(f"{s}_split: {v or 'null'}\n" for s, v in splits.items())])
        (folder / f"{task}_kjv.yaml").write_text(text)


def spectra_eval(model, out):
    args = [a for task, data, *_ in TASKS
            for a in ("--task", task, "--data", f"{TASK_DIR / data}.jsonl")]
    return spectra_eval_args(model, out, args)


def spectra_eval_args(model, out, args):
    code, _, err = run_spectra("eval", model, *args, "--batch", "8", "-o", out / "spectra.json",
                               "--samples", out / "spectra.jsonl", "--no-progress")
    assert code == 0, err
    results = json.loads((out / "spectra.json").read_text())["results"]
    results = {r["task"]: dict(r["metrics"],
                               **{f"{k}_stderr": v for k, v in r["stderr"].items() if v != "N/A"},
                               **{f"{s}/{k}": v for s, m in r.get("subtasks", {}).items()
                                  for k, v in m.items() if k != "docs"})
               for r in results}
    samples = {}
    for line in (out / "spectra.jsonl").read_text().splitlines():
        s = json.loads(line)
        samples.setdefault(s["task"], {})[s["doc"]] = s
    return results, samples


def lm_eval_cli(hf_dir, task_dir, out, tasks, *extra):
    """`lm_eval run` as a user runs it on the export; returns its output folder. One thread: this
    tiny model gains nothing from more, and busy cores make torch's spinning threads 30x
    slower."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false", HF_DATASETS_CACHE=str(out / "datasets"))
    model_args = f"pretrained={hf_dir},dtype=float32,logits_cache=False"
    args = ["--model", "hf", "--model_args", model_args, "--device", "cpu", "--tasks", tasks,
            "--include_path", task_dir, "--log_samples", "--output_path", out / "lm_eval", *extra]
    p = subprocess.run([sys.executable, "-m", "lm_eval", "run", *map(str, args)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    return out / "lm_eval"


def lm_metrics(result, filter_name="none"):
    """One task's values and standard errors (where lm-eval has one), without the filter name."""
    return {k.split(",")[0]: v for k, v in result.items()
            if k.endswith("," + filter_name) and v != "N/A"}


def lmeval_run(hf_dir, task_dir, out):
    """lm_eval on all tasks at once. logits_cache=False: lm-eval 0.4.13 groups the requests whose
    context + continuation[:-1] tokens coincide (Collator group_by="contexts"), runs the one with
    the longest continuation and scores the others' shorter continuations on the *first* positions
    of its continuation logits rather than the last (HFLM._loglikelihood_tokens gathers from
    logits[:, :len(cont)]), so a request whose text also ends another task's request gets a wrong
    log-likelihood (here: winogrande and multiple_choice share verses)."""
    tasks = ",".join(f"{t[0]}_kjv" for t in TASKS)  # mmlu_continuation_kjv: the group
    lm_eval_cli(hf_dir, task_dir, out, tasks, "--batch_size", "8")
    (results_file,) = (out / "lm_eval").glob("*/results_*.json")
    lm = json.loads(results_file.read_text())["results"]

    def metrics(name):
        return lm_metrics(lm[name])

    results = {t: metrics(f"{t}_kjv") for t, *_ in TASKS}
    samples = {}
    for t, *_ in TASKS:
        if t == "mmlu_continuation":
            continue
        (f,) = (out / "lm_eval").glob(f"*/samples_{t}_kjv_*.jsonl")
        samples[t] = {s["doc_id"]: s for s in map(json.loads, f.read_text().splitlines())}
    # MMLU: the group's acc, each lm-eval group's as acc_<group>, each subject's as subject/acc;
    # the documents numbered through the whole file as spectra numbers them (subject by subject).
    mmlu = {k: results["mmlu_continuation"][k] for k in ("acc", "acc_stderr")}
    for g in (g.replace(" ", "_") for g in MMLU_GROUPS):  # a group in a group: parent::child
        group = metrics(f"mmlu_continuation_kjv::kjv_{g}")
        mmlu[f"acc_{g}"], mmlu[f"acc_{g}_stderr"] = group["acc"], group["acc_stderr"]
    samples["mmlu_continuation"] = {}
    for subject, lines in mmlu_subjects().items():
        mmlu.update({f"{subject}/{k}": v for k, v in metrics(f"mmlu_kjv_{subject}").items()})
        (f,) = (out / "lm_eval").glob(f"*/samples_mmlu_kjv_{subject}_*.jsonl")
        first = len(samples["mmlu_continuation"])
        for s in map(json.loads, f.read_text().splitlines()):
            samples["mmlu_continuation"][first + s["doc_id"]] = s
    results["mmlu_continuation"] = mmlu
    return results, samples


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-4)


def doc_values(task, spectra_doc, lm_doc):
    """[(spectra, lm-eval)] log-likelihoods of one document, and (greedy, greedy) for lambada."""
    resps = lm_doc["filtered_resps"]
    if task == "perplexity":
        return [(spectra_doc["loglikelihood"], float(resps[0]))], None
    if task == "lambada":
        return ([(spectra_doc["loglikelihood"], float(resps[0][0]))],
                (spectra_doc["greedy"], resps[0][1] == "True"))
    assert len(spectra_doc["loglikelihoods"]) == len(resps)
    return list(zip(spectra_doc["loglikelihoods"], (float(r[0]) for r in resps))), None


@pytest.fixture(scope="module")
def lm_eval_results(models, tmp_path_factory):
    """{kind: (results, samples)} of lm-eval on each export: the TASKS rows in one run at batch
    size 8, triviaqa in another at batch size 1 (see TRIVIAQA)."""
    out = {}
    for kind, (_, hf_dir) in models.items():
        d = tmp_path_factory.mktemp(f"lm_eval_{kind}")
        task_dir = d / "tasks"
        task_dir.mkdir()
        write_task_yamls(task_dir)
        results, samples = lmeval_run(hf_dir, task_dir, d)
        trivia = lm_eval_cli(hf_dir, task_dir, d / "triviaqa", "triviaqa_kjv", "--batch_size",
                             "1", "--gen_kwargs", f"max_gen_toks={MAX_GEN_TOKS}")
        (f,) = trivia.glob("*/results_*.json")
        results["triviaqa"] = lm_metrics(json.loads(f.read_text())["results"]["triviaqa_kjv"],
                                         "remove_whitespace")
        (f,) = trivia.glob("*/samples_triviaqa_kjv_*.jsonl")
        samples["triviaqa"] = {s["doc_id"]: s for s in map(json.loads, f.read_text().splitlines())}
        out[kind] = results, samples
    return out


def equal_metric(metric, got, want):
    """Accuracies exactly (counts over the same documents), the rest within 1e-4."""
    exact = metric.split("/")[-1].startswith("acc") and not metric.endswith("_stderr")
    return got == want if exact else close(got, want)


@pytest.mark.parametrize("kind", ["floatlm", "trilm"])
def test_spectra_eval_reports_what_lm_eval_reports(models, lm_eval_results, kind, tmp_path):
    model, _ = models[kind]
    ours, our_docs = spectra_eval(model, tmp_path)
    theirs, their_docs = lm_eval_results[kind]
    print(f"\n{kind}: {'task':16} {'metric':16} {'spectra':>16} {'lm-eval':>16}")
    for task, *_ in TASKS:
        for metric in sorted(ours[task]):
            print(f"{kind}: {task:16} {metric:16} {ours[task][metric]:16.8g} "
                  f"{theirs[task].get(metric, float('nan')):16.8g}")
    bad = []
    for task, *_ in TASKS:
        assert theirs[task] and set(theirs[task]) <= set(ours[task]), (task, theirs[task])
        for metric, want in theirs[task].items():
            got = ours[task][metric]
            if not equal_metric(metric, got, want):
                bad.append(f"{task} {metric}: spectra {got!r}, lm-eval {want!r}")
        assert sorted(our_docs[task]) == sorted(their_docs[task]), task
        for doc, lm_doc in their_docs[task].items():
            pairs, greedy = doc_values(task, our_docs[task][doc], lm_doc)
            if not all(close(a, b) for a, b in pairs) or (greedy and greedy[0] != greedy[1]):
                request = str(lm_doc["arguments"]["gen_args_0"])[:160]
                bad.append(f"{task} doc {doc} ({request}): spectra {[a for a, _ in pairs]} "
                           f"{greedy}, lm-eval {[b for _, b in pairs]}")
    assert not bad, f"{len(bad)} disagreements:\n" + "\n".join(bad[:20])


def test_the_documents_exercise_scoring(models, tmp_path):
    """The FloatLM tells the choices apart, and wikitext pages take several rolling windows."""
    model, hf_dir = models["floatlm"]
    _, docs = spectra_eval(model, tmp_path)
    context = json.loads((hf_dir / "config.json").read_text())["max_position_embeddings"]
    for task, *_ in TASKS:
        if "loglikelihoods" in docs[task][0]:
            assert all(len(set(d["loglikelihoods"])) > 1 for d in docs[task].values()), task
    assert len({d["loglikelihood"] for d in docs["lambada"].values()}) == len(docs["lambada"])
    assert min(d["tokens"] for d in docs["perplexity"].values()) > 2 * context


FEWSHOT_SCRIPT = """
import json, sys
from lm_eval.tasks import TaskManager, get_task_dict
folder, shots, names = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
out = {}
for name, task in get_task_dict(names, TaskManager(include_path=folder)).items():
    if task.get_config("num_fewshot") != 0:  # as lm-eval's evaluator: a configured 0 stays 0
        task.set_config(key="num_fewshot", value=shots)
    task.set_fewshot_seed(seed=1234)  # lm-eval's default --seed 0,1234,1234,1234
    task.build_all_requests(rank=0, world_size=1)
    docs = {}
    for inst in sorted(task.instances, key=lambda i: (i.doc_id, i.idx)):
        docs.setdefault(inst.doc_id, []).append(list(inst.arguments))
    out[name] = docs
print(json.dumps(out))
"""


def write_fewshot_yamls(folder):
    """Every task with lm-eval's own split configuration, each split it may name reading the
    task's file, so its examples come from where that configuration takes them (the training
    split, or the evaluated one where the dataset has none; MMLU: the subject's dev split)."""
    write_mmlu_yamls(folder)
    for task, data, yaml, _ in TASKS + [TRIVIAQA]:
        if task in ("mmlu_continuation", "perplexity"):
            continue
        path = f"{TASK_DIR / data}.jsonl"
        (folder / f"{task}_kjv.yaml").write_text("".join([
            f"include: {os.path.join(LMEVAL_TASKS, yaml)}\ntag: []\n" if yaml
            else GENERIC + "test_split: test\n",
            f"task: {task}_kjv\ndataset_path: json\ndataset_name: null\n",
            "dataset_kwargs:\n  data_files:\n",
            *(f"    {split}: {path}\n" for split in ("train", "validation", "test"))]))


@pytest.mark.parametrize("shots", [0, 1, 5])
def test_fewshot_contexts_are_lm_evals(models, shots, tmp_path):
    model, _ = models["floatlm"]
    task_dir = tmp_path / "tasks"
    task_dir.mkdir()
    write_fewshot_yamls(task_dir)
    tasks = [(t, f"{TASK_DIR / d}.jsonl") for t, d, *_ in TASKS + [TRIVIAQA] if t != "perplexity"]
    args = ["--num-fewshot", str(shots), "--max-gen-toks", "1"]
    for task, path in tasks:
        pool = MMLU_DEV if task == "mmlu_continuation" else path
        args += ["--task", task, "--data", path, "--fewshot-data", pool]
    _, ours = spectra_eval_args(model, tmp_path, args)

    subjects = mmlu_subjects()
    names = [f"{t}_kjv" for t, _ in tasks if t != "mmlu_continuation"]
    names += [f"mmlu_kjv_{s}" for s in subjects]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HF_DATASETS_CACHE=str(tmp_path / "datasets"))
    p = subprocess.run([sys.executable, "-c", FEWSHOT_SCRIPT, str(task_dir), str(shots),
                        ",".join(names)], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-5000:]
    theirs = json.loads(p.stdout.splitlines()[-1])
    for subject, lines in subjects.items():  # numbered through the file, as spectra numbers them
        first = len(theirs.setdefault("mmlu_continuation_kjv", {}))
        for doc, requests in theirs.pop(f"mmlu_kjv_{subject}").items():
            theirs["mmlu_continuation_kjv"][str(first + int(doc))] = requests

    compared, bad = 0, []
    for task, _ in tasks:
        lm = theirs[f"{task}_kjv"]
        assert sorted(map(int, lm)) == sorted(ours[task]), task
        for doc, requests in lm.items():
            compared += 1
            if task == "triviaqa":  # (context, generation kwargs): the contexts are compared
                requests = [[context, ""] for context, _ in requests]
            if ours[task][int(doc)]["arguments"] != requests:
                bad.append(f"{task} doc {doc}:\n  spectra {ours[task][int(doc)]['arguments']!r}"
                           f"\n  lm-eval {requests!r}")
    print(f"{shots}-shot: {compared} documents' contexts compared")
    assert not bad, f"{len(bad)} of {compared} documents differ:\n" + "\n".join(bad[:5])


@pytest.mark.parametrize("kind", ["floatlm", "trilm"])
def test_triviaqa_generates_what_lm_eval_generates(models, lm_eval_results, kind, tmp_path):
    model, _ = models[kind]
    path = f"{TASK_DIR / TRIVIAQA[1]}.jsonl"
    ours, our_docs = spectra_eval_args(model, tmp_path, [
        "--task", "triviaqa", "--data", path, "--max-gen-toks", str(MAX_GEN_TOKS)])
    results, samples = lm_eval_results[kind]
    theirs, their_docs = results["triviaqa"], samples["triviaqa"]
    assert sorted(their_docs) == sorted(our_docs["triviaqa"])
    bad = []
    for doc, lm in their_docs.items():
        mine = our_docs["triviaqa"][doc]
        got = (mine["generation"], mine["answer"], mine["exact_match"])
        want = (lm["resps"][0][0], lm["filtered_resps"][0], lm["exact_match"])
        if got != want:
            bad.append(f"doc {doc}: spectra {got!r}, lm-eval {want!r}")
    generations = [d["generation"] for d in our_docs["triviaqa"].values()]
    print(f"{kind}: exact_match spectra {ours['triviaqa']['exact_match']}, lm-eval "
          f"{theirs['exact_match']}; {len(set(generations))} distinct generations, e.g. "
          f"{generations[:3]!r}")
    assert not bad, f"{len(bad)} of {len(their_docs)} differ:\n" + "\n".join(bad[:10])
    for metric in ("exact_match", "exact_match_stderr"):
        assert equal_metric(metric, ours["triviaqa"][metric], theirs[metric]), metric
    # This small model mostly answers " and the LORD" or stops at once (a stop string first): the
    # comparison covers both; exact_match's normalization is checked on its own in C++
    # (tests/test_eval.cpp, Eval.ExactMatchNormalizesAsLmEval).
    assert any(generations) and not all(generations)


# The suite's folder as docs/evaluation.md lays it out: TASK.jsonl per task of the paper's table.
SUITE_FILES = {"arc_easy": "arc", "arc_challenge": "arc", "hellaswag": "hellaswag",
               "boolq": "boolq", "piqa": "piqa", "winogrande": "winogrande",
               "lambada_openai": "lambada", "sciq": "sciq", "logiqa": "logiqa",
               "mmlu_continuation": "mmlu", "triviaqa": "triviaqa",
               "crows_pairs_english": "crows_pairs", "truthfulqa_mc1": "truthfulqa"}


@pytest.mark.parametrize("kind", ["floatlm", "trilm"])
def test_the_spectra_suite_is_lm_evals_table(models, lm_eval_results, kind, tmp_path):
    """`spectra eval --suite spectra` on a folder of the 13 tasks' files: every value and
    standard error of its table (JSON and markdown) is lm-eval's, task by task."""
    model, _ = models[kind]
    suite = tmp_path / "suite"
    suite.mkdir()
    for task, data in SUITE_FILES.items():
        (suite / f"{task}.jsonl").symlink_to(TASK_DIR / f"{data}_kjv.jsonl")
    out_json, out_md = tmp_path / "suite.json", tmp_path / "suite.md"
    code, stdout, err = run_spectra("eval", model, "--suite", "spectra", "--data-dir", suite,
                                    "--max-gen-toks", MAX_GEN_TOKS, "--no-progress", "-o",
                                    out_json, "--markdown", out_md)
    assert code == 0, err
    results = json.loads(out_json.read_text())["results"]
    assert [r["task"] for r in results] == list(SUITE_FILES)
    theirs, _ = lm_eval_results[kind]
    name = {"lambada_openai": "lambada"}  # the TASKS row lm-eval ran it under
    table = out_md.read_text()
    rows, bad = 0, []
    for r in results:
        lm = theirs[name.get(r["task"], r["task"])]
        for metric, value in r["metrics"].items():
            stderr = r["stderr"][metric]
            for key, got in ((metric, value), (f"{metric}_stderr", stderr)):
                if key in lm and not equal_metric(key, got, lm[key]):
                    bad.append(f"{r['task']} {key}: spectra {got!r}, lm-eval {lm[key]!r}")
            assert metric in lm, (r["task"], metric)
            assert (stderr == "N/A") == (f"{metric}_stderr" not in lm), (r["task"], metric)
            text = f"{stderr:.4f}" if stderr != "N/A" else "N/A"
            assert f"| {r['task']} | 0 | {metric} | {value:.4f} |" in table, (r["task"], metric)
            assert text in table
            rows += 1
    print(f"{kind}: {rows} rows of the suite's table equal lm-eval's")
    assert not bad, "\n".join(bad)
    assert rows == table.count("\n") - 2 and rows >= 25
