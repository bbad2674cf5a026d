// The bad-argument table of tests/kernel_arg_cases.h with every tensor on cuda:0: the checks run
// at the public entry points before the CUDA path is chosen, so each case gives the same exact
// error as on the CPU (tests/test_kernel_args.cpp). Also: tensors on two devices are refused for
// every tensor of the call, not only the first. Skips with a message where no GPU is present.
#include <gtest/gtest.h>

#include "core/cuda_runtime.h"
#include "kernels/dispatch.h"
#include "tests/kernel_arg_cases.h"

using namespace spectra;
namespace ka = spectra::kernel_args;
namespace k = spectra::kernels;

namespace {

using ka::all_cases;

class KernelArgsCuda : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    if (!cuda::available())
      GTEST_SKIP() << "no GPU: CUDA argument checks skipped (run scripts/gpu-check on a GPU host)";
  }
};

// The exact message of fn's Error, or "no error".
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_P(KernelArgsCuda, BadArgumentIsRejectedByName) {
  const ka::Case& c = all_cases()[GetParam()];
  EXPECT_EQ(error_of([&] { c.call(ka::Make{Device::cuda(0)}); }), c.error);
}

INSTANTIATE_TEST_SUITE_P(Cuda, KernelArgsCuda, ::testing::Range<size_t>(0, all_cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return ka::case_names(all_cases())[info.param];
                         });

class KernelDevicesCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::available())
      GTEST_SKIP() << "no GPU: CUDA device checks skipped (run scripts/gpu-check on a GPU host)";
  }
};

TEST_F(KernelDevicesCuda, MixedDevicesAreRefusedForEveryTensor) {
  const Device gpu = Device::cuda(0);
  Tensor a = Tensor::zeros({4}, DType::f32, gpu), h = Tensor::zeros({4});
  EXPECT_EQ(error_of([&] { k::add(a, a, h); }),
            "add: tensors on different devices (f32[4] on cuda:0 and f32[4] on cpu)");
  // adamw_step and sum_squares used to look at their first tensor only.
  std::vector<k::AdamWTensor> ts{{a, a.clone(), a.clone(), a.clone(), {}, true},
                                 {a.clone(), a.clone(), h, a.clone(), {}, true}};
  EXPECT_EQ(error_of([&] { k::adamw_step(ts, k::AdamWHyper{}); }),
            "adamw_step: tensors on different devices (f32[4] on cuda:0 and f32[4] on cpu)");
  ts[1].m = a.clone();
  ts[1].compute = Tensor::zeros({4}, DType::bf16);
  EXPECT_EQ(error_of([&] { k::adamw_step(ts, k::AdamWHyper{}); }),
            "adamw_step: tensors on different devices (f32[4] on cuda:0 and bf16[4] on cpu)");
  EXPECT_EQ(error_of([&] {
              k::sum_squares({a, h}, nullptr);
            }),
            "sum_squares: tensors on different devices (f32[4] on cuda:0 and f32[4] on cpu)");
  Tensor scale = Tensor::full({1}, 1.0), c = Tensor::zeros({2, 2}, DType::f32, gpu);
  Tensor m = Tensor::zeros({2, 2}, DType::f32, gpu);
  EXPECT_EQ(error_of([&] { k::matmul(m, false, m, false, c, 1.f, 0.f, &scale); }),
            "matmul: tensors on different devices (f32[2, 2] on cuda:0 and f32[1] on cpu)");
  EXPECT_TRUE(k::on_cuda("op", {&a, nullptr, &a}));
}
