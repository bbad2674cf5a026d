// The bad-argument table of the kernels' public entry points, shared by tests/test_kernel_args.cpp
// (tensors on the CPU) and tests/cuda/test_kernel_args_cuda.cpp (tensors on cuda:0): each case
// calls one op with one argument breaking the op's contract (kernels/checks.h) and names the
// exact error. The checks run before a backend is chosen, so both devices give the same text.
// Every other argument of a case is valid, so the error is the one the case is about.
#pragma once
#include <cctype>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "kernels/ternary.h"

namespace spectra::kernel_args {

// Zero tensors on the device under test.
struct Make {
  Device device;
  Tensor operator()(Shape s, DType t = DType::f32) const { return Tensor::zeros(s, t, device); }
};

// An lvalue for an output argument built in the call (lives to the end of the full expression).
inline Tensor& out(Tensor&& t) { return t; }

enum class Rule { shape, dtype, value };
inline const char* rule_name(Rule r) {
  return r == Rule::shape ? "shape" : r == Rule::dtype ? "dtype" : "value";
}

struct Case {
  std::string op;   // the public entry point called
  std::string arg;  // the argument that breaks the contract
  Rule rule;
  std::function<void(const Make&)> call;
  std::string error;  // the exact message
};

// A gtest parameter name per case: "op_arg_rule" with anything but letters and digits as '_',
// and "_2", "_3" after repeats.
inline std::vector<std::string> case_names(const std::vector<Case>& cs) {
  std::vector<std::string> names;
  std::map<std::string, int> seen;
  for (const Case& c : cs) {
    std::string s = c.op + "_" + c.arg + "_" + rule_name(c.rule);
    for (char& ch : s)
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    const int n = ++seen[s];
    names.push_back(n == 1 ? s : s + "_" + std::to_string(n));
  }
  return names;
}

// Every op of kernels/dispatch.cpp, and whether it has a shape rule (scale and sum_squares take
// any shape) and a dtype rule (all of them).
struct OpRules {
  const char* op;
  bool shape, dtype;
};
inline const std::vector<OpRules>& all_ops() {
  static const std::vector<OpRules> ops = {
      {"matmul", true, true},
      {"ternary_quantize", true, true},
      {"ternary_quantize_groups", true, true},
      {"rmsnorm_forward", true, true},
      {"rmsnorm_backward", true, true},
      {"add_rmsnorm_forward", true, true},
      {"add_rmsnorm_backward", true, true},
      {"swiglu_forward", true, true},
      {"swiglu_backward", true, true},
      {"rope_forward", true, true},
      {"rope_backward", true, true},
      {"attention_forward", true, true},
      {"attention_backward", true, true},
      {"embedding_forward", true, true},
      {"embedding_backward", true, true},
      {"cross_entropy_forward", true, true},
      {"cross_entropy_backward", true, true},
      {"cross_entropy_mean", true, true},
      {"cross_entropy_mean_backward", true, true},
      {"adamw_step", true, true},
      {"add", true, true},
      {"axpy", true, true},
      {"scale", false, true},
      {"cast", true, true},
      {"sum_squares", false, true},
  };
  return ops;
}

inline std::vector<Case> cases() {
  namespace k = spectra::kernels;
  using R = Rule;
  const DType f64 = DType::f64, bf16 = DType::bf16, f16 = DType::f16, i32 = DType::i32,
              i64 = DType::i64;
  // AdamW entries: param, grad, m, v (f32 [n]) and an optional compute copy.
  auto adamw = [](const Make& t, int64_t n) {
    return k::AdamWTensor{t({n}), t({n}), t({n}), t({n}), {}, true};
  };
  const k::AdamWHyper hyper;
  return {
      // ---- matmul: op(a) [M, K] · op(b) [K, N] -> c [M, N]; a, b one float dtype; c a's or acc.
      {"matmul", "c", R::shape,
       [](const Make& t) {
         k::matmul(t({4, 8}), false, t({5, 8}), true, out(t({4, 6})), 1.f, 0.f, nullptr);
       },
       "matmul: op(a) [4, 8] x op(b) [8, 5] does not give c f32[4, 6] (a f32[4, 8], b f32[5, 8]ᵀ)"},
      {"matmul", "a", R::shape,
       [](const Make& t) {
         k::matmul(t({}), false, t({1, 5}), false, out(t({1, 5})), 1.f, 0.f, nullptr);
       },
       "matmul: a is f32[], expected at least one dimension"},
      {"matmul", "a", R::dtype,
       [=](const Make& t) {
         k::matmul(t({4, 8}, i32), false, t({8, 5}, i32), false, out(t({4, 5}, i32)), 1.f, 0.f,
                   nullptr);
       },
       "matmul: a is i32[4, 8], expected a float dtype"},
      {"matmul", "b", R::dtype,
       [=](const Make& t) {
         k::matmul(t({4, 8}), false, t({8, 5}, f64), false, out(t({4, 5})), 1.f, 0.f, nullptr);
       },
       "matmul: a f32[4, 8] and b f64[8, 5] disagree: b must be f32"},
      {"matmul", "c", R::dtype,
       [=](const Make& t) {
         k::matmul(t({4, 8}, bf16), false, t({8, 5}, bf16), false, out(t({4, 5}, f16)), 1.f, 0.f,
                   nullptr);
       },
       "matmul: a bf16[4, 8] and c f16[4, 5] disagree: c must be bf16 or f32"},
      {"matmul", "scale", R::shape,
       [](const Make& t) {
         Tensor s = t({2});
         k::matmul(t({4, 8}), false, t({8, 5}), false, out(t({4, 5})), 1.f, 0.f, &s);
       },
       "matmul: scale is f32[2], expected 1 f32 element"},
      {"matmul", "scale", R::dtype,
       [=](const Make& t) {
         Tensor s = t({1}, f64);
         k::matmul(t({4, 8}), false, t({8, 5}), false, out(t({4, 5})), 1.f, 0.f, &s);
       },
       "matmul: scale is f64[1], expected 1 f32 element"},

      // ---- ternary_quantize: w (float), t like w in any float dtype, gamma one f32.
      {"ternary_quantize", "t", R::shape,
       [](const Make& t) {
         k::ternary_quantize(t({4, 8}), 1e-5f, out(t({4, 7})), out(t({1})));
       },
       "ternary_quantize: w f32[4, 8] and t f32[4, 7] disagree"},
      {"ternary_quantize", "w", R::dtype,
       [=](const Make& t) {
         k::ternary_quantize(t({4, 8}, i32), 1e-5f, out(t({4, 8})), out(t({1})));
       },
       "ternary_quantize: w is i32[4, 8], expected a float dtype"},
      {"ternary_quantize", "gamma", R::dtype,
       [=](const Make& t) {
         k::ternary_quantize(t({4, 8}), 1e-5f, out(t({4, 8}, bf16)), out(t({1}, f64)));
       },
       "ternary_quantize: gamma is f64[1], expected 1 f32 element"},
      {"ternary_quantize", "gamma", R::shape,
       [](const Make& t) {
         k::ternary_quantize(t({4, 8}), 1e-5f, out(t({4, 8})), out(t({2})));
       },
       "ternary_quantize: gamma is f32[2], expected 1 f32 element"},

      // ---- ternary_quantize_groups: w [rows, cols], groups dividing w along axis 0 or 1.
      {"ternary_quantize_groups", "w", R::shape,
       [](const Make& t) {
         k::ternary_quantize_groups(t({12}), 1e-5f, 2, 0, out(t({12})), out(t({2})));
       },
       "ternary_quantize_groups: w is f32[12], expected [rows, cols]"},
      {"ternary_quantize_groups", "effective", R::shape,
       [](const Make& t) {
         k::ternary_quantize_groups(t({6, 12}), 1e-5f, 2, 0, out(t({12, 6})), out(t({2})));
       },
       "ternary_quantize_groups: w f32[6, 12] and effective f32[12, 6] disagree"},
      {"ternary_quantize_groups", "groups", R::value,
       [](const Make& t) {
         k::ternary_quantize_groups(t({6, 12}), 1e-5f, 5, 1, out(t({6, 12})), out(t({5})));
       },
       "ternary_quantize_groups: groups is 5, expected a positive divisor of 12 (w f32[6, 12] "
       "along axis 1)"},
      {"ternary_quantize_groups", "axis", R::value,
       [](const Make& t) {
         k::ternary_quantize_groups(t({6, 12}), 1e-5f, 2, 2, out(t({6, 12})), out(t({2})));
       },
       "ternary_quantize_groups: axis is 2, expected 0 or 1"},
      {"ternary_quantize_groups", "gamma", R::dtype,
       [=](const Make& t) {
         k::ternary_quantize_groups(t({6, 12}), 1e-5f, 2, 0, out(t({6, 12})), out(t({2}, f64)));
       },
       "ternary_quantize_groups: gamma is f64[2], expected 2 f32 elements"},
      {"ternary_quantize_groups", "effective", R::dtype,
       [=](const Make& t) {
         k::ternary_quantize_groups(t({6, 12}), 1e-5f, 2, 0, out(t({6, 12}, i32)), out(t({2})));
       },
       "ternary_quantize_groups: effective is i32[6, 12], expected a float dtype"},

      // ---- add_rmsnorm: x, r, h, y, dy, dh, dx, dr [N, d]; g [d]; rstd [N] acc; dg acc.
      {"add_rmsnorm_forward", "r", R::shape,
       [=](const Make& t) {
         k::add_rmsnorm_forward(t({4, 8}), t({4, 7}), t({8}), 1e-5f, out(t({4, 8})), out(t({4, 8})),
                                out(t({4})));
       },
       "add_rmsnorm_forward: x f32[4, 8] and r f32[4, 7] disagree"},
      {"add_rmsnorm_forward", "r", R::dtype,
       [=](const Make& t) {
         k::add_rmsnorm_forward(t({4, 8}), t({4, 8}, f64), t({8}), 1e-5f, out(t({4, 8})),
                                out(t({4, 8})), out(t({4})));
       },
       "add_rmsnorm_forward: x f32[4, 8] and r f64[4, 8] disagree"},
      {"add_rmsnorm_backward", "dr", R::shape,
       [=](const Make& t) {
         k::add_rmsnorm_backward(t({4, 8}), t({4, 8}), t({4, 8}), t({8}), t({4}), out(t({4, 8})),
                                 out(t({3, 8})), out(t({8})));
       },
       "add_rmsnorm_backward: h f32[4, 8] and dr f32[3, 8] disagree"},
      {"add_rmsnorm_backward", "dg", R::dtype,
       [=](const Make& t) {
         k::add_rmsnorm_backward(t({4, 8}, bf16), t({4, 8}, bf16), t({4, 8}, bf16), t({8}), t({4}),
                                 out(t({4, 8}, bf16)), out(t({4, 8}, bf16)), out(t({8}, bf16)));
       },
       "add_rmsnorm_backward: dg is bf16[8], expected f32 (the acc dtype of h)"},

      // ---- rmsnorm_forward: x, y [N, d]; g [d] in x's dtype or acc; rstd [N] acc.
      {"rmsnorm_forward", "g", R::shape,
       [](const Make& t) {
         k::rmsnorm_forward(t({4, 8}), t({7}), 1e-5f, out(t({4, 8})), out(t({4})));
       },
       "rmsnorm_forward: x f32[4, 8] and g f32[7] disagree"},
      {"rmsnorm_forward", "y", R::shape,
       [](const Make& t) {
         k::rmsnorm_forward(t({4, 8}), t({8}), 1e-5f, out(t({4, 7})), out(t({4})));
       },
       "rmsnorm_forward: x f32[4, 8] and y f32[4, 7] disagree"},
      {"rmsnorm_forward", "g", R::dtype,
       [=](const Make& t) {
         k::rmsnorm_forward(t({4, 8}, bf16), t({8}, f16), 1e-5f, out(t({4, 8}, bf16)), out(t({4})));
       },
       "rmsnorm_forward: x bf16[4, 8] and g f16[8] disagree: g must be bf16 or f32"},
      {"rmsnorm_forward", "rstd", R::dtype,
       [=](const Make& t) {
         k::rmsnorm_forward(t({4, 8}), t({8}), 1e-5f, out(t({4, 8})), out(t({4}, f64)));
       },
       "rmsnorm_forward: rstd is f64[4], expected 4 f32 elements"},

      // ---- rmsnorm_backward: dy, dx like x; dg like g in acc.
      {"rmsnorm_backward", "dx", R::shape,
       [](const Make& t) {
         k::rmsnorm_backward(t({4, 8}), t({4, 8}), t({8}), t({4}), out(t({8, 4})), out(t({8})));
       },
       "rmsnorm_backward: x f32[4, 8] and dx f32[8, 4] disagree"},
      {"rmsnorm_backward", "rstd", R::shape,
       [](const Make& t) {
         k::rmsnorm_backward(t({4, 8}), t({4, 8}), t({8}), t({3}), out(t({4, 8})), out(t({8})));
       },
       "rmsnorm_backward: rstd is f32[3], expected 4 f32 elements"},
      {"rmsnorm_backward", "dg", R::dtype,
       [=](const Make& t) {
         k::rmsnorm_backward(t({4, 8}, bf16), t({4, 8}, bf16), t({8}, bf16), t({4}),
                             out(t({4, 8}, bf16)), out(t({8}, bf16)));
       },
       "rmsnorm_backward: dg is bf16[8], expected f32 (the acc dtype of x)"},
      {"rmsnorm_backward", "dy", R::dtype,
       [=](const Make& t) {
         k::rmsnorm_backward(t({4, 8}, f64), t({4, 8}), t({8}), t({4}), out(t({4, 8})),
                             out(t({8})));
       },
       "rmsnorm_backward: x f32[4, 8] and dy f64[4, 8] disagree"},

      // ---- swiglu: gate, up, out (and the gradients) one shape and dtype.
      {"swiglu_forward", "up", R::shape,
       [](const Make& t) { k::swiglu_forward(t({6}), t({5}), out(t({6}))); },
       "swiglu_forward: gate f32[6] and up f32[5] disagree"},
      {"swiglu_forward", "out", R::dtype,
       [=](const Make& t) { k::swiglu_forward(t({6}), t({6}), out(t({6}, bf16))); },
       "swiglu_forward: gate f32[6] and out bf16[6] disagree"},
      {"swiglu_forward", "gate", R::dtype,
       [=](const Make& t) { k::swiglu_forward(t({6}, i32), t({6}, i32), out(t({6}, i32))); },
       "swiglu_forward: gate is i32[6], expected a float dtype"},
      {"swiglu_backward", "dup", R::shape,
       [](const Make& t) { k::swiglu_backward(t({6}), t({6}), t({6}), out(t({6})), out(t({7}))); },
       "swiglu_backward: gate f32[6] and dup f32[7] disagree"},
      {"swiglu_backward", "dout", R::dtype,
       [=](const Make& t) {
         k::swiglu_backward(t({6}, f64), t({6}), t({6}), out(t({6})), out(t({6})));
       },
       "swiglu_backward: gate f32[6] and dout f64[6] disagree"},

      // ---- rope: x [B, T, H, Dh] with an even Dh; out like x.
      {"rope_forward", "x", R::shape,
       [](const Make& t) {
         k::rope_forward(t({1, 2, 2, 7}), 0, 1e4f, out(t({1, 2, 2, 7})));
       },
       "rope_forward: x is f32[1, 2, 2, 7], expected [B, T, H, Dh] with an even Dh"},
      {"rope_forward", "out", R::dtype,
       [=](const Make& t) {
         k::rope_forward(t({1, 2, 2, 8}), 0, 1e4f, out(t({1, 2, 2, 8}, bf16)));
       },
       "rope_forward: x f32[1, 2, 2, 8] and out bf16[1, 2, 2, 8] disagree"},
      {"rope_forward", "x", R::dtype,
       [=](const Make& t) {
         k::rope_forward(t({1, 2, 2, 8}, i32), 0, 1e4f, out(t({1, 2, 2, 8}, i32)));
       },
       "rope_forward: x is i32[1, 2, 2, 8], expected a float dtype"},
      {"rope_backward", "dout", R::shape,
       [](const Make& t) {
         k::rope_backward(t({2, 2, 8}), 0, 1e4f, out(t({2, 2, 8})));
       },
       "rope_backward: dout is f32[2, 2, 8], expected [B, T, H, Dh] with an even Dh"},
      {"rope_backward", "dx", R::dtype,
       [=](const Make& t) {
         k::rope_backward(t({1, 2, 2, 8}), 0, 1e4f, out(t({1, 2, 2, 8}, f64)));
       },
       "rope_backward: dout f32[1, 2, 2, 8] and dx f64[1, 2, 2, 8] disagree"},

      // ---- attention_forward: q [B, Tq, H, Dh]; k, v [B, Tk >= Tq, H, Dh] in q's dtype; o like
      // q; lse [B, H, Tq] acc.
      {"attention_forward", "q", R::shape,
       [](const Make& t) {
         k::attention_forward(t({6, 2, 8}), t({6, 2, 8}), t({6, 2, 8}), 1.f, out(t({6, 2, 8})),
                              out(t({2, 6})));
       },
       "attention_forward: q is f32[6, 2, 8], expected [B, Tq, H, Dh]"},
      {"attention_forward", "k", R::shape,
       [](const Make& t) {
         k::attention_forward(t({1, 6, 2, 8}), t({1, 5, 2, 8}), t({1, 5, 2, 8}), 1.f,
                              out(t({1, 6, 2, 8})), out(t({1, 2, 6})));
       },
       "attention_forward: k is f32[1, 5, 2, 8], expected [1, Tk, 2, 8] with Tk >= Tq = 6"},
      {"attention_forward", "v", R::shape,
       [](const Make& t) {
         k::attention_forward(t({1, 6, 2, 8}), t({1, 6, 2, 8}), t({1, 6, 2, 4}), 1.f,
                              out(t({1, 6, 2, 8})), out(t({1, 2, 6})));
       },
       "attention_forward: k f32[1, 6, 2, 8] and v f32[1, 6, 2, 4] disagree"},
      {"attention_forward", "lse", R::shape,
       [](const Make& t) {
         k::attention_forward(t({1, 6, 2, 8}), t({1, 6, 2, 8}), t({1, 6, 2, 8}), 1.f,
                              out(t({1, 6, 2, 8})), out(t({1, 6, 2})));
       },
       "attention_forward: lse is f32[1, 6, 2], expected f32[1, 2, 6]"},
      {"attention_forward", "k", R::dtype,
       [=](const Make& t) {
         k::attention_forward(t({1, 6, 2, 8}), t({1, 6, 2, 8}, bf16), t({1, 6, 2, 8}, bf16), 1.f,
                              out(t({1, 6, 2, 8})), out(t({1, 2, 6})));
       },
       "attention_forward: q f32[1, 6, 2, 8] and k bf16[1, 6, 2, 8] disagree: k must be f32"},
      {"attention_forward", "lse", R::dtype,
       [=](const Make& t) {
         k::attention_forward(t({1, 6, 2, 8}, bf16), t({1, 6, 2, 8}, bf16), t({1, 6, 2, 8}, bf16),
                              1.f, out(t({1, 6, 2, 8}, bf16)), out(t({1, 2, 6}, bf16)));
       },
       "attention_forward: lse is bf16[1, 2, 6], expected f32[1, 2, 6]"},
      {"attention_forward", "o", R::dtype,
       [=](const Make& t) {
         k::attention_forward(t({1, 6, 2, 8}), t({1, 6, 2, 8}), t({1, 6, 2, 8}), 1.f,
                              out(t({1, 6, 2, 8}, bf16)), out(t({1, 2, 6})));
       },
       "attention_forward: q f32[1, 6, 2, 8] and o bf16[1, 6, 2, 8] disagree"},

      // ---- attention_backward: Tk == Tq; dout, o, dq like q; dk, dv like k and v.
      {"attention_backward", "k", R::shape,
       [](const Make& t) {
         k::attention_backward(t({1, 4, 2, 8}), t({1, 4, 2, 8}), t({1, 6, 2, 8}), t({1, 6, 2, 8}),
                               t({1, 4, 2, 8}), t({1, 2, 4}), 1.f, out(t({1, 4, 2, 8})),
                               out(t({1, 6, 2, 8})), out(t({1, 6, 2, 8})));
       },
       "attention_backward: k is f32[1, 6, 2, 8], expected [1, 4, 2, 8] like q (the backward "
       "pass needs Tk == Tq)"},
      {"attention_backward", "dout", R::shape,
       [](const Make& t) {
         k::attention_backward(t({1, 4, 2, 4}), t({1, 4, 2, 8}), t({1, 4, 2, 8}), t({1, 4, 2, 8}),
                               t({1, 4, 2, 8}), t({1, 2, 4}), 1.f, out(t({1, 4, 2, 8})),
                               out(t({1, 4, 2, 8})), out(t({1, 4, 2, 8})));
       },
       "attention_backward: q f32[1, 4, 2, 8] and dout f32[1, 4, 2, 4] disagree"},
      {"attention_backward", "dk", R::dtype,
       [=](const Make& t) {
         k::attention_backward(t({1, 4, 2, 8}), t({1, 4, 2, 8}), t({1, 4, 2, 8}), t({1, 4, 2, 8}),
                               t({1, 4, 2, 8}), t({1, 2, 4}), 1.f, out(t({1, 4, 2, 8})),
                               out(t({1, 4, 2, 8}, bf16)), out(t({1, 4, 2, 8})));
       },
       "attention_backward: k f32[1, 4, 2, 8] and dk bf16[1, 4, 2, 8] disagree"},
      {"attention_backward", "lse", R::dtype,
       [=](const Make& t) {
         k::attention_backward(t({1, 4, 2, 8}), t({1, 4, 2, 8}), t({1, 4, 2, 8}), t({1, 4, 2, 8}),
                               t({1, 4, 2, 8}), t({1, 2, 4}, f64), 1.f, out(t({1, 4, 2, 8})),
                               out(t({1, 4, 2, 8})), out(t({1, 4, 2, 8})));
       },
       "attention_backward: lse is f64[1, 2, 4], expected f32[1, 2, 4]"},

      // ---- embedding_forward: ids [N] i32; table [V, d]; out [N, d] in table's dtype.
      {"embedding_forward", "ids", R::dtype,
       [=](const Make& t) {
         k::embedding_forward(t({3}), t({5, 8}), 0, out(t({3, 8})));
       },
       "embedding_forward: ids is f32[3], expected i32"},
      {"embedding_forward", "out", R::shape,
       [=](const Make& t) {
         k::embedding_forward(t({3}, i32), t({5, 8}), 0, out(t({3, 7})));
       },
       "embedding_forward: out is f32[3, 7], expected [3, 8]"},
      {"embedding_forward", "table", R::shape,
       [=](const Make& t) {
         k::embedding_forward(t({3}, i32), t({40}), 0, out(t({3, 8})));
       },
       "embedding_forward: table is f32[40], expected [V, d]"},
      {"embedding_forward", "out", R::dtype,
       [=](const Make& t) {
         k::embedding_forward(t({3}, i32), t({5, 8}), 0, out(t({3, 8}, bf16)));
       },
       "embedding_forward: table f32[5, 8] and out bf16[3, 8] disagree: out must be f32"},

      // ---- embedding_backward: dout [N, d] (float); dtable [V, d] in dout's acc dtype.
      {"embedding_backward", "dout", R::dtype,
       [=](const Make& t) {
         k::embedding_backward(t({3}, i32), t({3, 8}, i32), 0, out(t({5, 8})));
       },
       "embedding_backward: dout is i32[3, 8], expected a float dtype"},
      {"embedding_backward", "dout", R::dtype,
       [=](const Make& t) {
         k::embedding_backward(t({3}, i32), t({3, 8}, f64), 0, out(t({5, 8})));
       },
       "embedding_backward: dout f64[3, 8] and dtable f32[5, 8] disagree: dtable must be f64"},
      {"embedding_backward", "dtable", R::dtype,
       [=](const Make& t) {
         k::embedding_backward(t({3}, i32), t({3, 8}, bf16), 0, out(t({5, 8}, bf16)));
       },
       "embedding_backward: dout bf16[3, 8] and dtable bf16[5, 8] disagree: dtable must be f32"},
      {"embedding_backward", "ids", R::dtype,
       [=](const Make& t) {
         k::embedding_backward(t({3}, i64), t({3, 8}), 0, out(t({5, 8})));
       },
       "embedding_backward: ids is i64[3], expected i32"},
      {"embedding_backward", "dout", R::shape,
       [=](const Make& t) {
         k::embedding_backward(t({3}, i32), t({4, 8}), 0, out(t({5, 8})));
       },
       "embedding_backward: dout is f32[4, 8], expected [3, 8]"},

      // ---- cross_entropy: logits [N, V]; targets [N] i32; loss, lse, dloss [N] acc.
      {"cross_entropy_forward", "targets", R::dtype,
       [=](const Make& t) {
         k::cross_entropy_forward(t({2, 5}), t({2}, i64), 0, out(t({2})), out(t({2})));
       },
       "cross_entropy_forward: targets is i64[2], expected i32"},
      {"cross_entropy_forward", "targets", R::shape,
       [=](const Make& t) {
         k::cross_entropy_forward(t({2, 5}), t({3}, i32), 0, out(t({2})), out(t({2})));
       },
       "cross_entropy_forward: logits f32[2, 5] and targets i32[3] disagree"},
      {"cross_entropy_forward", "loss", R::dtype,
       [=](const Make& t) {
         k::cross_entropy_forward(t({2, 5}, bf16), t({2}, i32), 0, out(t({2}, bf16)), out(t({2})));
       },
       "cross_entropy_forward: loss is bf16[2], expected 2 f32 elements"},
      {"cross_entropy_forward", "lse", R::shape,
       [=](const Make& t) {
         k::cross_entropy_forward(t({2, 5}), t({2}, i32), 0, out(t({2})), out(t({3})));
       },
       "cross_entropy_forward: lse is f32[3], expected 2 f32 elements"},
      {"cross_entropy_backward", "dlogits", R::shape,
       [=](const Make& t) {
         k::cross_entropy_backward(t({2, 5}), t({2}, i32), 0, t({2}), t({2}), out(t({2, 4})));
       },
       "cross_entropy_backward: logits f32[2, 5] and dlogits f32[2, 4] disagree"},
      {"cross_entropy_backward", "dloss", R::dtype,
       [=](const Make& t) {
         k::cross_entropy_backward(t({2, 5}), t({2}, i32), 0, t({2}), t({2}, f64), out(t({2, 5})));
       },
       "cross_entropy_backward: dloss is f64[2], expected 2 f32 elements"},
      {"cross_entropy_backward", "logits", R::dtype,
       [=](const Make& t) {
         k::cross_entropy_backward(t({2, 5}, i32), t({2}, i32), 0, t({2}), t({2}),
                                   out(t({2, 5}, i32)));
       },
       "cross_entropy_backward: logits is i32[2, 5], expected a float dtype"},
      {"cross_entropy_mean", "targets", R::shape,
       [=](const Make& t) { k::cross_entropy_mean(t({4}), t({3}, i32), out(t({1})), out(t({1}))); },
       "cross_entropy_mean: loss f32[4] and targets i32[3] disagree"},
      {"cross_entropy_mean", "mean", R::dtype,
       [=](const Make& t) {
         k::cross_entropy_mean(t({4}), t({4}, i32), out(t({1}, f64)), out(t({1})));
       },
       "cross_entropy_mean: mean is f64[1], expected 1 f32 element"},
      {"cross_entropy_mean_backward", "count", R::shape,
       [=](const Make& t) { k::cross_entropy_mean_backward(t({1}), t({2}), out(t({4}))); },
       "cross_entropy_mean_backward: count is f32[2], expected 1 f32 element"},
      {"cross_entropy_mean_backward", "dloss", R::dtype,
       [=](const Make& t) { k::cross_entropy_mean_backward(t({1}), t({1}), out(t({4}, i32))); },
       "cross_entropy_mean_backward: dloss is i32[4], expected a float dtype"},

      // ---- adamw_step: every entry's param, grad, m, v f32 of one shape; compute any float.
      {"adamw_step", "tensors[1].grad", R::shape,
       [=](const Make& t) {
         std::vector<k::AdamWTensor> ts{adamw(t, 3), adamw(t, 3)};
         ts[1].grad = t({4});
         k::adamw_step(ts, hyper);
       },
       "adamw_step: tensors[1].param f32[3] and tensors[1].grad f32[4] disagree"},
      {"adamw_step", "param", R::dtype,
       [=](const Make& t) {
         std::vector<k::AdamWTensor> ts{adamw(t, 3)};
         ts[0].param = t({3}, bf16);
         k::adamw_step(ts, hyper);
       },
       "adamw_step: tensors[0].param is bf16[3], expected f32"},
      {"adamw_step", "m", R::dtype,
       [=](const Make& t) {
         std::vector<k::AdamWTensor> ts{adamw(t, 3)};
         ts[0].m = t({3}, f64);
         k::adamw_step(ts, hyper);
       },
       "adamw_step: tensors[0].param f32[3] and tensors[0].m f64[3] disagree"},
      {"adamw_step", "compute", R::shape,
       [=](const Make& t) {
         std::vector<k::AdamWTensor> ts{adamw(t, 3)};
         ts[0].compute = t({4}, bf16);
         k::adamw_step(ts, hyper);
       },
       "adamw_step: tensors[0].param f32[3] and tensors[0].compute bf16[4] disagree"},
      {"adamw_step", "compute", R::dtype,
       [=](const Make& t) {
         std::vector<k::AdamWTensor> ts{adamw(t, 3)};
         ts[0].compute = t({3}, i32);
         k::adamw_step(ts, hyper);
       },
       "adamw_step: tensors[0].compute is i32[3], expected a float dtype"},

      // ---- elementwise.
      {"add", "b", R::shape, [](const Make& t) { k::add(t({4}), t({5}), out(t({4}))); },
       "add: a f32[4] and b f32[5] disagree"},
      {"add", "out", R::dtype, [=](const Make& t) { k::add(t({4}), t({4}), out(t({4}, bf16))); },
       "add: a f32[4] and out bf16[4] disagree"},
      {"axpy", "y", R::shape, [](const Make& t) { k::axpy(1.f, t({4}), out(t({5}))); },
       "axpy: x f32[4] and y f32[5] disagree"},
      {"axpy", "y", R::dtype, [=](const Make& t) { k::axpy(1.f, t({4}), out(t({4}, bf16))); },
       "axpy: x f32[4] and y bf16[4] disagree: y must be f32"},
      {"axpy", "y", R::dtype, [=](const Make& t) { k::axpy(1.f, t({4}, bf16), out(t({4}, f16))); },
       "axpy: x bf16[4] and y f16[4] disagree: y must be bf16 or f32"},
      {"scale", "x", R::dtype, [=](const Make& t) { k::scale(out(t({4}, i32)), 2.f); },
       "scale: x is i32[4], expected a float dtype"},
      {"cast", "dst", R::shape, [=](const Make& t) { k::cast(t({4}), out(t({5}, bf16))); },
       "cast: src f32[4] and dst bf16[5] disagree"},
      {"cast", "dst", R::dtype, [=](const Make& t) { k::cast(t({4}), out(t({4}, i32))); },
       "cast: dst is i32[4], expected a float dtype"},
      {"sum_squares", "xs[1]", R::dtype,
       [=](const Make& t) {
         k::sum_squares({t({4}), t({3}, i32)}, nullptr);
       },
       "sum_squares: xs[1] is i32[3], expected a float dtype"},
  };
}

// The table, built once per test binary.
inline const std::vector<Case>& all_cases() {
  static const std::vector<Case> cs = cases();
  return cs;
}

}  // namespace spectra::kernel_args
