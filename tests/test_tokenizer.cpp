// The BPE tokenizer's C++-only properties: hashing, UTF-8 handling, the byte alphabet, merges,
// added tokens, round trips, training, thread safety and error messages. Equality with Hugging
// Face `tokenizers` is tested in tests/python/test_tokenizer_hf.py.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "core/error.h"
#include "data/bpe_train.h"
#include "data/bytelevel.h"
#include "data/regex.h"
#include "data/sha256.h"
#include "data/text.h"
#include "data/tokenizer.h"
#include "data/utf8.h"

using namespace spectra;

namespace {
// A tokenizer.json: <|endoftext|> (id 0), the 256 bytes (1..256), then merges h+e, l+l, he+ll,
// hell+o, Ġ+w.
std::string tiny_json(const std::string& extra_added = "", const std::string& normalizer = "null") {
  std::string vocab = "\"<|endoftext|>\": 0";
  for (int b = 0; b < 256; b++) {
    std::string c = bytelevel::char_of(uint8_t(b));
    if (c == "\"" || c == "\\") c = "\\" + c;
    vocab += fmt::format(", \"{}\": {}", c, b + 1);
  }
  vocab += ", \"he\": 257, \"ll\": 258, \"hell\": 259, \"hello\": 260, \"Ġw\": 261";
  return fmt::format(R"({{
    "added_tokens": [{{"id": 0, "content": "<|endoftext|>", "special": true, "normalized": false,
                      "single_word": false, "lstrip": false, "rstrip": false}}{}],
    "normalizer": {},
    "pre_tokenizer": {{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}},
    "decoder": {{"type": "ByteLevel"}},
    "model": {{"type": "BPE", "vocab": {{{}}},
               "merges": ["h e", ["l", "l"], "he ll", "hell o", "Ġ w"]}}}})",
                     extra_added, normalizer, vocab);
}

