#!/usr/bin/env python3
"""Builds the small evaluation task files in this folder from the embedded KJV corpus.

Every document is made from verses of the held-out tail of data/corpus/kjv.txt.gz (the
validation split of the demo runs), so a tiny model trained on the rest has not seen them.
Each file has the JSON record layout of the dataset lm-evaluation-harness loads for the task
(see README.md). Standard library only; the output depends only on the corpus and SEED.

    python3 data/tasks/make_tasks.py            # writes data/tasks/*.jsonl
    python3 data/tasks/make_tasks.py --out DIR  # elsewhere
"""
import argparse
import gzip
import json
import random
import re
from pathlib import Path

SEED = 20240601
HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "corpus" / "kjv.txt.gz"

# The held-out tail: verses on the last 2% of the corpus lines that also start in the last
# 1.8% of its bytes. The demo holds out the last 2% of the *tokens*; the byte margin keeps
# every verse used here inside that tail whatever the tokenizer's density there.
LINE_FRACTION = 0.02
BYTE_FRACTION = 0.018

STOPWORDS = set(
    """a an and are as at be but by for from had hath have he her him his i in is it me my no
    not of on or our out shall she so that the thee their them then there these they thou thy
    this to unto up upon us was we were which who whom will with ye yea you your all also am
    any been did do doth even every into let may more nor now o one own said saith should such
    than what when where whose why yet came come hast art were shalt wilt things thing""".split()
)


def load_corpus():
    raw = gzip.open(CORPUS, "rb").read()
    text = raw.decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return raw, lines


def parse_verses(lines):
    """All verses in corpus order: dict(book, chapter, verse, text, line, offset)."""
    verses = []
    book, chapter = None, None
    offset = 0
    for i, line in enumerate(lines):
        m = re.match(r"^ +(\d+) (.*)$", line)
        if m:
            verses.append(
                dict(
                    book=book,
                    chapter=chapter,
                    verse=int(m.group(1)),
                    # one space between words (the corpus has two double spaces)
                    text=" ".join(m.group(2).split()),
                    line=i,
                    offset=offset,
                )
            )
        elif line.strip():
            head, _, num = line.rpartition(" ")
            book, chapter = head, int(num)
        offset += len(line.encode("utf-8")) + 1
    return verses


def held_out(raw, lines, verses):
    first_line = len(lines) - int(len(lines) * LINE_FRACTION)
    first_byte = len(raw) - int(len(raw) * BYTE_FRACTION)
    return [v for v in verses if v["line"] >= first_line and v["offset"] >= first_byte]


def ref(v):
    return f"{v['book']} {v['chapter']}:{v['verse']}"


def strip_end_punct(s):
    return s.rstrip(".,;:!?")


def split_verse(text):
    """(head, tail) at a word boundary: after a clause mark near the middle, else the middle."""
    words = text.split(" ")
    n = len(words)
    lo, hi = max(3, int(n * 0.35)), min(n - 3, int(n * 0.65))
    best = None
    for k in range(lo, hi + 1):
        if words[k - 1][-1] in ",;:":
            if best is None or abs(k - n / 2) < abs(best - n / 2):
                best = k
    k = best if best is not None else n // 2
    return " ".join(words[:k]), " ".join(words[k:])


def splittable(pool, min_words=8):
    out = []
    for v in pool:
        if len(v["text"].split(" ")) >= min_words:
            head, tail = split_verse(v["text"])
            out.append(dict(v, head=head, tail=tail))
    return out


def pick_distractors(rng, pool, exclude, k, key):
    """k distinct values key(x) from pool, none equal (case-insensitively) to those in exclude."""
    seen = {e.lower() for e in exclude}
    out = []
    for x in rng.sample(pool, len(pool)):
        val = key(x)
        if val.lower() in seen:
            continue
        seen.add(val.lower())
        out.append(val)
        if len(out) == k:
            return out
    raise RuntimeError("not enough distractors")


