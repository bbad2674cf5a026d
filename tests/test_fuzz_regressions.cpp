// The file readers against the inputs that broke them, kept in tests/fuzz/regressions/READER/:
// the inputs of the bugs found while writing the fuzz harnesses, and any input the fuzzers
// (scripts/fuzz) find crashing a reader. Each must now be rejected with spectra's own error
// (scripts/test-sanitize runs this under ASan + UBSan, which catch the memory errors a plain
// build would miss). Hand-made tests below check the error of each bug. docs/testing.md lists
// them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "data/bpe_train.h"
#include "data/hdf5.h"
#include "tests/fuzz/readers.h"

using namespace spectra;
namespace fs = std::filesystem;

namespace {
fs::path scratch() {
  fs::path d = fs::temp_directory_path() / ("spectra_fuzz_test_" + std::to_string(getpid()));
  fs::create_directories(d);
  return d;
}
struct RemoveScratch : ::testing::Environment {
  void TearDown() override {
    fs::remove_all(scratch());
    for (const char* s : {".h5", ".safetensors"})
      fs::remove("/dev/shm/spectra-fuzz-" + std::to_string(getpid()) + s);
    fs::remove_all("/dev/shm/spectra-fuzz-recipe-" + std::to_string(getpid()));
  }
};
const auto* const remove_scratch = ::testing::AddGlobalTestEnvironment(new RemoveScratch);

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

// Runs `reader` on every kept input of tests/fuzz/regressions/NAME/. A folder that should hold
// inputs must: a missing or emptied one would otherwise pass without replaying anything.
template <class F>
void replay(const std::string& name, F reader, bool required = true) {
  const fs::path dir = fs::path(SPECTRA_SOURCE_DIR) / "tests/fuzz/regressions" / name;
  if (!required && !fs::exists(dir)) return;
  ASSERT_TRUE(fs::is_directory(dir)) << dir << " is missing";
  int replayed = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    SCOPED_TRACE(e.path().string());
    const std::string b = read_bytes(e.path());
    reader(reinterpret_cast<const uint8_t*>(b.data()), b.size());
    replayed++;
  }
  EXPECT_GT(replayed, 0) << dir << " holds no input";
}

// A safetensors file: the 8-byte little-endian header length, the header, the data.
std::string safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; i++) out[size_t(i)] = char(uint64_t(header.size()) >> (8 * i));
  const fs::path p = scratch() / "t.safetensors";
  std::ofstream(p, std::ios::binary) << out + header + data;
  return p.string();
}

