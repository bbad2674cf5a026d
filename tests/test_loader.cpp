// `spectra prepare` and the loader: prepared files hold exactly the tokenizer's ids, any thread
// count and sharding give the same tokens, bad input fails cleanly with nothing left behind, and
// the loader's order is seeded, disjoint across ranks, resumable and keeps validation apart.
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "data/bpe_train.h"
#include "data/hdf5.h"
#include "data/loader.h"
#include "data/permutation.h"
#include "data/prepare.h"
#include "data/text.h"
#include "data/token_file.h"
#include "data/tokenizer.h"

using namespace spectra;
namespace fs = std::filesystem;

namespace {
fs::path scratch() {
  fs::path d = fs::temp_directory_path() / ("spectra_loader_test_" + std::to_string(getpid()));
  fs::create_directories(d);
  return d;
}

// Removes the scratch folder when the test binary ends.
struct RemoveScratch : ::testing::Environment {
  void TearDown() override { fs::remove_all(scratch()); }
};
const auto* const remove_scratch = ::testing::AddGlobalTestEnvironment(new RemoveScratch);

std::string write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
  return p.string();
}

const std::string& corpus() {
  static std::string text =
      read_text_file(std::string(SPECTRA_SOURCE_DIR) + "/data/corpus/kjv.txt.gz").substr(0, 200000);
  return text;
}

// A small tokenizer trained once on the corpus.
const std::string& tokenizer_path() {
  static std::string path = [] {
    BpeTrainer t({.vocab_size = 512});
    t.add_text(corpus());
    return write(scratch() / "tok.json", t.train());
  }();
  return path;
}

// The corpus as JSONL: one document per 40 lines.
std::vector<std::string> documents() {
  std::vector<std::string> docs;
  std::string cur;
  int lines = 0;
  for (char c : corpus()) {
    cur += c;
    if (c == '\n' && ++lines % 40 == 0) docs.push_back(std::move(cur)), cur.clear();
  }
  if (!cur.empty()) docs.push_back(cur);
  return docs;
}

std::string jsonl(const std::vector<std::string>& docs) {
  std::string out;
  for (const std::string& d : docs) {
    std::string esc;
    for (char c : d) {
      if (c == '"' || c == '\\')
        esc += '\\', esc += c;
      else if (c == '\n')
        esc += "\\n";
      else
        esc += c;
    }
    out += "{\"id\": 1, \"text\": \"" + esc + "\"}\n";
  }
  return out;
}

std::vector<int32_t> all_tokens(const std::vector<std::string>& files) {
  std::vector<int32_t> out;
  for (const std::string& f : files) {
    TokenFile t(f);
    std::vector<int32_t> part(size_t(t.num_tokens()));
    t.read(0, t.num_tokens(), part.data());
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

PrepareOptions options(const std::vector<std::string>& inputs, const std::string& out) {
  PrepareOptions o;
  o.inputs = inputs;
  o.tokenizer = tokenizer_path();
  o.out = out;
  o.progress = false;
  return o;
}

template <typename F>
std::string user_error_of(F&& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no UserError)";
}

// A token file whose token at position i is i (so a window is known by its first token).
std::string counting_file(const std::string& name, int64_t n, const std::string& sha = "abc") {
  std::vector<uint32_t> tokens(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) tokens[size_t(i)] = uint32_t(i);
  TokenFileMeta m;
  m.tokenizer_sha256 = sha;
  m.vocab_size = 1 << 20;
  m.num_documents = 1;
  m.num_tokens = n;
  std::string path = (scratch() / name).string();
  write_token_file(path, tokens, {0, n}, m);
  return path;
}

std::vector<int32_t> firsts(const TokenBatch& b) {
  std::vector<int32_t> f;
  for (int64_t i = 0; i < b.batch; i++) f.push_back(b.ids.data<int32_t>()[i * b.seq]);
  return f;
}
}  // namespace

