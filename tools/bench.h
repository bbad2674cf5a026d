// The measurements of `spectra bench` that live in files of their own.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace spectra::tools {

// --data-parallel, under mpirun: gradient communication blocking vs overlapped with backward.
void bench_data_parallel(const std::string& recipe, const std::vector<std::string>& overrides,
                         int64_t steps, int64_t warmup, bool json);

// --attention: causal attention alone, forward and backward, per implementation
// (tools/bench_attention.cpp). 0 / empty: the default for the device (4 x 2048 x 16 x 128 on a
// GPU).
struct AttentionBenchArgs {
  bool enabled = false;
  std::vector<std::string> impls = {"reference", "flash", "cudnn"};
  std::vector<int64_t> seq_lens;
  int64_t batch = 0, heads = 0, head_dim = 0;
  std::string device = "auto";
};
void add_bench_attention_options(CLI::App* cmd, AttentionBenchArgs& a);
void bench_attention(const AttentionBenchArgs& a, int64_t steps, int64_t warmup, bool json);

// --generate N: prompt (prefill) and decode speed, latent and packed (tools/bench_generate.cpp).
struct GenerateBenchArgs {
  int64_t tokens = 0;  // new tokens; 0: not this benchmark
  int64_t prompt_tokens = 512, repeats = 1;
  bool packed_only = false;
  std::string save_model;
};
void add_bench_generate_options(CLI::App* cmd, GenerateBenchArgs& a);
void print_generate_header();
void bench_generate(const std::string& recipe, const std::vector<std::string>& overrides,
                    const GenerateBenchArgs& a, bool json);

}  // namespace spectra::tools
