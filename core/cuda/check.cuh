// CUDA_CHECK / CUBLAS_CHECK: every CUDA and cuBLAS call is checked; the message names the call,
// the file and line, and the rank.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/error.h"

#define CUDA_CHECK(call)                                                                         \
  do {                                                                                           \
    cudaError_t err_ = (call);                                                                   \
    if (err_ != cudaSuccess)                                                                     \
      throw ::spectra::Error(::fmt::format("CUDA error {} ({}) in {} at {}:{}, rank {}",         \
                                           cudaGetErrorName(err_), cudaGetErrorString(err_),     \
                                           #call, __FILE__, __LINE__, ::spectra::error_rank())); \
  } while (0)

#define CUBLAS_CHECK(call)                                                                       \
  do {                                                                                           \
    cublasStatus_t st_ = (call);                                                                 \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                            \
      throw ::spectra::Error(::fmt::format("cuBLAS error {} ({}) in {} at {}:{}, rank {}",       \
                                           cublasGetStatusName(st_), cublasGetStatusString(st_), \
                                           #call, __FILE__, __LINE__, ::spectra::error_rank())); \
  } while (0)

// After a kernel launch: catches bad launch configurations, naming the op.
#define CUDA_CHECK_LAUNCH(op_name)                                                           \
  do {                                                                                       \
    cudaError_t err_ = cudaGetLastError();                                                   \
    if (err_ != cudaSuccess)                                                                 \
      throw ::spectra::Error(                                                                \
          ::fmt::format("CUDA kernel launch failed in {}: {} ({}) at {}:{}, "                \
                        "rank {}",                                                           \
                        op_name, cudaGetErrorName(err_), cudaGetErrorString(err_), __FILE__, \
                        __LINE__, ::spectra::error_rank()));                                 \
  } while (0)