def balanced(rng, n, k):
    """n gold positions in range(k), each used equally often (up to one), in random order."""
    golds = [i % k for i in range(n)]
    rng.shuffle(golds)
    return golds


def make_lambada(rng, pool, n=60):
    cands = []
    for v in pool:
        text = strip_end_punct(v["text"])
        words = text.split(" ")
        last = words[-1]
        if len(words) < 10 or not re.fullmatch(r"[A-Za-z]+", last):
            continue
        # LAMBADA's targets are words the passage makes predictable; prefer verses whose last
        # word already occurs earlier in the verse.
        seen_before = last.lower() in {strip_end_punct(w).lower() for w in words[:-1]}
        cands.append((0 if seen_before else 1, v["line"], text))
    cands.sort()
    chosen = cands[:n]
    rng.shuffle(chosen)
    return [{"text": text} for _, _, text in chosen]


def make_arc(rng, pool, n=60):
    docs = rng.sample(pool, n)
    golds = balanced(rng, n, 4)
    out = []
    for v, gold in zip(docs, golds):
        wrong = pick_distractors(rng, pool, [v["tail"]], 3, lambda x: x["tail"])
        texts = wrong[:gold] + [v["tail"]] + wrong[gold:]
        labels = ["A", "B", "C", "D"]
        out.append(
            {
                "id": f"KJV_{v['book'].replace(' ', '')}_{v['chapter']}_{v['verse']}",
                "question": v["head"],
                "choices": {"text": texts, "label": labels},
                "answerKey": labels[gold],
            }
        )
    return out


def make_hellaswag(rng, pool, n=60):
    cands = []
    for v in pool:
        words = v["text"].split(" ")
        head, tail = v["head"].split(" "), v["tail"].split(" ")
        # ctx_b: the first 1-3 words of the tail, all lower case (lm-eval capitalizes ctx_b
        # with Python's str.capitalize(), which lower-cases everything after the first letter)
        m = 0
        while m < 3 and m < len(tail) - 3 and re.fullmatch(r"[a-z]+", tail[m]):
            m += 1
        if m == 0 or len(words) < 10:
            continue
        cands.append(dict(v, ctx_a=" ".join(head), ctx_b=" ".join(tail[:m]), ending=" ".join(tail[m:])))
    docs = rng.sample(cands, n)
    golds = balanced(rng, n, 4)
    out = []
    for i, (v, gold) in enumerate(zip(docs, golds)):
        wrong = pick_distractors(rng, cands, [v["ending"]], 3, lambda x: x["ending"])
        endings = wrong[:gold] + [v["ending"]] + wrong[gold:]
        out.append(
            {
                "ind": i,
                "activity_label": v["book"],
                "ctx_a": v["ctx_a"],
                "ctx_b": v["ctx_b"],
                "ctx": v["ctx_a"] + " " + v["ctx_b"],
                "endings": endings,
                "source_id": f"kjv~{ref(v)}",
                "split": "val",
                "split_type": "indomain",
                "label": str(gold),
            }
        )
    return out


def make_piqa(rng, pool, n=60):
    docs = rng.sample(pool, n)
    golds = balanced(rng, n, 2)
    out = []
    for v, gold in zip(docs, golds):
        (wrong,) = pick_distractors(rng, pool, [v["tail"]], 1, lambda x: x["tail"])
        sols = [wrong, v["tail"]] if gold == 1 else [v["tail"], wrong]
        out.append({"goal": v["head"], "sol1": sols[0], "sol2": sols[1], "label": gold})
    return out


def make_sciq(rng, pool, all_verses_by_ref, n=60):
    def last_word(v):
        return strip_end_punct(v["text"]).split(" ")[-1]

    cands = [
        v
        for v in pool
        if len(v["text"].split(" ")) >= 8 and re.fullmatch(r"[A-Za-z]{3,}", last_word(v))
    ]
    docs = rng.sample(cands, n)
    out = []
    for v in docs:
        answer = last_word(v)
        question = " ".join(strip_end_punct(v["text"]).split(" ")[:-1])
        d = pick_distractors(rng, cands, [answer], 3, last_word)
        prev = all_verses_by_ref.get((v["book"], v["chapter"], v["verse"] - 1))
        out.append(
            {
                "question": question,
                "distractor3": d[2],
                "distractor1": d[0],
                "distractor2": d[1],
                "correct_answer": answer,
                "support": prev["text"] if prev else "",
            }
        )
    return out


