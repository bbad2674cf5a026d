#include "data/tokenizer.h"

#include "core/error.h"
#include "data/bytelevel.h"
#include "data/tokenizer_impl.h"
#include "data/utf8.h"

namespace spectra {

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

namespace {
// Calls f(id) for added tokens and g(begin, end) for the text between them, following HF's
// AddedVocabulary::extract_and_normalize: raw-matched tokens first over the whole text, then
// normalized-matched ones within each remaining piece after normalizing it.
template <typename F, typename G>
void for_each_segment(const Tokenizer::Impl& m, std::string_view text, F&& on_token, G&& on_text) {
  std::vector<TextSegment> outer, inner;
  std::string storage;
  m.raw_matcher.split(text, outer);
  for (const TextSegment& o : outer) {
    if (o.id >= 0) {
      on_token(o.id);
      continue;
    }
    std::string_view piece =
        normalize(m.normalizer, text.substr(o.begin, o.end - o.begin), storage);
    inner.clear();
    m.normalized_matcher.split(piece, inner);
    for (const TextSegment& s : inner) {
      if (s.id >= 0)
        on_token(s.id);
      else
        on_text(piece.substr(s.begin, s.end - s.begin));
    }
  }
}

void check_utf8(std::string_view text) {
  size_t bad = utf8::find_invalid(text);
  if (bad != utf8::npos)
    user_error("invalid UTF-8 at byte offset {} (byte 0x{:02x}): spectra tokenizes UTF-8 text only",
               bad, static_cast<unsigned char>(text[bad]));
}
}  // namespace

void Tokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  check_utf8(text);
  if (text.size() >= (size_t(1) << 32))
    user_error("a single text of {} bytes is over the 4 GiB limit", text.size());
  std::vector<std::string_view> words;
  std::deque<std::string> arena;
  for_each_segment(
      *impl_, text, [&](int32_t id) { out.push_back(id); },
      [&](std::string_view piece) {
        arena.clear();
        impl_->pre.split(piece, words, arena);
        for (std::string_view w : words) impl_->bpe->encode_word(w, out);
      });
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 1);
  encode(text, out);
  return out;
}

void Tokenizer::pre_tokenize(std::string_view text, std::vector<std::string>& out) const {
  check_utf8(text);
  std::vector<std::string_view> words;
  std::deque<std::string> arena;
  for_each_segment(
      *impl_, text, [](int32_t) {},
      [&](std::string_view piece) {
        arena.clear();
        impl_->pre.split(piece, words, arena);
        for (std::string_view w : words) out.emplace_back(w);
      });
}

std::string Tokenizer::decode_bytes(const std::vector<int32_t>& ids, bool skip_special) const {
  if (!impl_->decoder_error.empty()) user_error("{}", impl_->decoder_error);
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= impl_->kind.size() || impl_->kind[size_t(id)] == Impl::kAbsent)
      user_error("token id {} is not in the vocabulary of {}", id, impl_->source);
    uint8_t k = impl_->kind[size_t(id)];
    const std::string& tok = impl_->tokens[size_t(id)];
    if (k == Impl::kSpecial && skip_special) continue;
    // Added tokens are their text; model tokens are byte-level strings (a token with a
    // character outside the byte alphabet stands for its own UTF-8 bytes, as in HF).
    std::string bytes;
    out += k == Impl::kModel && bytelevel::decode(tok, bytes) ? bytes : tok;
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  if (!impl_->decoder_error.empty()) user_error("{}", impl_->decoder_error);
  // HF decodes the model tokens between two added tokens as one chunk (bytes, then lossy UTF-8)
  // and inserts each added token's text as it is. Unknown ids are skipped, as in HF.
  std::string out, chunk;
  auto flush = [&] {
    out += utf8::replace_invalid(chunk);
    chunk.clear();
  };
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= impl_->kind.size()) continue;
    uint8_t k = impl_->kind[size_t(id)];
    const std::string& tok = impl_->tokens[size_t(id)];
    if (k == Impl::kAbsent) continue;
    if (k == Impl::kModel) {
      std::string bytes;
      chunk += bytelevel::decode(tok, bytes) ? bytes : tok;
      continue;
    }
    if (k == Impl::kSpecial && skip_special) continue;
    flush();
    out += tok;
  }
  flush();
  return out;
}

int64_t Tokenizer::vocab_size() const { return int64_t(impl_->kind.size()); }

int32_t Tokenizer::token_to_id(std::string_view token) const {
  std::string t(token);
  if (auto it = impl_->added_ids.find(t); it != impl_->added_ids.end()) return it->second;
  if (auto it = impl_->vocab.find(t); it != impl_->vocab.end()) return it->second;
  return -1;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || size_t(id) >= impl_->tokens.size()) return {};
  return impl_->tokens[size_t(id)];
}

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && size_t(id) < impl_->kind.size() && impl_->kind[size_t(id)] == Impl::kSpecial;
}

const std::string& Tokenizer::sha256() const { return impl_->sha256; }
const std::string& Tokenizer::source() const { return impl_->source; }

}  // namespace spectra