TEST(Prepare, TokensEqualTheTokenizersIds) {
  std::vector<std::string> docs = documents();
  std::string in = write(scratch() / "docs.jsonl", jsonl(docs) + "\n");  // a blank line too
  std::string out = (scratch() / "docs.h5").string();
  PrepareResult r = prepare(options({in}, out));
  EXPECT_EQ(r.documents, int64_t(docs.size()));
  Tokenizer tok = Tokenizer::load(tokenizer_path());
  std::vector<int32_t> expect;
  std::vector<int64_t> offsets{0};
  for (const std::string& d : docs) {
    tok.encode(d, expect);
    expect.push_back(0);  // <|endoftext|>
    offsets.push_back(int64_t(expect.size()));
  }
  EXPECT_EQ(all_tokens({out}), expect);
  TokenFile f(out);
  EXPECT_EQ(f.doc_offsets(), offsets);
  EXPECT_EQ(f.dtype(), DType::u16);
  EXPECT_EQ(f.meta().tokenizer_sha256, tok.sha256());
  EXPECT_EQ(f.meta().vocab_size, 512);
  EXPECT_EQ(f.meta().num_documents, int64_t(docs.size()));
  EXPECT_EQ(f.meta().text_bytes, int64_t(corpus().size()));
  EXPECT_EQ(f.meta().sources, "[\"" + in + "\"]");
  Loader l({.sources = {{out}}, .seq_len = 32, .batch_size = 2});
  EXPECT_DOUBLE_EQ(l.bytes_per_token(), double(corpus().size()) / double(expect.size()));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

TEST(Prepare, ThreadsShardsAndCompressionGiveTheSameTokens) {
  std::vector<std::string> docs = documents();
  std::string text = jsonl(docs);
  std::string plain = write(scratch() / "c.jsonl", text);
  std::string gz = (scratch() / "c.jsonl.gz").string();
  gzFile g = gzopen(gz.c_str(), "wb");
  gzwrite(g, text.data(), unsigned(text.size()));
  gzclose(g);
  std::string zst(ZSTD_compressBound(text.size()), '\0');
  zst.resize(ZSTD_compress(zst.data(), zst.size(), text.data(), text.size(), 3));
  std::string zpath = write(scratch() / "c.jsonl.zst", zst);
  std::string txt = write(scratch() / "whole.txt", corpus());

  std::vector<int32_t> one =
      all_tokens(prepare(options({plain}, (scratch() / "t1.h5").string())).files);
  PrepareOptions o = options({plain}, (scratch() / "t3.h5").string());
  o.threads = 3;
  EXPECT_EQ(all_tokens(prepare(o).files), one);
  EXPECT_EQ(all_tokens(prepare(options({gz}, (scratch() / "gz.h5").string())).files), one);
  EXPECT_EQ(all_tokens(prepare(options({zpath}, (scratch() / "zst.h5").string())).files), one);
  o = options({plain}, (scratch() / "sharded.h5").string());
  o.shard_tokens = 5000;
  o.threads = 2;
  PrepareResult r = prepare(o);
  EXPECT_GT(r.files.size(), 3u);
  EXPECT_EQ(r.files[0], (scratch() / "sharded-00000.h5").string());
  EXPECT_EQ(all_tokens(r.files), one);
  EXPECT_EQ(source_files((scratch() / "sharded.h5").string()), r.files);
  // A text file is one document.
  PrepareResult t = prepare(options({txt}, (scratch() / "txt.h5").string()));
  EXPECT_EQ(t.documents, 1);
  std::vector<int32_t> joined = Tokenizer::load(tokenizer_path()).encode(corpus());
  joined.push_back(0);
  EXPECT_EQ(all_tokens(t.files), joined);
}

TEST(Prepare, BadInputIsOneClearErrorAndNoOutput) {
  std::string out = (scratch() / "bad.h5").string();
  auto fails = [&](const std::string& name, const std::string& bytes) {
    std::string in = write(scratch() / name, bytes);
    std::string msg = user_error_of([&] { prepare(options({in}, out)); });
    EXPECT_FALSE(fs::exists(out)) << name;
    EXPECT_FALSE(fs::exists(out + ".tmp")) << name;
    return msg;
  };
  std::string good = "{\"text\": \"fine\"}\n";
  EXPECT_NE(
      fails("a.jsonl", good + good + "{\"text\": oops}\n").find("a.jsonl:3: not a JSON object"),
      std::string::npos);
  EXPECT_NE(fails("b.jsonl", good + "{\"body\": \"x\"}\n").find("b.jsonl:2: no \"text\" field"),
            std::string::npos);
  EXPECT_NE(fails("c.jsonl", good + "{\"text\": 5}\n").find("c.jsonl:2: field \"text\" is number"),
            std::string::npos);
  EXPECT_NE(fails("d.jsonl", good + "{\"text\": \"caf\xe9\"}\n")
                .find("d.jsonl:2: invalid UTF-8 at byte offset 30"),
            std::string::npos);
  EXPECT_NE(fails("e.txt", "abc\xc3").find("e.txt: invalid UTF-8 at byte offset 3"),
            std::string::npos);
  EXPECT_NE(fails("f.jsonl", "").find("hold no documents"), std::string::npos);
  EXPECT_NE(fails("g.jsonl", "{\"text\": \"\"}\n\n").find("1 empty documents skipped"),
            std::string::npos);
  EXPECT_NE(
      fails("h.jsonl.gz", "not gzip at all, but named .gz, and long enough").find("h.jsonl.gz"),
      std::string::npos);
  std::string zst(64, '\0');
  zst.resize(ZSTD_compress(zst.data(), zst.size(), "{\"text\": \"x\"}\n", 14, 1));
  EXPECT_NE(fails("i.jsonl.zst", zst.substr(0, zst.size() - 3)).find("truncated zstd"),
            std::string::npos);
  EXPECT_NE(
      user_error_of([&] { prepare(options({"/nonexistent.jsonl"}, out)); }).find("no such file"),
      std::string::npos);
  PrepareOptions o = options({write(scratch() / "ok.jsonl", good)}, out);
  o.eot = "<|nope|>";
  EXPECT_NE(user_error_of([&] { prepare(o); }).find("end-of-text token '<|nope|>'"),
            std::string::npos);
  // With --invalid-utf8 replace the document goes in with U+FFFD.
  o = options({write(scratch() / "r.jsonl", "{\"text\": \"caf\xe9\"}\n")}, out);
  o.invalid_utf8 = InvalidUtf8::Replace;
  PrepareResult r = prepare(o);
  EXPECT_EQ(r.replaced_utf8, 1);
  std::vector<int32_t> ids = all_tokens(r.files);
  ids.pop_back();
  EXPECT_EQ(Tokenizer::load(tokenizer_path()).decode(ids), "caf\xEF\xBF\xBD");
}

TEST(TokenFile, RefusesTruncatedAndForeignFiles) {
  std::string good = counting_file("good.h5", 10000);
  std::string cut = (scratch() / "cut.h5").string();
  fs::copy_file(good, cut, fs::copy_options::overwrite_existing);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  EXPECT_NE(user_error_of([&] { TokenFile t(cut); }).find("cut.h5"), std::string::npos);
  std::string text = write(scratch() / "text.h5", "plain text, not HDF5");
  EXPECT_NE(user_error_of([&] { TokenFile t(text); }).find("not an HDF5 file"), std::string::npos);
  std::string foreign = (scratch() / "foreign.h5").string();
  {
    h5::File f = h5::File::create(foreign);
    f.write("tokens", Tensor::zeros({4}, DType::i32));
  }
  EXPECT_NE(user_error_of([&] { TokenFile t(foreign); }).find("not a spectra token file"),
            std::string::npos);
}

TEST(Loader, RefusesMismatchedTokenizers) {
  std::string a = counting_file("va.h5", 5000, "sha-a"), b = counting_file("vb.h5", 5000, "sha-b");
  LoaderOptions o{.sources = {{a}}, .seq_len = 16, .batch_size = 2, .model_vocab = 1000};
  EXPECT_NE(user_error_of([&] { Loader l(o); }).find("more than the model's vocabulary of 1000"),
            std::string::npos);
  o = {.sources = {{a}, {b}}, .seq_len = 16, .batch_size = 2};
  EXPECT_NE(user_error_of([&] { Loader l(o); }).find("all data must share one tokenizer"),
            std::string::npos);
  o = {.sources = {{a}}, .seq_len = 16, .batch_size = 2, .tokenizer_sha256 = "sha-b"};
  EXPECT_NE(user_error_of([&] { Loader l(o); }).find("the recipe's tokenizer is sha-b"),
            std::string::npos);
  o = {.sources = {{a}}, .seq_len = 5000, .batch_size = 2};
  EXPECT_NE(user_error_of([&] { Loader l(o); }).find("too little data"), std::string::npos);
}

TEST(Loader, WindowsAndTargets) {
  std::string f = counting_file("w.h5", 1001);
  Loader l({.sources = {{f}}, .seq_len = 10, .batch_size = 4, .seed = 1});
  EXPECT_EQ(l.train_windows(0), 100);
  TokenBatch b = l.next();
  ASSERT_EQ(b.ids.numel(), 40);
  for (int64_t i = 0; i < 40; i++) {
    EXPECT_EQ(b.targets.data<int32_t>()[i], b.ids.data<int32_t>()[i] + 1);
    if (i % 10 == 0) EXPECT_EQ(b.ids.data<int32_t>()[i] % 10, 0);
  }
}

TEST(Loader, RanksAreDisjointAndTogetherMakeTheEpoch) {
  std::string f = counting_file("r.h5", 64 * 8 + 1);  // 64 windows of 8
  auto epoch = [&](int rank, int world, int64_t batch) {
    Loader l({.sources = {{f}},
              .seq_len = 8,
              .batch_size = batch,
              .seed = 42,
              .rank = rank,
              .world = world});
    std::vector<int32_t> seen;
    for (int64_t i = 0; i < 64 / (batch * world); i++)
      for (int32_t x : firsts(l.next())) seen.push_back(x);
    EXPECT_EQ(l.epoch(0), 1u);
    return seen;
  };
  std::vector<int32_t> single = epoch(0, 1, 8), r0 = epoch(0, 2, 4), r1 = epoch(1, 2, 4);
  std::set<int32_t> all(single.begin(), single.end());
  EXPECT_EQ(all.size(), 64u);  // every window once
  std::set<int32_t> s0(r0.begin(), r0.end()), s1(r1.begin(), r1.end()), both = s0;
  both.insert(s1.begin(), s1.end());
  EXPECT_EQ(s0.size() + s1.size(), 64u);  // disjoint
  EXPECT_EQ(both, all);                   // union is the 1-rank epoch
  // Global batch b of 2 ranks is batch b of 1 rank, interleaved.
  EXPECT_EQ(r0[0], single[0]);
  EXPECT_EQ(r1[0], single[1]);
  EXPECT_EQ(r0[1], single[2]);
}

TEST(Loader, SeededOrderAndNewPermutationEachEpoch) {
  std::string f = counting_file("s.h5", 100 * 4 + 1);
  auto order = [&](uint64_t seed, int batches) {
    Loader l({.sources = {{f}}, .seq_len = 4, .batch_size = 10, .seed = seed});
    std::vector<int32_t> out;
    for (int i = 0; i < batches; i++)
      for (int32_t x : firsts(l.next())) out.push_back(x);
    return out;
  };
  std::vector<int32_t> a = order(5, 20);
  EXPECT_EQ(a, order(5, 20));
  EXPECT_NE(a, order(6, 20));
  std::vector<int32_t> e1(a.begin(), a.begin() + 100), e2(a.begin() + 100, a.end());
  EXPECT_NE(e1, e2);
  EXPECT_EQ(std::set<int32_t>(e2.begin(), e2.end()).size(), 100u);
  for (uint64_t n : {1u, 2u, 3u, 5u, 17u, 1000u, 4097u}) {
    Permutation p(n, 99);
    std::set<uint64_t> s;
    for (uint64_t i = 0; i < n; i++) s.insert(p(i));
    EXPECT_EQ(s.size(), n);
    EXPECT_LT(*s.rbegin(), n);
  }
}

TEST(Loader, SaveAndRestoreGiveTheSameNextBatches) {
  std::string f = counting_file("st.h5", 50 * 16 + 1);
  LoaderOptions o{.sources = {{f}}, .seq_len = 16, .batch_size = 3, .seed = 9, .prefetch = 3};
  Loader l(o);
  for (int i = 0; i < 23; i++) l.next();  // past the first epoch
  std::string saved = l.state().to_json();
  std::vector<std::vector<int32_t>> next;
  for (int i = 0; i < 5; i++) next.push_back(firsts(l.next()));
  Loader resumed(o);
  resumed.next();
  resumed.restore(LoaderState::from_json(saved));
  for (int i = 0; i < 5; i++) EXPECT_EQ(firsts(resumed.next()), next[size_t(i)]) << i;
  l.restore(LoaderState::from_json(saved));  // the same loader can go back too
  EXPECT_EQ(firsts(l.next()), next[0]);
  LoaderOptions other = o;
  other.seed = 10;
  Loader wrong(other);
  EXPECT_NE(user_error_of([&] { wrong.restore(LoaderState::from_json(saved)); }).find("seed 9"),
            std::string::npos);
  EXPECT_NE(user_error_of([] { LoaderState::from_json("{\"samples\": 1}"); }).find("malformed"),
            std::string::npos);
}

TEST(Loader, MixtureWeightsAndValidationSplit) {
  std::string a = counting_file("ma.h5", 1000 * 4 + 1), b = counting_file("mb.h5", 2000 * 4 + 1);
  Loader l({.sources = {{a, 3.0}, {b, 1.0}},
            .seq_len = 4,
            .batch_size = 8,
            .seed = 1,
            .val_fraction = 0.1});
  EXPECT_EQ(l.train_windows(0), 900);
  EXPECT_EQ(l.val_windows(), 100 + 200);
  for (int i = 0; i < 50; i++) l.next();
  LoaderState s = l.state();
  EXPECT_EQ(s.samples, 400u);
  EXPECT_EQ(s.drawn[0], 300u);  // exactly 3:1
  EXPECT_EQ(s.drawn[1], 100u);
  // Training never reaches the held-out tail: windows >= 900 of a (first token >= 3600).
  std::string f = counting_file("v.h5", 100 * 4 + 1);
  Loader v({.sources = {{f}}, .seq_len = 4, .batch_size = 10, .seed = 2, .val_fraction = 0.2});
  for (int i = 0; i < 30; i++)
    for (int32_t x : firsts(v.next())) EXPECT_LT(x, 80 * 4);
  std::vector<int32_t> val = firsts(v.val_batch(0));
  EXPECT_EQ(val.front(), 80 * 4);
  EXPECT_EQ(val.back(), 89 * 4);
  EXPECT_EQ(firsts(v.val_batch(2)).front(), 80 * 4);  // wraps around the 20 windows
}