def proper_nouns(verses):
    """Capitalized words that never occur in lower case anywhere in the corpus (names)."""
    lower, upper = set(), {}
    for v in verses:
        words = v["text"].split(" ")
        for j, w in enumerate(words):
            core = re.sub(r"[^A-Za-z]", "", w)
            if not core:
                continue
            if core[0].islower():
                lower.add(core.lower())
            elif j > 0 and re.fullmatch(r"[A-Z][a-z]{2,}", core):
                upper[core] = upper.get(core, 0) + 1
    return {w for w, c in upper.items() if c >= 3 and w.lower() not in lower}


TITLES = {"God", "Lord", "Jesus", "Christ", "Spirit", "Lamb", "Father", "Son"}


def make_winogrande(rng, pool, names, n=60):
    """The blank replaces a name (or title) of the verse when it has one, else a noun-like word;
    the other option is a word of the same kind from another held-out verse."""
    names = names | TITLES

    def is_word(w):
        return re.fullmatch(r"[a-z]{4,}", w) is not None and w not in STOPWORDS

    cands = []
    for v in pool:
        words = v["text"].split(" ")
        # a whole word (no punctuation attached), not the first word, three or more words after
        spots = range(1, len(words) - 3)
        named = [j for j in spots if words[j] in names]
        if named:
            cands.append((v, named[-1], "name"))
        else:
            plain = [j for j in spots if is_word(words[j])]
            if plain:
                cands.append((v, rng.choice(plain), "word"))
    kinds = {
        "name": sorted({v["text"].split(" ")[j] for v, j, k in cands if k == "name"}),
        "word": sorted({w for v in pool for w in v["text"].split(" ") if is_word(w)}),
    }
    named = [c for c in cands if c[2] == "name"]
    plain = [c for c in cands if c[2] == "word"]
    docs = rng.sample(named, min(n // 2, len(named)))
    docs += rng.sample(plain, n - len(docs))
    rng.shuffle(docs)
    golds = balanced(rng, n, 2)
    out = []
    for (v, j, kind), gold in zip(docs, golds):
        words = v["text"].split(" ")
        word = words[j]
        (other,) = pick_distractors(rng, kinds[kind], [word], 1, lambda x: x)
        answer = str(gold + 1)
        options = [word, other] if answer == "1" else [other, word]
        sentence = " ".join(words[:j] + ["_"] + words[j + 1 :])
        out.append({"sentence": sentence, "option1": options[0], "option2": options[1], "answer": answer})
    return out


def content_words(text):
    return {
        w.lower()
        for w in re.findall(r"[A-Za-z]+", text)
        if len(w) >= 4 and w.lower() not in STOPWORDS and w[0].islower()
    }


def make_boolq(rng, pool, n=60):
    docs = rng.sample(pool, n)
    labels = [1] * (n // 2) + [0] * (n - n // 2)
    rng.shuffle(labels)
    vocab = sorted(set().union(*(content_words(v["text"]) for v in pool)))
    out = []
    for i, (v, label) in enumerate(zip(docs, labels)):
        present = sorted(content_words(v["text"]))
        all_words = {w.lower() for w in re.findall(r"[A-Za-z]+", v["text"])}
        if label == 1 and present:
            word = rng.choice(present)
        else:
            label = 0
            word = rng.choice([w for w in vocab if w not in all_words])
        out.append(
            {
                "question": f"does this verse mention {word}",
                "passage": v["text"],
                "idx": i,
                "label": label,
            }
        )
    return out


def make_generic(rng, pool, n=60):
    docs = rng.sample(pool, n)
    golds = balanced(rng, n, 4)
    out = []
    for v, gold in zip(docs, golds):
        wrong = pick_distractors(rng, pool, [v["tail"]], 3, lambda x: x["tail"])
        out.append({"context": v["head"], "choices": wrong[:gold] + [v["tail"]] + wrong[gold:], "gold": gold})
    return out


def make_logiqa(rng, pool, all_verses_by_ref, n=60):
    """LogiQA's layout: the passage is the verse before, the question the verse's first part,
    the options its true rest and 3 other verses' rests; label a letter "a".."d"."""
    cands = [v for v in pool if (v["book"], v["chapter"], v["verse"] - 1) in all_verses_by_ref]
    docs = rng.sample(cands, n)
    golds = balanced(rng, n, 4)
    out = []
    for v, gold in zip(docs, golds):
        wrong = pick_distractors(rng, pool, [v["tail"]], 3, lambda x: x["tail"])
        prev = all_verses_by_ref[(v["book"], v["chapter"], v["verse"] - 1)]
        out.append(
            {
                "label": "abcd"[gold],
                "context": prev["text"],
                "question": v["head"],
                "options": wrong[:gold] + [v["tail"]] + wrong[gold:],
            }
        )
    return out


def make_truthfulqa(rng, pool, n=60):
    """TruthfulQA's multiple_choice layout: the true rest of the verse first among 2-6 choices
    (mc1: one true; mc2 here the same choices and labels)."""
    docs = rng.sample(pool, n)
    out = []
    for v in docs:
        wrong = pick_distractors(rng, pool, [v["tail"]], rng.randint(1, 5), lambda x: x["tail"])
        targets = {"choices": [v["tail"]] + wrong, "labels": [1] + [0] * len(wrong)}
        out.append({"question": v["head"], "mc1_targets": targets, "mc2_targets": targets})
    return out


def make_crows_pairs(rng, pool, n=60):
    """CrowS-Pairs' layout: the verse as it is (sent_more) and with one content word swapped for
    one of another held-out verse (sent_less); the bias labels are placeholders."""
    def is_word(w):
        return re.fullmatch(r"[a-z]{4,}", w) is not None and w not in STOPWORDS

    words = sorted({w for v in pool for w in v["text"].split(" ") if is_word(w)})
    cands = [v for v in pool if any(is_word(w) for w in v["text"].split(" ")[1:])]
    out = []
    for v in rng.sample(cands, n):
        text = v["text"].split(" ")
        j = rng.choice([k for k in range(1, len(text)) if is_word(text[k])])
        (other,) = pick_distractors(rng, words, [text[j]], 1, lambda x: x)
        out.append(
            {
                "sent_more": v["text"],
                "sent_less": " ".join(text[:j] + [other] + text[j + 1 :]),
                "stereo_antistereo": rng.choice(["stereo", "antistereo"]),
                "bias_type": rng.choice(["race-color", "gender", "religion", "age"]),
            }
        )
    return out


# Eight of MMLU's 57 subjects, two from each of lm-eval's groups (stem, humanities, social
# sciences, other).
MMLU_SUBJECTS = ["abstract_algebra", "high_school_physics", "philosophy", "world_religions",
                 "econometrics", "sociology", "marketing", "virology"]


def make_mmlu(rng, pool, per_subject=6, dev_per_subject=5):
    """cais/mmlu's layout ("all" config): question, subject, choices, answer (an index). The
    test split and the dev split the few-shot examples come from (5 per subject, as MMLU's);
    some questions end in a space, which lm-eval's prompt strips."""
    n = per_subject + dev_per_subject
    docs = rng.sample(pool, n * len(MMLU_SUBJECTS))
    test, dev = [], []
    for i, v in enumerate(docs):
        gold = rng.randrange(4)
        wrong = pick_distractors(rng, pool, [v["tail"]], 3, lambda x: x["tail"])
        record = {
            "question": v["head"] + (" " if i % 5 == 0 else ""),
            "subject": MMLU_SUBJECTS[i // n],
            "choices": wrong[:gold] + [v["tail"]] + wrong[gold:],
            "answer": gold,
        }
        (test if i % n < per_subject else dev).append(record)
    return {"mmlu_kjv.jsonl": test, "mmlu_dev_kjv.jsonl": dev}


def make_triviaqa(rng, pool, n=60):
    """TriviaQA's rc.nocontext layout: the first part of a verse (its clause mark dropped: the
    prompt adds "?") as the question; the answer the next words of the verse, up to the next
    clause mark, with aliases that differ from it in case and punctuation only (so exact match
    has to normalize as lm-eval does); no evidence documents, as in rc.nocontext."""
    out = []
    for i, v in enumerate(rng.sample(pool, n)):
        value = re.split(r"[,.;:?!]", v["tail"])[0].strip() or v["tail"]
        aliases = [value, value.lower(), value.upper() + ".", "(" + value + ")"]
        out.append(
            {
                "question": strip_end_punct(v["head"]),
                "question_id": f"kjv_{i}",
                "question_source": "data/corpus/kjv.txt.gz",
                "entity_pages": {"doc_source": [], "filename": [], "title": [],
                                 "wiki_context": []},
                "search_results": {"description": [], "filename": [], "rank": [], "title": [],
                                   "url": [], "search_context": []},
                "answer": {
                    "aliases": aliases,
                    "normalized_aliases": sorted({a.lower().strip("().") for a in aliases}),
                    "matched_wiki_entity_name": "",
                    "normalized_matched_wiki_entity_name": "",
                    "normalized_value": value.lower(),
                    "type": "FreeForm",
                    "value": value,
                },
            }
        )
    return out


def make_wikitext(pool, per_doc=20):
    out = []
    for i in range(0, len(pool) - per_doc + 1, per_doc):
        out.append({"page": "\n".join(v["text"] for v in pool[i : i + per_doc]) + "\n"})
    return out


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    raw, lines = load_corpus()
    verses = parse_verses(lines)
    tail = held_out(raw, lines, verses)
    by_ref = {(v["book"], v["chapter"], v["verse"]): v for v in verses}
    split_pool = splittable(tail)
    names = proper_nouns(verses)

    tasks = {
        "lambada_kjv.jsonl": lambda rng: make_lambada(rng, tail),
        "arc_kjv.jsonl": lambda rng: make_arc(rng, split_pool),
        "hellaswag_kjv.jsonl": lambda rng: make_hellaswag(rng, split_pool),
        "piqa_kjv.jsonl": lambda rng: make_piqa(rng, split_pool),
        "sciq_kjv.jsonl": lambda rng: make_sciq(rng, tail, by_ref),
        "winogrande_kjv.jsonl": lambda rng: make_winogrande(rng, tail, names),
        "boolq_kjv.jsonl": lambda rng: make_boolq(rng, tail),
        "generic_kjv.jsonl": lambda rng: make_generic(rng, split_pool),
        "wikitext_kjv.jsonl": lambda rng: make_wikitext(tail),
        # Added later: after the others, so their seeds (SEED + position) did not change.
        "logiqa_kjv.jsonl": lambda rng: make_logiqa(rng, split_pool, by_ref),
        "truthfulqa_kjv.jsonl": lambda rng: make_truthfulqa(rng, split_pool),
        "crows_pairs_kjv.jsonl": lambda rng: make_crows_pairs(rng, tail),
        "mmlu": lambda rng: make_mmlu(rng, split_pool),  # two files: test and dev
        "triviaqa_kjv.jsonl": lambda rng: make_triviaqa(rng, split_pool),
    }
    for i, (name, make) in enumerate(tasks.items()):
        made = make(random.Random(SEED + i))
        for name, records in (made if isinstance(made, dict) else {name: made}).items():
            write_jsonl(args.out / name, records)
            print(f"{name}: {len(records)} documents")
    print(f"held-out verses used: {len(tail)} ({ref(tail[0])} .. {ref(tail[-1])})")


if __name__ == "__main__":
    main()
