// Reading tokenizer.json: which parts of HF's format spectra supports, and one clear error
// naming the key for everything else.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "data/sha256.h"
#include "data/tokenizer_impl.h"

namespace spectra {

using json = nlohmann::json;

namespace {
bool flag(const json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? dflt : it->get<bool>();
}

std::string type_of(const json& j, const std::string& where) {
  auto it = j.find("type");
  if (it == j.end() || !it->is_string()) user_error("{}: missing \"type\"", where);
  return it->get<std::string>();
}

void parse_pre_step(const json& j, const std::string& where, std::vector<PreTokenizeStep>& steps) {
  std::string type = type_of(j, where);
  PreTokenizeStep s;
  if (type == "ByteLevel") {
    s.kind = PreTokenizeStep::ByteLevel;
    s.add_prefix_space = flag(j, "add_prefix_space", true);
    if (flag(j, "use_regex", true)) s.regex = std::make_shared<Regex>(kGpt2Pattern);
  } else if (type == "Split") {
    s.kind = PreTokenizeStep::Split;
    const json& pat = j.at("pattern");
    if (pat.contains("Regex"))
      s.regex = std::make_shared<Regex>(pat["Regex"].get<std::string>());
    else if (pat.contains("String"))
      s.regex = std::make_shared<Regex>(pat["String"].get<std::string>(), true);
    else
      user_error("{}.pattern: expected {{\"Regex\": ...}} or {{\"String\": ...}}", where);
    s.behavior = parse_split_behavior(j.value("behavior", "Isolated"), where);
    s.invert = flag(j, "invert", false);
  } else if (type == "Digits") {
    s.kind = PreTokenizeStep::Split;
    s.regex = std::make_shared<Regex>(R"(\p{N})");
    s.behavior =
        flag(j, "individual_digits", false) ? SplitBehavior::Isolated : SplitBehavior::Contiguous;
  } else if (type == "Sequence") {
    const json& list = j.at("pretokenizers");
    for (size_t i = 0; i < list.size(); i++)
      parse_pre_step(list[i], fmt::format("{}.pretokenizers[{}]", where, i), steps);
    return;
  } else {
    user_error(
        "{}: pre-tokenizer '{}' is not supported (spectra reads byte-level BPE "
        "tokenizers: ByteLevel, Split, Digits, Sequence)",
        where, type);
  }
  steps.push_back(std::move(s));
}

// Spectra supports no normalizer or NFC (alone, or alone in a Sequence).
Normalizer parse_normalizer(const json& j, const std::string& where) {
  if (j.is_null()) return Normalizer::None;
  std::string type = type_of(j, where);
  if (type == "NFC") return Normalizer::NFC;
  if (type == "Sequence") {
    const json& list = j.at("normalizers");
    Normalizer n = Normalizer::None;
    for (size_t i = 0; i < list.size(); i++) {
      Normalizer step = parse_normalizer(list[i], fmt::format("{}.normalizers[{}]", where, i));
      if (step != Normalizer::None && n != Normalizer::None)
        user_error("{}: more than one normalizer in the sequence is not supported", where);
      if (step != Normalizer::None) n = step;
    }
    return n;
  }
  user_error("{}: normalizer '{}' is not supported (spectra supports none, or NFC)", where, type);
}

// Token ids index spectra's tables directly: an integer in [0, kMaxTokenId] (far above any
// real vocabulary; the largest are about 2^18), checked before any table is sized by it.
constexpr int64_t kMaxTokenId = (int64_t(1) << 24) - 1;
int32_t token_id(const json& j, const std::string& where) {
  if (!j.is_number_integer() || j.get<int64_t>() < 0 || j.get<int64_t>() > kMaxTokenId)
    user_error("{}: token id {} is not an integer in [0, {}]", where, j.dump(), kMaxTokenId);
  return int32_t(j.get<int64_t>());
}

std::pair<std::string, std::string> parse_merge(const json& m, const std::string& where) {
  if (m.is_array() && m.size() == 2) return {m[0].get<std::string>(), m[1].get<std::string>()};
  if (m.is_string()) {
    std::string s = m.get<std::string>();
    size_t sp = s.find(' ');
    if (sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos)
      return {s.substr(0, sp), s.substr(sp + 1)};
  }
  user_error("{}: a merge is \"a b\" or [\"a\", \"b\"], got {}", where, m.dump());
}
}  // namespace

Tokenizer Tokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) user_error("{}: cannot open tokenizer", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

Tokenizer Tokenizer::parse(std::string_view text, const std::string& where) {
  auto impl = std::make_unique<Impl>();
  impl->source = where;
  impl->sha256 = sha256_hex(text);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    user_error("{}: not valid JSON ({})", where, e.what());
  }
  try {
    if (!j.is_object() || !j.contains("model"))
      user_error("{}: no \"model\" (not a tokenizer.json?)", where);
    const json& model = j["model"];
    std::string mw = where + ": model";
    if (model.contains("type") && model["type"] != "BPE")
      user_error("{}.type is '{}': spectra reads BPE tokenizers only", mw,
                 model["type"].get<std::string>());
    if (!model.contains("vocab") || !model["vocab"].is_object()) user_error("{}.vocab missing", mw);
    if (model.contains("dropout") && !model["dropout"].is_null() &&
        model["dropout"].get<double>() != 0)
      user_error("{}.dropout is set: BPE dropout is for training-time augmentation, not supported",
                 mw);
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(k) && !model[k].is_null() && !model[k].get<std::string>().empty())
        user_error("{}.{} is set: not a byte-level BPE tokenizer", mw, k);
    if (flag(model, "byte_fallback", false))
      user_error("{}.byte_fallback is set: not a byte-level BPE tokenizer", mw);

    int32_t max_id = -1;
    for (auto& [tok, id] : model["vocab"].items()) {
      int32_t v = token_id(id, fmt::format("{}.vocab['{}']", mw, tok));
      impl->vocab.emplace(tok, v);
      max_id = std::max(max_id, v);
    }
    std::vector<std::pair<std::string, std::string>> merges;
    if (model.contains("merges")) {
      const json& ml = model["merges"];
      merges.reserve(ml.size());
      for (size_t i = 0; i < ml.size(); i++)
        merges.push_back(parse_merge(ml[i], fmt::format("{}.merges[{}]", mw, i)));
    }
    BpeOptions opt;
    opt.ignore_merges = flag(model, "ignore_merges", false);
    opt.fuse_unk = flag(model, "fuse_unk", false);
    if (model.contains("unk_token") && !model["unk_token"].is_null()) {
      std::string unk = model["unk_token"].get<std::string>();
      auto it = impl->vocab.find(unk);
      if (it == impl->vocab.end())
        user_error("{}.unk_token '{}' is not in the vocabulary", mw, unk);
      opt.unk_id = it->second;
    }
    impl->bpe = std::make_unique<Bpe>(impl->vocab, merges, opt, where);

    std::vector<AddedToken> raw, normalized;
    if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
      for (const json& a : j["added_tokens"]) {
        AddedToken t;
        t.id = token_id(a.at("id"), where + ": added_tokens");
        t.content = a.at("content").get<std::string>();
        t.special = flag(a, "special", false);
        t.single_word = flag(a, "single_word", false);
        t.lstrip = flag(a, "lstrip", false);
        t.rstrip = flag(a, "rstrip", false);
        t.normalized = flag(a, "normalized", !t.special);
        if (t.content.empty()) continue;  // HF ignores empty added tokens
        max_id = std::max(max_id, t.id);
        impl->added_ids[t.content] = t.id;
        impl->added.push_back(t);
      }
    }
    impl->normalizer = parse_normalizer(j.value("normalizer", json()), where + ": normalizer");
    // HF's matching order: special tokens first, then the others (the first listed wins a tie).
    // Normalized tokens match the normalized text, so their content is normalized too.
    for (int pass = 0; pass < 2; pass++)
      for (AddedToken t : impl->added) {
        if (t.special != (pass == 0)) continue;
        if (t.normalized) {
          std::string storage;
          t.content = std::string(normalize(impl->normalizer, t.content, storage));
        }
        (t.normalized ? normalized : raw).push_back(t);
      }
    impl->raw_matcher = AddedTokenMatcher(std::move(raw));
    impl->normalized_matcher = AddedTokenMatcher(std::move(normalized));

    impl->tokens.assign(size_t(max_id + 1), std::string());
    impl->kind.assign(size_t(max_id + 1), Impl::kAbsent);
    for (auto& [tok, id] : impl->vocab) {
      impl->tokens[size_t(id)] = tok;
      impl->kind[size_t(id)] = Impl::kModel;
    }
    for (const AddedToken& t : impl->added) {
      impl->tokens[size_t(t.id)] = t.content;
      impl->kind[size_t(t.id)] = t.special ? Impl::kSpecial : Impl::kAdded;
    }

    std::vector<PreTokenizeStep> steps;
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null())
      parse_pre_step(j["pre_tokenizer"], where + ": pre_tokenizer", steps);
    bool byte_level = false;
    for (const auto& s : steps) byte_level |= s.kind == PreTokenizeStep::ByteLevel;
    if (!byte_level)
      user_error(
          "{}: pre_tokenizer has no ByteLevel step: spectra reads byte-level BPE tokenizers "
          "(GPT-2, GPT-NeoX, Llama 3 style)",
          where);
    impl->pre = PreTokenizer(std::move(steps));

    const json dec = j.value("decoder", json());
    if (dec.is_null() || !dec.is_object() || dec.value("type", "") != "ByteLevel")
      impl->decoder_error =
          fmt::format("{}: decoder is {}, not ByteLevel: spectra cannot decode with it", where,
                      dec.is_null() ? "null" : dec.value("type", "?"));
  } catch (const json::exception& e) {
    user_error("{}: malformed tokenizer.json ({})", where, e.what());
  }
  return Tokenizer(std::move(impl));
}

}  // namespace spectra
