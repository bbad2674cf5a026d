// SPECTRA_HD marks per-element math shared by the CPU reference and the CUDA kernels, so the CPU
// tests exercise the exact arithmetic the GPU runs.
#pragma once
#if defined(__CUDACC__)
#define SPECTRA_HD __host__ __device__ __forceinline__
#else
#define SPECTRA_HD inline
#endif
