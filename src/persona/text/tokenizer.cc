#include "persona/text/tokenizer.h"

#include <unicode/ubrk.h>
#include <unicode/utext.h>

#include <memory>
#include <stdexcept>

#include "persona/text/normalize.h"

namespace persona::text {
namespace {

struct BreakIteratorCloser {
  void operator()(UBreakIterator* b) const { ubrk_close(b); }
};

UBreakIterator* thread_break_iterator() {
  thread_local std::unique_ptr<UBreakIterator, BreakIteratorCloser> it = [] {
    UErrorCode status = U_ZERO_ERROR;
    UBreakIterator* b = ubrk_open(UBRK_WORD, "zh", nullptr, 0, &status);
    if (U_FAILURE(status)) throw std::runtime_error(std::string("ICU word break iterator: ") + u_errorName(status));
    return std::unique_ptr<UBreakIterator, BreakIteratorCloser>(b);
  }();
  return it.get();
}

}  // namespace

std::vector<Token> tokenize(std::string_view normalized) {
  std::vector<Token> tokens;
  if (normalized.empty()) return tokens;
  UErrorCode status = U_ZERO_ERROR;
  UText* ut = utext_openUTF8(nullptr, normalized.data(), static_cast<int64_t>(normalized.size()), &status);
  if (U_FAILURE(status)) return tokens;
  UBreakIterator* bi = thread_break_iterator();
  ubrk_setUText(bi, ut, &status);
  if (U_FAILURE(status)) {
    utext_close(ut);
    return tokens;
  }
  int32_t start = ubrk_first(bi);
  for (int32_t end = ubrk_next(bi); end != UBRK_DONE; start = end, end = ubrk_next(bi)) {
    const int32_t rule = ubrk_getRuleStatus(bi);
    if (rule >= UBRK_WORD_NONE && rule < UBRK_WORD_NONE_LIMIT) {
      // Spaces and punctuation; but keep emoji and other symbols out too.
      continue;
    }
    Token t;
    t.text.assign(normalized.substr(static_cast<size_t>(start), static_cast<size_t>(end - start)));
    if (rule >= UBRK_WORD_NUMBER && rule < UBRK_WORD_NUMBER_LIMIT) t.kind = TokenKind::Number;
    else if (rule >= UBRK_WORD_IDEO && rule < UBRK_WORD_IDEO_LIMIT) t.kind = TokenKind::Ideographic;
    else if (rule >= UBRK_WORD_LETTER && rule < UBRK_WORD_LETTER_LIMIT) t.kind = TokenKind::Word;
    else t.kind = TokenKind::Other;
    if (t.kind == TokenKind::Word && contains_han(t.text)) t.kind = TokenKind::Ideographic;
    tokens.push_back(std::move(t));
  }
  utext_close(ut);
  return tokens;
}

PreparedText prepare_text(std::string_view raw_text) {
  PreparedText p;
  p.normalized = normalize_for_analysis(raw_text);
  p.tokens = tokenize(p.normalized);
  return p;
}

std::vector<std::string> tokenize_words(std::string_view raw_text) {
  std::vector<std::string> out;
  for (auto& t : tokenize(normalize_for_analysis(raw_text))) out.push_back(std::move(t.text));
  return out;
}

void char_ngrams(const std::vector<Token>& tokens, const NgramOptions& o, std::vector<std::string>& out) {
  std::u32string run, cps;
  std::string gram;
  auto flush_han = [&] {
    for (size_t i = 0; i < run.size(); ++i)
      for (int n = o.han_min; n <= o.han_max && i + static_cast<size_t>(n) <= run.size(); ++n) {
        gram.clear();
        for (int k = 0; k < n; ++k) append_utf8(run[i + static_cast<size_t>(k)], gram);
        out.push_back(gram);
      }
    run.clear();
  };
  for (const Token& t : tokens) {
    if (t.kind == TokenKind::Ideographic) {
      decode_utf8(t.text, cps);
      run += cps;
      continue;
    }
    if (!run.empty() && o.han_max > 0) flush_han();
    run.clear();
    if (o.latin_max <= 0) continue;
    decode_utf8(t.text, cps);
    cps.insert(cps.begin(), U' ');
    cps.push_back(U' ');
    for (size_t i = 0; i < cps.size(); ++i)
      for (int n = o.latin_min; n <= o.latin_max && i + static_cast<size_t>(n) <= cps.size(); ++n) {
        if (n >= static_cast<int>(cps.size())) break;  // the whole padded word is the word feature already
        gram.clear();
        for (int k = 0; k < n; ++k) append_utf8(cps[i + static_cast<size_t>(k)], gram);
        out.push_back(gram);
      }
  }
  if (!run.empty() && o.han_max > 0) flush_han();
}

}  // namespace persona::text
