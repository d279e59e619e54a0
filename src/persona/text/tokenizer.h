#pragma once
// Tokenisers for English and Chinese. Word boundaries come from ICU's word break iterator
// (Debian's libicu), whose dictionary segments Chinese into words; English splits on the Unicode
// word rules (so "don't" and "3.5" stay whole). Character n-grams complement words for Chinese,
// where segmentation is ambiguous, and for misspelt English.
#include <string>
#include <string_view>
#include <vector>

namespace persona::text {

enum class TokenKind { Word, Number, Ideographic, Other };

struct Token {
  std::string text;
  TokenKind kind = TokenKind::Word;
};

// Splits already-normalised text (see normalize_for_analysis) into word tokens; spaces and
// punctuation are dropped. Thread-safe (one break iterator per thread).
std::vector<Token> tokenize(std::string_view normalized);

// A text as the models read it, normalised (normalize_for_analysis) and split once: a blend's
// members, the unknown-text screening and every task of `persona analyze` share this work.
struct PreparedText {
  std::string normalized;
  std::vector<Token> tokens;
};
PreparedText prepare_text(std::string_view raw_text);

// Convenience: normalise, tokenise, and return the token strings.
std::vector<std::string> tokenize_words(std::string_view raw_text);

struct NgramOptions {
  int han_min = 1, han_max = 2;      // over runs of Han characters (across word boundaries)
  int latin_min = 2, latin_max = 4;  // within " word " padded with spaces, like char_wb; 0 = off
};
// Appends character n-grams of the tokens to `out`.
void char_ngrams(const std::vector<Token>& tokens, const NgramOptions& options, std::vector<std::string>& out);

}  // namespace persona::text
