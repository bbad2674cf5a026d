// The parts of a loaded Tokenizer (internal to data/tokenizer*.cpp).
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/added_tokens.h"
#include "data/bpe.h"
#include "data/normalize.h"
#include "data/pretokenize.h"
#include "data/tokenizer.h"

namespace spectra {

struct Tokenizer::Impl {
  std::string source, sha256;
  std::unordered_map<std::string, int32_t> vocab;  // the BPE model's
  std::vector<std::string> tokens;                 // by id: model tokens, then added contents
  std::vector<uint8_t> kind;                       // by id: kAbsent, kModel, kAdded, kSpecial
  std::vector<AddedToken> added;
  std::unordered_map<std::string, int32_t> added_ids;
  AddedTokenMatcher raw_matcher, normalized_matcher;
  Normalizer normalizer = Normalizer::None;
  PreTokenizer pre;
  std::unique_ptr<Bpe> bpe;
  std::string decoder_error;  // why decode() is refused; empty when the decoder is ByteLevel
  static constexpr uint8_t kAbsent = 0, kModel = 1, kAdded = 2, kSpecial = 3;
};

}  // namespace spectra