std::string random_utf8(std::mt19937& rng, int chars) {
  static const char32_t pool[] = {'a',    'b',  ' ',    ' ',      '\n',  '\t',   '\'',
                                  's',    '1',  '.',    0xE9,     0x301, 0x4E2D, 0x1F600,
                                  0x200D, 0xA0, 0x3000, 0x10FFFF, '<',   '|'};
  std::string s;
  for (int i = 0; i < chars; i++) utf8::append(s, pool[rng() % std::size(pool)]);
  return s;
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
}  // namespace

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 h;  // a million 'a', fed in uneven pieces
  std::string a(1000, 'a');
  for (int i = 0; i < 1000; i++)
    h.update(std::string_view(a).substr(0, 1 + i % 7)),
        h.update(std::string_view(a).substr(0, 1000 - 1 - i % 7));
  EXPECT_EQ(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Utf8, FindsTheFirstInvalidByte) {
  EXPECT_EQ(utf8::find_invalid("plain ascii text, long enough for the fast path"), utf8::npos);
  EXPECT_EQ(utf8::find_invalid("é中😀\xf4\x8f\xbf\xbf"), utf8::npos);
  EXPECT_EQ(utf8::find_invalid("abcdefghij\xff"), 10u);
  EXPECT_EQ(utf8::find_invalid("a\xc0\xaf"), 1u);         // overlong '/'
  EXPECT_EQ(utf8::find_invalid("ab\xed\xa0\x80"), 2u);    // a surrogate
  EXPECT_EQ(utf8::find_invalid("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(utf8::find_invalid("xyz\xe4\xb8"), 3u);       // truncated
}

TEST(Utf8, ReplacesMaximalSubpartsLikePython) {
  // Expected strings are Python's bytes.decode("utf-8", errors="replace").
  const std::string R = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8::replace_invalid("a\xffz"), "a" + R + "z");
  EXPECT_EQ(utf8::replace_invalid("\xe4\xb8"), R);              // one truncated sequence
  EXPECT_EQ(utf8::replace_invalid("\xf0\x80\x80"), R + R + R);  // F0 80 is never valid
  EXPECT_EQ(utf8::replace_invalid("\xed\xa0\x80"), R + R + R);  // surrogate
  EXPECT_EQ(utf8::replace_invalid("\xf0\x9f\x98x"), R + "x");
  EXPECT_EQ(utf8::replace_invalid("ok é"), "ok é");
}

TEST(ByteLevel, AlphabetIsABijection) {
  EXPECT_EQ(bytelevel::char_of(' '), "Ġ");
  EXPECT_EQ(bytelevel::char_of('\n'), "Ċ");
  EXPECT_EQ(bytelevel::char_of('A'), "A");
  std::string all;
  for (int b = 0; b < 256; b++) all += char(b);
  std::string back;
  ASSERT_TRUE(bytelevel::decode(bytelevel::encode(all), back));
  EXPECT_EQ(back, all);
  EXPECT_FALSE(bytelevel::decode("中", back));
}

TEST(Regex, OnigurumaClassesAndEmptyMatches) {
  EXPECT_EQ(onig_compatible_pattern(R"(\s+(?!\S)|[^\s\p{L}])"),
            R"([\t-\r\x{85}\p{Z}]+(?![^\t-\r\x{85}\p{Z}])|[^\t-\r\x{85}\p{Z}\p{L}])");
  Regex gpt2(kGpt2Pattern);
  std::vector<std::pair<uint32_t, uint32_t>> m;
  std::string s = "Hello  world's 123\u180e!";  // U+180E is not a space for Oniguruma
  gpt2.find_all(s, m);
  std::vector<std::string> words;
  for (auto [b, e] : m) words.push_back(s.substr(b, e - b));
  EXPECT_EQ(words, (std::vector<std::string>{"Hello", " ", " world", "'s", " 123", "\u180e!"}));
  m.clear();
  Regex star("a*");  // onig's find_iter: empty, "aa", then the empty match at the end
  star.find_all("baa", m);
  EXPECT_EQ(m, (std::vector<std::pair<uint32_t, uint32_t>>{{0, 0}, {1, 3}}));
}

TEST(Tokenizer, MergesByRank) {
  Tokenizer tok = Tokenizer::parse(tiny_json(), "tiny.json");
  EXPECT_EQ(tok.vocab_size(), 262);
  EXPECT_EQ(tok.encode("hello"), (std::vector<int32_t>{260}));
  // " hello" is one word: Ġ h e l l o -> Ġ he ll o -> Ġ hell o -> Ġ hello.
  EXPECT_EQ(tok.encode("hello hello world"),
            (std::vector<int32_t>{260, 1 + ' ', 260, 261, 1 + 'o', 1 + 'r', 1 + 'l', 1 + 'd'}));
  EXPECT_EQ(tok.encode("hi<|endoftext|>hello"), (std::vector<int32_t>{1 + 'h', 1 + 'i', 0, 260}));
  EXPECT_EQ(tok.encode(""), std::vector<int32_t>{});
  EXPECT_EQ(tok.token_to_id("hello"), 260);
  EXPECT_EQ(tok.id_to_token(261), "Ġw");
  EXPECT_TRUE(tok.is_special(0));
}

TEST(Tokenizer, RoundTripsArbitraryText) {
  Tokenizer tok = Tokenizer::parse(tiny_json(), "tiny.json");
  std::mt19937 rng(7);
  for (int i = 0; i < 200; i++) {
    std::string s = random_utf8(rng, int(rng() % 60));
    std::vector<int32_t> ids = tok.encode(s);
    EXPECT_EQ(tok.decode(ids), s);
    EXPECT_EQ(tok.decode_bytes(ids), s);
  }
  EXPECT_EQ(tok.decode({0, 260}, /*skip_special=*/true), "hello");
  // A lone continuation byte decodes to U+FFFD (HF's lossy decode); decode_bytes keeps it.
  EXPECT_EQ(tok.decode({1 + 0x80}), "\xEF\xBF\xBD");
  EXPECT_EQ(tok.decode_bytes({1 + 0x80}), "\x80");
}

TEST(Tokenizer, ThreadsEncodeIdentically) {
  Tokenizer tok = Tokenizer::parse(tiny_json(), "tiny.json");
  std::mt19937 rng(3);
  std::vector<std::string> texts;
  for (int i = 0; i < 64; i++) texts.push_back(random_utf8(rng, 500));
  std::vector<std::vector<int32_t>> serial;
  for (auto& t : texts) serial.push_back(tok.encode(t));
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 1);
  for (int k = 0; k < 4; k++)
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 3; rep++)
        for (size_t i = 0; i < texts.size(); i++)
          if (tok.encode(texts[(i + size_t(k)) % texts.size()]) !=
              serial[(i + size_t(k)) % texts.size()])
            ok[size_t(k)] = 0;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, std::vector<int>(4, 1));
}

