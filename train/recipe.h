// Recipes: YAML files with the sections model, data, optimizer, schedule, parallel, train,
// checkpoint, log, eval (docs/recipes.md lists every key). A recipe may name a `base:` recipe
// (path relative to itself) whose keys it overrides, so the suite's shared settings live once.
// `--set a.b=c` overrides any key after loading. Every key is validated: an unknown key, a wrong
// type or an impossible combination throws a UserError naming the file, line and key.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dist/data_parallel.h"
#include "layers/model_config.h"

namespace spectra {

// Learning rate over training: linear warmup to the first stage's peak, then stages, each from
// its start fraction of train.steps to the next one's, decaying from `peak` to `floor`·peak.
struct LrStage {
  double start = 0;  // fraction of training in [0, 1)
  double peak = 1e-3;
  std::string shape = "cosine";  // cosine | linear | constant
  double floor = 0.1;            // end value as a fraction of peak
};
// Weight decay: piecewise constant, each value from its start fraction on.
struct WdStage {
  double start = 0;
  double value = 0.1;
};

// A task evaluated during training (eval/tasks.h): its name, its file, and how many of its
// documents (0: all).
struct EvalTask {
  std::string task;
  std::string data;
  int64_t limit = 0;
  int64_t num_fewshot = 0;   // lm-eval's few-shot examples (eval/fewshot.h)
  std::string fewshot_data;  // where they come from ("": the task's own file, where lm-eval's is)
};

struct Recipe {
  std::string path;  // the file it was loaded from
  std::string text;  // the resolved recipe (base merged, overrides applied) as YAML
  std::string size;  // model.size: a free-form label ("1.1b") for messages and plans
  std::map<std::string, std::string> locations;  // key -> "file:line" where it was set

  // "file:line" of a key for messages, or the recipe's path when the key took its default.
  std::string where(const std::string& key) const {
    auto it = locations.find(key);
    return it == locations.end() ? path : it->second;
  }
  ModelConfig model;

  struct Data {
    std::string text;  // a text file (.txt or .gz) read as bytes (byte-level tokens), or:
    std::vector<std::string> datasets;  // token files from `spectra prepare` (file, shard stem
                                        // or directory each)
    std::vector<double> weights;        // mixture weight per dataset ({}: equal)
    std::string tokenizer;       // the HF tokenizer.json the datasets were prepared with: checked
                                 // against them, and used to decode samples
    double val_fraction = 0.01;  // held-out tail of the data for validation
  } data;

  struct Optimizer {
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
    double grad_clip = 1.0;  // 0 disables clipping
  } optimizer;

  struct Schedule {
    int64_t warmup_steps = 0;
    std::vector<LrStage> lr;
    std::vector<WdStage> weight_decay;
  } schedule;

  struct Parallel {
    int tp = 1;
    int dp = 0;                                 // 0: auto (world size / tp)
    int zero = 0;                               // ZeRO stage 0 to 3 (dist/data_parallel.h)
    double bucket_mb = dist::kDefaultBucketMb;  // gradients per collective (f32 MiB, at least)
    bool overlap = true;                        // reduce buckets during the backward pass
    // A collective waiting longer ends the job (dist/watchdog.h); 0: never. 10 minutes: the
    // longest wait of a healthy job is a synchronous checkpoint write, about 100 s for TriLM
    // 3.9B's 48 GB of state at the 0.5 GB/s measured here (docs/performance.md).
    double timeout_s = 600;
  } parallel;

  struct Train {
    int64_t steps = 100;
    int64_t seq_len = 128;
    int64_t micro_batch = 8;        // sequences per rank per forward/backward
    int64_t global_batch = 8;       // sequences per optimizer step (all ranks, all micro-batches)
    std::string device = "auto";    // auto | cpu | cuda
    std::string precision = "f32";  // f32 | bf16 | fp16
    uint64_t seed = 1234;
    std::string out;                 // where the trained model is written (HDF5); "" = none
    std::string init;                // a model file whose weights the run starts from; "" = random
    std::string recompute = "none";  // none | full (each block's forward again in backward)
    // Capture a micro-batch's forward and backward in a CUDA graph and replay it
    // (train/graphed_step.h): one process on a GPU, bf16 or f32.
    bool cuda_graph = false;
  } train;

  struct Checkpoint {
    std::string dir;  // "" = no checkpoints
    int64_t interval = 0;
    int keep = 3;
    bool async = true;  // written by a background thread while training goes on
  } checkpoint;

  struct Log {
    int64_t interval = 10;
    std::string metrics;     // JSONL path; "" = none
    double peak_tflops = 0;  // one device's peak for MFU; 0 = kernels/peak_flops.h's
  } log;

  struct Eval {
    int64_t interval = 0;  // steps between validation passes; 0 = only at the end
    int64_t batches = 8;   // validation micro-batches
    std::string prompt = "";
    int64_t sample_tokens = 200;
    std::vector<EvalTask> tasks;  // run with the validation loss, into the metrics
  } eval;

  // QuantLM recipes (recipes/quantlm/, docs/quantlm.md): a FloatLM recipe as base plus this
  // section; `spectra quantize RECIPE` quantizes `model` (default: train.out, the model the base
  // trains) into `out`, calibrating on `calibration` (default: the first of data.datasets).
  // Recipe::text lists the section only when the recipe has one.
  struct Quantize {
    bool present = false;
    std::string model, out, calibration;
    std::string method = "gptq";    // gptq | rtn
    int64_t bits = 4;               // 3 | 4 | 6 | 8 (supported_bits)
    int64_t group_size = 128;       // input columns per scale; 0: one per row
    std::string scheme = "sym";     // sym | asym
    std::string order = "natural";  // natural | activation (GPTQ's act-order)
    double damp = 0.01;
    int64_t samples = 128;
    int64_t seq_len = 0;  // 0: the model's context
    uint64_t seed = 0;
    static bool supported_bits(int64_t b) { return b == 3 || b == 4 || b == 6 || b == 8; }
  } quantize;
};

// Loads, merges `base:` chains, applies overrides ("a.b=c"), validates. Throws UserError.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {});
// Same, from YAML text (the name appears in messages); relative paths resolve against `dir`.
Recipe parse_recipe(const std::string& yaml_text, const std::string& name,
                    const std::vector<std::string>& overrides = {}, const std::string& dir = ".");

// The schedule's values at a step (0-based) of a run of total_steps.
double lr_at(const Recipe::Schedule& s, int64_t step, int64_t total_steps);
double weight_decay_at(const Recipe::Schedule& s, int64_t step, int64_t total_steps);

}  // namespace spectra
