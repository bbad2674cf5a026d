// The kernels' argument contract (kernels/checks.h), checked once at the public entry points:
// every bad-argument case of tests/kernel_arg_cases.h with CPU tensors gives its exact error (the
// same table runs on cuda:0 in tests/cuda/test_kernel_args_cuda.cpp), the table covers every op,
// and the dtype combinations that either backend computes with are accepted.
#include <gtest/gtest.h>

#include <set>

#include "kernels/checks.h"
#include "kernels/dispatch.h"
#include "tests/kernel_arg_cases.h"

using namespace spectra;
namespace ka = spectra::kernel_args;
namespace k = spectra::kernels;

namespace {

using ka::all_cases;

class KernelArgs : public ::testing::TestWithParam<size_t> {};

}  // namespace

TEST_P(KernelArgs, BadArgumentIsRejectedByName) {
  const ka::Case& c = all_cases()[GetParam()];
  try {
    c.call(ka::Make{Device::cpu()});
    ADD_FAILURE() << c.op << " accepted a bad " << c.arg << "; expected: " << c.error;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), c.error);
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, KernelArgs, ::testing::Range<size_t>(0, all_cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return ka::case_names(all_cases())[info.param];
                         });

// Every op of kernels/dispatch.cpp has a bad-shape case (where it has a shape rule) and a
// bad-dtype case, and the table names no other op.
TEST(KernelArgsTable, CoversEveryOp) {
  std::set<std::string> ops;
  for (const ka::OpRules& o : ka::all_ops()) {
    ops.insert(o.op);
    bool shape = false, dtype = false;
    for (const ka::Case& c : all_cases()) {
      if (c.op != o.op) continue;
      shape |= c.rule == ka::Rule::shape;
      dtype |= c.rule == ka::Rule::dtype;
    }
    EXPECT_TRUE(shape || !o.shape) << o.op << " has no bad-shape case";
    EXPECT_TRUE(dtype || !o.dtype) << o.op << " has no bad-dtype case";
  }
  for (const ka::Case& c : all_cases()) EXPECT_TRUE(ops.count(c.op)) << c.op;
  for (const ka::Case& c : all_cases())
    EXPECT_EQ(c.error.rfind(c.op + ": ", 0), 0u) << "the error must start with the op: " << c.error;
}

// The contract accepts what either backend computes with: the CUDA path's 16-bit activations
// writing f32 outputs, statistics and parameter gradients (CPU tensors stand in for device ones:
// the checks do not depend on the device).
TEST(KernelArgsTable, AcceptsWhatEitherBackendSupports) {
  const DType f32 = DType::f32, f64 = DType::f64, i32 = DType::i32;
  for (DType act : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    SCOPED_TRACE(std::string(dtype_name(act)));
    const DType acc = act == f64 ? f64 : f32;
    auto t = [](Shape s, DType d) { return Tensor::empty(std::move(s), d); };
    Tensor scale = t({1}, f32);
    EXPECT_NO_THROW(
        k::check_matmul(t({4, 8}, act), false, t({5, 8}, act), true, t({4, 5}, act), &scale));
    EXPECT_NO_THROW(k::check_matmul(t({2, 3, 8}, act), false, t({8, 5}, act), false, t({6, 5}, acc),
                                    nullptr));  // leading dims flattened
    EXPECT_NO_THROW(
        k::check_matmul(t({8, 4}, act), true, t({5, 8}, act), true, t({4, 5}, acc), nullptr));
    EXPECT_NO_THROW(k::check_ternary_quantize(t({4, 8}, acc), t({4, 8}, act), t({1}, f32)));
    EXPECT_NO_THROW(
        k::check_ternary_quantize_groups(t({6, 12}, acc), 3, 1, t({6, 12}, act), t({3}, f32)));
    for (DType g : {act, acc}) {
      EXPECT_NO_THROW(
          k::check_rmsnorm_forward(t({2, 3, 8}, act), t({8}, g), t({2, 3, 8}, act), t({6}, acc)));
      EXPECT_NO_THROW(k::check_rmsnorm_backward(t({6, 8}, act), t({6, 8}, act), t({8}, g),
                                                t({6}, acc), t({6, 8}, act), t({8}, acc)));
    }
    EXPECT_NO_THROW(k::check_swiglu_forward(t({6}, act), t({6}, act), t({6}, act)));
    EXPECT_NO_THROW(
        k::check_swiglu_backward(t({6}, act), t({6}, act), t({6}, act), t({6}, act), t({6}, act)));
    EXPECT_NO_THROW(k::check_rope_forward(t({1, 2, 2, 8}, act), t({1, 2, 2, 8}, act)));
    EXPECT_NO_THROW(k::check_rope_backward(t({1, 2, 2, 8}, act), t({1, 2, 2, 8}, act)));
    const Shape q{2, 3, 2, 8}, kv{2, 7, 2, 8};  // Tq < Tk: generation with a cache
    EXPECT_NO_THROW(k::check_attention_forward(t(q, act), t(kv, act), t(kv, act), t(q, act),
                                               t({2, 2, 3}, acc)));
    EXPECT_NO_THROW(k::check_attention_backward(t(q, act), t(q, act), t(q, act), t(q, act),
                                                t(q, act), t({2, 2, 3}, acc), t(q, act), t(q, act),
                                                t(q, act)));
    EXPECT_NO_THROW(k::check_embedding_forward(t({2, 3}, i32), t({5, 8}, act), t({2, 3, 8}, act)));
    EXPECT_NO_THROW(k::check_embedding_backward(t({6}, i32), t({6, 8}, act), t({5, 8}, acc)));
    EXPECT_NO_THROW(
        k::check_cross_entropy_forward(t({2, 3, 5}, act), t({6}, i32), t({6}, acc), t({6}, acc)));
    EXPECT_NO_THROW(k::check_cross_entropy_backward(t({6, 5}, act), t({6}, i32), t({6}, acc),
                                                    t({6}, acc), t({6, 5}, act)));
    std::vector<k::AdamWTensor> adamw{
        {t({3}, f32), t({3}, f32), t({3}, f32), t({3}, f32), t({3}, act), true},
        {t({2}, f32), t({2}, f32), t({2}, f32), t({2}, f32), {}, false}};
    EXPECT_NO_THROW(k::check_adamw_step(adamw));
    EXPECT_NO_THROW(k::check_add(t({4}, act), t({4}, act), t({4}, act)));
    for (DType y : {act, acc}) EXPECT_NO_THROW(k::check_axpy(t({4}, act), t({4}, y)));
    EXPECT_NO_THROW(k::check_scale(t({4}, act)));
    for (DType to : {DType::f32, DType::bf16, DType::f16, DType::f64})
      EXPECT_NO_THROW(k::check_cast(t({4}, act), t({4}, to)));
    EXPECT_NO_THROW(k::check_sum_squares({t({4}, act), t({3}, f32)}));
  }
}

// A device mismatch is refused before the arguments are looked at; it needs two devices, so
// tests/cuda/test_kernel_args_cuda.cpp checks it. Without any tensor on CUDA, on_cuda is false.
TEST(KernelArgsTable, OnCudaIsFalseForCpuTensors) {
  Tensor a = Tensor::empty({2}), undefined;
  EXPECT_FALSE(k::on_cuda("op", {&a, nullptr, &undefined}));
}