TEST(Tokenizer, AddedTokensLongestFirst) {
  std::string extra = R"(, {"id": 262, "content": "  ", "special": false, "normalized": true},
                          {"id": 263, "content": "   ", "special": false, "normalized": true},
                          {"id": 264, "content": "<m>", "special": false, "normalized": false,
                           "lstrip": true, "rstrip": true, "single_word": true})";
  Tokenizer tok = Tokenizer::parse(tiny_json(extra), "tiny.json");
  EXPECT_EQ(tok.vocab_size(), 265);
  EXPECT_EQ(tok.encode("a     b"), (std::vector<int32_t>{1 + 'a', 263, 262, 1 + 'b'}));
  EXPECT_EQ(tok.encode("x <m> y"), (std::vector<int32_t>{1 + 'x', 264, 1 + 'y'}));
  // single_word: inside a word it is plain text.
  EXPECT_EQ(tok.encode("a<m>b").size(), 5u);
  EXPECT_EQ(tok.decode(tok.encode("a     b")), "a     b");
}

TEST(Tokenizer, NfcNormalizer) {
  Tokenizer tok = Tokenizer::parse(tiny_json("", R"({"type": "NFC"})"), "nfc.json");
  EXPECT_EQ(tok.encode("e\xcc\x81 A\xcc\x8a"), tok.encode("\xc3\xa9 \xc3\x85"));
  EXPECT_EQ(tok.encode("hello"), (std::vector<int32_t>{260}));
  Tokenizer seq = Tokenizer::parse(
      tiny_json("", R"({"type": "Sequence", "normalizers": [{"type": "NFC"}]})"), "s.json");
  EXPECT_EQ(seq.encode("e\xcc\x81"), tok.encode("\xc3\xa9"));
}

TEST(Tokenizer, ClearErrors) {
  Tokenizer tok = Tokenizer::parse(tiny_json(), "tiny.json");
  EXPECT_NE(user_error_of([&] { tok.encode("abc\xff"); }).find("invalid UTF-8 at byte offset 3"),
            std::string::npos);
  EXPECT_NE(
      user_error_of([] { Tokenizer::parse("{not json", "x.json"); }).find("x.json: not valid JSON"),
      std::string::npos);
  EXPECT_NE(user_error_of([] { Tokenizer::parse("{}", "x.json"); }).find("no \"model\""),
            std::string::npos);
  EXPECT_NE(user_error_of([] {
              Tokenizer::parse(tiny_json("", R"({"type": "Lowercase"})"), "x.json");
            }).find("normalizer 'Lowercase' is not supported"),
            std::string::npos);
  std::string bad_merge = tiny_json();
  bad_merge.replace(bad_merge.find("\"Ġ w\""), std::string("\"Ġ w\"").size(), "\"Ġ zz\"");
  EXPECT_NE(user_error_of([&] { Tokenizer::parse(bad_merge, "x.json"); }).find("merge 4"),
            std::string::npos);
  std::string wordlevel = tiny_json();
  wordlevel.replace(wordlevel.find("\"ByteLevel\", \"add_prefix_space\""), 11, "\"Whitespace\"");
  EXPECT_NE(user_error_of([&] {
              Tokenizer::parse(wordlevel, "x.json");
            }).find("'Whitespace' is not supported"),
            std::string::npos);
  EXPECT_NE(
      user_error_of([] { Tokenizer::load("/nonexistent/tokenizer.json"); }).find("cannot open"),
      std::string::npos);
  EXPECT_NE(user_error_of([&] { tok.decode_bytes({9999}); }).find("not in the vocabulary"),
            std::string::npos);
}

TEST(BpeTrainer, LearnsDeterministicallyAndRoundTrips) {
  std::string text =
      read_text_file(std::string(SPECTRA_SOURCE_DIR) + "/data/corpus/kjv.txt.gz").substr(0, 300000);
  auto train = [&] {
    BpeTrainer t({.vocab_size = 600, .special_tokens = {"<|endoftext|>", "<|pad|>"}});
    t.add_text(text);
    t.add_text("an <|endoftext|> in the text is not counted");
    return t.train();
  };
  std::string json = train();
  EXPECT_EQ(json, train());
  Tokenizer tok = Tokenizer::parse(json, "trained");
  EXPECT_EQ(tok.vocab_size(), 600);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 0);
  EXPECT_EQ(tok.token_to_id("<|pad|>"), 1);
  std::vector<int32_t> ids = tok.encode(text);
  EXPECT_LT(ids.size(), text.size() / 2);  // it learned merges
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_NE(tok.token_to_id("Ġthe"), -1);
  EXPECT_NE(user_error_of([] { BpeTrainer({.vocab_size = 100}); }).find("below the 257"),
            std::string::npos);
}
