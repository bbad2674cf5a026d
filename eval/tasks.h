// Evaluation tasks read from local files, each turned into the log-likelihood requests that
// lm-evaluation-harness 0.4 builds for it (the same prompts, zero-shot):
//
//   perplexity        text (.txt/.gz: one document; .jsonl: "page" or "text" per line), rolling
//                     windows over each document (lm-eval's wikitext), or a token file (.h5)
//   lambada           {"text"}: context = all but the last word, target = " " + last word
//   multiple_choice   spectra's generic format {"context", "choices": [...], "gold": index}:
//                     per choice (context, " " + choice)
//   arc_easy, arc_challenge, hellaswag, piqa, sciq, winogrande, boolq, logiqa,
//   truthfulqa_mc1:   the JSONL records of the datasets lm-eval loads, with its prompts
//                     (docs/evaluation.md)
//   crows_pairs_english  {"sent_more", "sent_less"}: each sentence scored whole (empty context),
//                     likelihood_diff = |ll_more − ll_less|, pct_stereotype = ll_more > ll_less
//   triviaqa          mandarjoshi/trivia_qa rc.nocontext {"question", "answer": {"aliases"}}:
//                     "Question: " + question + "?\nAnswer:", greedy until "\n", "." or ",";
//                     exact_match against any alias (case and ASCII punctuation ignored)
//   mmlu_continuation  cais/mmlu's records {"question", "subject", "choices", "answer"} (any mix
//                     of its 57 subjects): "Question: ...\nAnswer:" after the subject's
//                     description, the choices as continuations; acc per subject, per lm-eval
//                     group (stem, other, social sciences, humanities) and over all documents
//
// Few-shot examples (eval/fewshot.h) go between a document's description and its prompt.
//
// A malformed file (missing field, wrong type, gold out of range) is a UserError naming the
// file and line.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace spectra {

// pair_difference: two requests per document (CrowS-Pairs' sentence pair), scored by how far
// apart their log-likelihoods are and which is the larger.
// generate_until: a greedy continuation, cut at the task's stop strings and compared with the
// document's answers (TriviaQA).
enum class TaskType : uint8_t {
  perplexity,
  loglikelihood,
  multiple_choice,
  pair_difference,
  generate_until
};

// One document as text requests.
struct TaskDoc {
  int64_t line = 0;  // where it came from (1-based)
  // multiple_choice: one (context, continuation) per choice; loglikelihood: one pair;
  // perplexity: one text in .first (scored whole, in rolling windows).
  std::vector<std::pair<std::string, std::string>> requests;
  int64_t gold = 0;
  std::vector<double> choice_chars;  // acc_norm's divisor per choice: its length in characters
  // As a few-shot example: its prompt, the target delimiter and its answer (lm-eval's
  // doc_to_text + target_delimiter + the gold choice).
  std::string example;
  std::string description;  // what every context starts with (MMLU's subject line) or ""
  std::string subject;      // MMLU's subject, "" elsewhere
  std::string record;       // the JSON record (compact dump): lm-eval tells documents apart by it
  std::vector<std::string> answers;  // generate_until: every accepted answer (TriviaQA's aliases)
};

struct Task {
  std::string name, path;
  TaskType type = TaskType::multiple_choice;
  bool acc_norm = true;  // lm-eval reports acc_norm (not for winogrande, boolq, truthfulqa_mc1)
  std::vector<std::string> until;  // generate_until: the stop strings
  std::vector<TaskDoc> docs;
};

// The task names load_task knows, for help texts and errors.
const std::vector<std::string>& task_names();

// MMLU's 57 subjects with lm-eval's group of each ("stem", "other", "social sciences",
// "humanities"), and those groups in the order lm-eval's mmlu_continuation lists them.
const std::vector<std::pair<std::string, std::string>>& mmlu_subjects();
const std::vector<std::string>& mmlu_groups();
TaskType task_type(const std::string& name);  // UserError for an unknown name

// Reads the task's documents (the first `limit` when > 0). Perplexity over a token file (.h5)
// is not read here (eval/evaluate.h reads its windows).
Task load_task(const std::string& name, const std::string& path, int64_t limit = 0);

// Python 3's str.isspace() (and the regex \s of str patterns).
bool python_space(char32_t c);
// Python's string helpers the prompts use, on UTF-8: strip()/lstrip() of Unicode whitespace,
// capitalize() (first character title case, the rest lower case), and hellaswag's preprocess.
std::string py_strip(const std::string& s, bool left = true, bool right = true);
std::string py_capitalize(const std::string& s);
std::string py_lower(const std::string& s);  // str.lower(): full case mapping, final sigma
std::string hellaswag_preprocess(const std::string& s);

}  // namespace spectra
