// Which SIMD instruction set the CPU kernels that have hand-written variants (the packed ternary
// kernels, kernels/ternary_packed.h) use. Chosen once at run time from what the CPU supports;
// SPECTRA_CPU_ISA=portable|avx2|avx512 asks for less (never more than the CPU has), so a machine
// with AVX-512 still runs and tests the AVX2 and portable code.
//
//   kernels::CpuIsa isa = kernels::cpu_isa();           // what the kernels use now
//   kernels::CpuIsa old = kernels::set_cpu_isa(CpuIsa::avx2);  // tests: force a variant
#pragma once
#include <cstdint>
#include <string>

namespace spectra::kernels {

// Ordered: each level needs what the one before it needs.
enum class CpuIsa : uint8_t {
  portable = 0,  // plain C++ (any CPU)
  avx2 = 1,      // AVX2 + FMA (x86-64 since Haswell / Zen 1)
  avx512 = 2,    // AVX-512 F, BW, VL and VNNI (Ice Lake, Zen 4)
};

const char* cpu_isa_name(CpuIsa isa);
// The best variant this CPU runs (ignoring SPECTRA_CPU_ISA).
CpuIsa cpu_isa_supported();
// The variant in use: min(supported, SPECTRA_CPU_ISA) unless set_cpu_isa chose one. An unknown
// SPECTRA_CPU_ISA value is a UserError naming it.
CpuIsa cpu_isa();
// Uses min(isa, supported) from now on and returns what was in use before.
CpuIsa set_cpu_isa(CpuIsa isa);
// "avx512 (AVX-512 VNNI)" and the like, for logs and benchmarks.
std::string cpu_isa_description();

}  // namespace spectra::kernels
