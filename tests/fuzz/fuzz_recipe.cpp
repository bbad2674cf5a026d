// libFuzzer harness: the recipe reader (tests/fuzz/readers.h; scripts/fuzz runs it).
#include "readers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  spectra::fuzz::recipe(data, size);
  return 0;
}
