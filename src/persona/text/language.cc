#include "persona/text/language.h"

#include <string>

#include "persona/text/normalize.h"

namespace persona::text {

const char* language_code(Language l) {
  switch (l) {
    case Language::Chinese: return "zh";
    case Language::English: return "en";
    case Language::Mixed: return "mixed";
    case Language::Japanese: return "ja";
    case Language::Unknown: break;
  }
  return "unknown";
}

LanguageGuess detect_language(std::string_view utf8) {
  std::u32string cps;
  decode_utf8(utf8.substr(0, 1 << 16), cps);  // the first 64 KiB decide
  int han = 0, latin_words = 0, latin = 0;
  bool in_word = false;
  LanguageGuess g;
  for (char32_t c : cps) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= 0xFF21 && c <= 0xFF5A);
    if (is_han(c)) ++han;
    // Hiragana, katakana (with its phonetic extensions and half-width forms): only Japanese has them.
    if ((c >= 0x3041 && c <= 0x30FF && c != 0x30FB) || (c >= 0x31F0 && c <= 0x31FF) || (c >= 0xFF66 && c <= 0xFF9D)) ++g.kana;
    if (letter) {
      ++latin;
      if (!in_word) ++latin_words;
    }
    in_word = letter;
  }
  g.letters = han + latin;
  // Japanese: kana make up a good share of its script (a Chinese text has none; one stray kana,
  // a "の" in a shop's name, is not enough).
  if (g.kana >= 2 && g.kana * 10 >= han + g.kana) {
    g.language = Language::Japanese;
    g.han_share = g.letters ? static_cast<double>(han) / g.letters : 0;
    return g;
  }
  if (g.letters == 0) return g;
  g.han_share = static_cast<double>(han) / g.letters;
  // Compare Chinese words (about 1.5 characters each) with English words, so that
  // "我想买iPhone" is Chinese with a brand name in it, not mixed.
  const double han_words = han / 1.5;
  const double han_weight = han_words / (han_words + latin_words);
  if (han_weight >= 0.6) g.language = Language::Chinese;
  else if (han_weight <= 0.2) g.language = latin > 0 ? Language::English : Language::Unknown;
  else g.language = Language::Mixed;
  return g;
}

}  // namespace persona::text
