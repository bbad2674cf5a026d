#include "data/documents.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/input.h"
#include "data/utf8.h"

namespace spectra {

bool is_jsonl(const std::string& path, const std::string& format) {
  if (format == "jsonl") return true;
  if (format == "text") return false;
  if (format != "auto") user_error("--format must be auto, text or jsonl, not '{}'", format);
  std::string p = path;
  for (const char* z : {".gz", ".zst", ".zstd"})
    if (p.ends_with(z)) p.resize(p.size() - std::string(z).size());
  return p.ends_with(".jsonl") || p.ends_with(".json") || p.ends_with(".ndjson");
}

void read_chunks(const std::string& path, int32_t file, bool jsonl, size_t chunk_bytes,
                 const std::function<bool(RawChunk&&)>& emit, std::atomic<uint64_t>& consumed) {
  auto in = InputStream::open(path);
  uint64_t base = consumed.load();
  if (!jsonl) {
    RawChunk c{file, false, {}, nullptr};
    c.records.push_back({read_all(*in), 0, 0});
    consumed = base + in->consumed();
    emit(std::move(c));
    return;
  }
  LineReader lines(*in);
  RawChunk c{file, true, {}, nullptr};
  size_t bytes = 0;
  int64_t line_no = 0;
  RawRecord r;
  while (lines.next(r.data, r.offset)) {
    r.line = ++line_no;
    bytes += r.data.size();
    c.records.push_back(std::move(r));
    r = RawRecord();
    if (bytes >= chunk_bytes) {
      consumed = base + in->consumed();
      if (!emit(std::move(c))) return;
      c = RawChunk{file, true, {}, nullptr};
      bytes = 0;
    }
  }
  consumed = base + in->consumed();
  if (!c.records.empty()) emit(std::move(c));
}

namespace {
std::string where(const std::string& path, const RawRecord& r) {
  return r.line > 0 ? fmt::format("{}:{}", path, r.line) : path;
}

// Checks (or repairs) UTF-8; the returned view is `s` or the repaired copy in `fixed`.
std::string_view checked_utf8(std::string_view s, const std::string& path, const RawRecord& r,
                              InvalidUtf8 policy, std::string& fixed, int64_t* replaced) {
  size_t bad = utf8::find_invalid(s);
  if (bad == utf8::npos) return s;
  if (policy == InvalidUtf8::Error)
    user_error(
        "{}: invalid UTF-8 at byte offset {} of the file (byte 0x{:02x}); fix the input or "
        "pass --invalid-utf8 replace to substitute U+FFFD",
        where(path, r), r.offset + bad, static_cast<unsigned char>(s[bad]));
  fixed = utf8::replace_invalid(s);
  if (replaced) (*replaced)++;
  return fixed;
}
}  // namespace

bool record_text(const RawRecord& r, const std::string& path, bool jsonl, const std::string& field,
                 InvalidUtf8 policy, std::string& text, int64_t* replaced) {
  std::string fixed;
  if (!jsonl) {
    std::string_view s = checked_utf8(r.data, path, r, policy, fixed, replaced);
    text.assign(s);
    return true;
  }
  if (r.data.find_first_not_of(" \t\r") == std::string::npos) return false;  // blank line
  std::string_view line = checked_utf8(r.data, path, r, policy, fixed, replaced);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    std::string msg = e.what();
    if (auto p = msg.find("parse error"); p != std::string::npos) msg = msg.substr(p);
    user_error("{}: not a JSON object ({})", where(path, r), msg);
  }
  auto it = j.is_object() ? j.find(field) : j.end();
  if (!j.is_object() || it == j.end())
    user_error("{}: no \"{}\" field (choose the field with --text-field)", where(path, r), field);
  if (!it->is_string())
    user_error("{}: field \"{}\" is {}, not a string", where(path, r), field, it->type_name());
  text = it->get<std::string>();
  return true;
}

}  // namespace spectra
