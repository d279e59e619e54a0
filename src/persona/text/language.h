#pragma once
// Language detection between Chinese and English, by script: which share of the letters are
// Han characters. Enough for the two languages Persona serves; "mixed" when both carry weight.
#include <string>
#include <string_view>

namespace persona::text {

enum class Language { Chinese, English, Mixed, Unknown };
const char* language_code(Language l);  // "zh", "en", "mixed", "unknown"

struct LanguageGuess {
  Language language = Language::Unknown;
  double han_share = 0;  // Han characters / (Han characters + Latin letters)
  int letters = 0;       // Han characters + Latin letters seen
};

LanguageGuess detect_language(std::string_view utf8);

}  // namespace persona::text
