// The measurements of `spectra bench` that live in files of their own.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace spectra::tools {

// --data-parallel, under mpirun: gradient communication blocking vs overlapped with backward.
void bench_data_parallel(const std::string& recipe, const std::vector<std::string>& overrides,
                         int64_t steps, int64_t warmup, bool json);

}  // namespace spectra::tools
