#pragma once
// Language detection between Chinese and English, by script: which share of the letters are
// Han characters. Enough for the two languages Persona serves; "mixed" when both carry weight.
// Japanese, which writes with Han characters too, is told apart by its kana: it is reported as
// "ja" (a language Persona's models do not serve), never as Chinese.
#include <string>
#include <string_view>

namespace persona::text {

enum class Language { Chinese, English, Mixed, Japanese, Unknown };
const char* language_code(Language l);  // "zh", "en", "mixed", "ja", "unknown"

struct LanguageGuess {
  Language language = Language::Unknown;
  double han_share = 0;  // Han characters / (Han characters + Latin letters)
  int letters = 0;       // Han characters + Latin letters seen
  int kana = 0;          // Japanese hiragana and katakana seen
};

LanguageGuess detect_language(std::string_view utf8);

}  // namespace persona::text
