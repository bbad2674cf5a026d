// Reading raw text: plain files, or gzip-compressed ones (".gz", read through zlib).
#pragma once
#include <string>

namespace spectra {

// The whole file's bytes (decompressed for .gz). Throws a UserError naming the file if it is
// missing, unreadable or not valid gzip.
std::string read_text_file(const std::string& path);

}  // namespace spectra