void expect_user_error(const std::string& path, const std::string& what) {
  try {
    SafetensorsReader r(path);
    for (const std::string& n : r.names()) r.read_f32(n);
    ADD_FAILURE() << "accepted; expected an error containing " << what;
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

// A valid token file whose root attribute `name` is replaced by `make(file id)`'s.
std::string token_file_with(const std::string& name, const std::function<void(hid_t)>& make) {
  const std::string path = (scratch() / (name + ".h5")).string();
  TokenFileMeta meta;
  meta.vocab_size = 300;
  meta.num_documents = 1;
  meta.num_tokens = 3;
  write_token_file(path, {1, 2, 0}, {0, 3}, meta);
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Adelete(f, name.c_str());
  make(f);
  H5Fclose(f);
  return path;
}
}  // namespace

// The inputs of the bugs below as files (tests/fuzz/regressions/README.md says what each is;
// no fuzz run has found a crash in spectra's own code yet). The recipe reader has none so far.
TEST(FuzzRegressions, KeptInputsAreRejectedCleanly) {
  replay("tokenizer", fuzz::tokenizer);
  replay("recipe", fuzz::recipe, false);
  replay("token_file", fuzz::token_file);
  replay("checkpoint", fuzz::checkpoint);
  replay("model_file", fuzz::model_file);
  replay("safetensors", fuzz::safetensors);
}

// Shapes and offsets used to be taken as whatever nlohmann converted them to: [-1, -1] wrapped
// to a count of 1, [2^32, 2^32] to 0 (a 2^64-element tensor on reading), an offset near 2^64
// wrapped past the file-size check.
TEST(FuzzRegressions, SafetensorsSizesAreCheckedIntegers) {
  const std::string f32 = R"({"t": {"dtype": "F32", "shape": )";
  expect_user_error(safetensors(f32 + R"([-1, -1], "data_offsets": [0, 4]}})", "xxxx"),
                    "malformed entry");
  expect_user_error(safetensors(f32 + R"([4294967296, 4294967296], "data_offsets": [0, 0]}})", ""),
                    "bytes for shape");
  expect_user_error(safetensors(f32 + R"([1e300], "data_offsets": [0, 4]}})", "xxxx"),
                    "malformed entry");
  expect_user_error(safetensors(f32 + R"([1], "data_offsets": [0.5, 4]}})", "xxxx"),
                    "malformed entry");
  expect_user_error(safetensors(R"({"t": {"dtype": "F16", "shape": [1], "data_offsets": )"
                                R"([18446744073709551612, 18446744073709551614]}})",
                                "xx"),
                    "truncated");
  SafetensorsReader ok(
      safetensors(f32 + R"([1], "data_offsets": [0, 4]}})", std::string("\0\0\x80?", 4)));
  EXPECT_EQ(ok.read_f32("t").to_doubles(), std::vector<double>{1.0});
}

// H5Aread writes every element of an attribute: an array where spectra reads one integer
// overflowed the stack, an array of strings the heap.
TEST(FuzzRegressions, ArrayAttributesAreRefused) {
  const std::string ints = token_file_with("format_version", [](hid_t f) {
    hsize_t n = 4;
    hid_t space = H5Screate_simple(1, &n, nullptr);
    hid_t a = H5Acreate2(f, "format_version", H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT);
    int64_t v[4] = {1, 1, 1, 1};
    H5Awrite(a, H5T_NATIVE_INT64, v);
    H5Aclose(a);
    H5Sclose(space);
  });
  EXPECT_THROW(TokenFile{ints}, UserError);
  const std::string strings = token_file_with("format", [](hid_t f) {
    hsize_t n = 3;
    hid_t space = H5Screate_simple(1, &n, nullptr), type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 14);
    hid_t a = H5Acreate2(f, "format", type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, "spectra-tokensspectra-tokensspectra-tokens");
    H5Aclose(a);
    H5Tclose(type);
    H5Sclose(space);
  });
  EXPECT_THROW(TokenFile{strings}, UserError);
}

// Variable-length strings (what h5py writes for str) used to be read as the bytes of a pointer.
TEST(FuzzRegressions, VariableLengthStringAttributesRead) {
  const std::string path = token_file_with("format", [](hid_t f) {
    hid_t space = H5Screate(H5S_SCALAR), type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hid_t a = H5Acreate2(f, "format", type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* v = kTokenFormat;
    H5Awrite(a, type, &v);
    H5Aclose(a);
    H5Tclose(type);
    H5Sclose(space);
  });
  EXPECT_EQ(TokenFile(path).num_tokens(), 3);
}

// Token ids sized the tables unchecked: an added token with id -1 was written before the first
// element, one with id 2^31 - 1 asked for 2^31 table entries.
TEST(FuzzRegressions, TokenIdsAreCheckedBeforeUse) {
  BpeTrainer t({.vocab_size = 260});
  t.add_text("hello hello world world");
  const nlohmann::json good = nlohmann::json::parse(t.train());
  EXPECT_NO_THROW(Tokenizer::parse(good.dump(), "good"));
  for (nlohmann::json id : {nlohmann::json(-1), nlohmann::json(2147483647), nlohmann::json(1.5)}) {
    nlohmann::json added = good, vocab = good;
    added["added_tokens"].push_back({{"id", id}, {"content", "<x>"}, {"special", true}});
    vocab["model"]["vocab"]["zz"] = id;
    for (const nlohmann::json& j : {added, vocab}) {
      try {
        Tokenizer::parse(j.dump(), "bad");
        ADD_FAILURE() << "accepted id " << id;
      } catch (const UserError& e) {
        EXPECT_NE(std::string(e.what()).find("token id"), std::string::npos) << e.what();
      }
    }
  }
}
