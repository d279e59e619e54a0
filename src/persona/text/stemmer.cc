#include "persona/text/stemmer.h"

#include <libstemmer.h>

#include <memory>

namespace persona::text {

std::string stem_english(std::string_view word) {
  // Only ASCII words: Snowball's English rules mean nothing for Han or other scripts.
  for (unsigned char c : word)
    if (c >= 0x80) return std::string(word);
  struct Deleter {
    void operator()(sb_stemmer* s) const { sb_stemmer_delete(s); }
  };
  thread_local std::unique_ptr<sb_stemmer, Deleter> stemmer(sb_stemmer_new("english", "UTF_8"));
  if (!stemmer) return std::string(word);  // out of memory: unstemmed is still correct text
  const auto* out = sb_stemmer_stem(stemmer.get(), reinterpret_cast<const sb_symbol*>(word.data()), static_cast<int>(word.size()));
  if (!out) return std::string(word);
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(sb_stemmer_length(stemmer.get())));
}

}  // namespace persona::text
