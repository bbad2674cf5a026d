#include "kernels/cpu_isa.h"

#include <atomic>
#include <cstdlib>
#include <string_view>

#include "core/error.h"

namespace spectra::kernels {

namespace {

CpuIsa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512vnni");
  return avx512 ? CpuIsa::avx512 : avx2 ? CpuIsa::avx2 : CpuIsa::portable;
#else
  return CpuIsa::portable;
#endif
}

CpuIsa cap(CpuIsa isa) { return isa < cpu_isa_supported() ? isa : cpu_isa_supported(); }

CpuIsa from_environment() {
  const char* env = std::getenv("SPECTRA_CPU_ISA");
  if (!env || !*env) return cpu_isa_supported();
  for (CpuIsa isa : {CpuIsa::portable, CpuIsa::avx2, CpuIsa::avx512})
    if (std::string_view(env) == cpu_isa_name(isa)) return cap(isa);
  user_error("SPECTRA_CPU_ISA={}: expected portable, avx2 or avx512", env);
}

std::atomic<int> g_isa{-1};  // -1: not chosen yet

}  // namespace

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::portable:
      return "portable";
    case CpuIsa::avx2:
      return "avx2";
    case CpuIsa::avx512:
      return "avx512";
  }
  return "?";
}

CpuIsa cpu_isa_supported() {
  static const CpuIsa supported = detect();
  return supported;
}

CpuIsa cpu_isa() {
  int isa = g_isa.load(std::memory_order_relaxed);
  if (isa < 0) {
    isa = int(from_environment());
    g_isa.store(isa, std::memory_order_relaxed);
  }
  return CpuIsa(isa);
}

CpuIsa set_cpu_isa(CpuIsa isa) {
  const CpuIsa before = cpu_isa();
  g_isa.store(int(cap(isa)), std::memory_order_relaxed);
  return before;
}

std::string cpu_isa_description() {
  switch (cpu_isa()) {
    case CpuIsa::portable:
      return "portable (plain C++)";
    case CpuIsa::avx2:
      return "avx2 (AVX2 + FMA)";
    case CpuIsa::avx512:
      return "avx512 (AVX-512 BW/VL + VNNI)";
  }
  return "?";
}

}  // namespace spectra::kernels
