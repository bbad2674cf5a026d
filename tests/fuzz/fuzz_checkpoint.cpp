// libFuzzer harness: the checkpoint reader (tests/fuzz/readers.h; scripts/fuzz runs it).
#include "readers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  spectra::fuzz::checkpoint(data, size);
  return 0;
}
