// Normalisation, language detection, tokenisers, TF-IDF and keywords.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "persona/text/html.h"
#include "persona/text/keywords.h"
#include "persona/text/language.h"
#include "persona/text/normalize.h"
#include "persona/text/stopwords.h"
#include "persona/text/tfidf.h"
#include "persona/text/tokenizer.h"

namespace persona::text {
namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

TEST(Normalize, FoldsWidthCaseAndSpace) {
  EXPECT_EQ(normalize_for_analysis("  ＡＢＣ１２３\tHello\n\nWORLD  "), "abc123 hello world");
  EXPECT_EQ(normalize_for_analysis("Straße"), "strasse");  // full case folding
  EXPECT_EQ(normalize_for_analysis(""), "");
}

TEST(Normalize, RepairsInvalidUtf8) {
  const std::string bad = std::string("ok\xff\xfe") + "好\xe4\xbd";  // stray bytes and a cut sequence
  const std::string fixed = repair_utf8(bad);
  EXPECT_EQ(fixed.find('\xff'), std::string::npos);
  EXPECT_NE(fixed.find("好"), std::string::npos);
  EXPECT_NE(fixed.find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_NO_THROW(normalize_for_analysis(bad));
  // Control characters separate words (NUL glued "good" and "product" into one).
  EXPECT_EQ(normalize_for_analysis(std::string("good\0product", 12)), "good product");
  EXPECT_EQ(normalize_for_analysis("a\x01" "b\x7F" "c\xC2\x85" "d"), "a b c d");
}

TEST(Language, ChineseEnglishMixedUnknown) {
  EXPECT_EQ(detect_language("我想买一部手机").language, Language::Chinese);
  EXPECT_EQ(detect_language("where is my order?").language, Language::English);
  EXPECT_EQ(detect_language("我想买iPhone").language, Language::Chinese);  // a brand name in Chinese text
  EXPECT_EQ(detect_language("I love 北京烤鸭 and dumplings a lot").language, Language::Mixed);
  EXPECT_EQ(detect_language("!!! 😀😀 123").language, Language::Unknown);
  EXPECT_EQ(detect_language("").language, Language::Unknown);
  // Japanese writes with Han characters too: its kana tell it apart (it was reported as Chinese
  // with confidence 1.0).
  EXPECT_EQ(detect_language("この商品はとても良かったです。また買いたいと思います").language, Language::Japanese);
  EXPECT_EQ(detect_language("配送が遅い").language, Language::Japanese);
  EXPECT_EQ(detect_language("カスタマーサービス").language, Language::Japanese);
  EXPECT_STREQ(language_code(Language::Japanese), "ja");
  EXPECT_EQ(detect_language("我在の小店买了一部手机，质量很好，物流也快").language, Language::Chinese);  // one stray kana
}

TEST(Tokenizer, EnglishWordsKeepContractionsAndNumbers) {
  std::vector<std::string> words;
  for (auto& t : tokenize(normalize_for_analysis("Don't worry, it's 3.5 kg!"))) words.push_back(t.text);
  EXPECT_TRUE(contains(words, "don't"));
  EXPECT_TRUE(contains(words, "3.5"));
  EXPECT_FALSE(contains(words, ","));
  EXPECT_FALSE(contains(words, "!"));
}

TEST(Tokenizer, ChineseByDictionary) {
  const auto words = tokenize_words("我想买一部新手机，价格便宜吗？");
  EXPECT_TRUE(contains(words, "手机"));
  EXPECT_TRUE(contains(words, "价格"));
  EXPECT_FALSE(contains(words, "，"));
  for (const auto& w : words) EXPECT_FALSE(w.empty());
}

TEST(Tokenizer, EmojiPunctuationAndHugeTexts) {
  EXPECT_TRUE(tokenize_words("😀😀😀 !!! ??? ……").empty());
  EXPECT_TRUE(tokenize_words("").empty());
  std::string big;
  while (big.size() < (1u << 20)) big += "质量很好 quality is great. ";
  const auto words = tokenize_words(big);
  EXPECT_GT(words.size(), 100000u);
}

TEST(Tokenizer, CharacterNgrams) {
  const auto tokens = tokenize(normalize_for_analysis("手机 abc"));
  std::vector<std::string> grams;
  char_ngrams(tokens, NgramOptions{1, 2, 2, 3}, grams);
  EXPECT_TRUE(contains(grams, "手"));
  EXPECT_TRUE(contains(grams, "手机"));
  EXPECT_TRUE(contains(grams, " a"));
  EXPECT_TRUE(contains(grams, "abc"));
  EXPECT_TRUE(contains(grams, "bc "));
  EXPECT_FALSE(contains(grams, "机a"));  // Han runs stop at Latin words
}

TEST(Tfidf, NormalisedVectorsAndRoundTrip) {
  const std::vector<std::string> docs{"red shoes on sale", "blue shoes", "红色的鞋子打折", "red red dress", "新款鞋子"};
  TfidfOptions o;
  o.min_df = 1;
  TfidfVectorizer v(o);
  v.fit(docs, 2);
  ASSERT_GT(v.dimension(), 10);
  for (const auto& d : docs) {
    const auto x = v.transform(d);
    double norm = 0;
    for (float f : x.value) norm += f * f;
    EXPECT_NEAR(norm, 1.0, 1e-5);
    EXPECT_TRUE(std::is_sorted(x.index.begin(), x.index.end()));
  }
  EXPECT_EQ(v.transform("zzzz qqqq").size(), 0u);  // unseen features are ignored
  const auto copy = TfidfVectorizer::from_bytes(v.to_bytes());
  const auto a = v.transform("red shoes 鞋子"), b = copy.transform("red shoes 鞋子");
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.value, b.value);
  EXPECT_THROW(TfidfVectorizer::from_bytes(v.to_bytes().substr(0, 20)), std::runtime_error);
  // The first layout began with the word n-gram order: a clear error, not a misread vocabulary.
  std::string old = v.to_bytes().substr(4);
  try {
    TfidfVectorizer::from_bytes(old);
    ADD_FAILURE() << "an old vectoriser payload was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("older Persona"), std::string::npos) << e.what();
  }
}

TEST(Tfidf, RareWordsWeighMore) {
  TfidfOptions o;
  o.min_df = 1;
  o.use_chars = false;
  o.word_ngrams = 1;
  TfidfVectorizer v(o);
  v.fit({"the cat", "the dog", "the bird", "the fish"}, 1);
  const auto x = v.transform("the cat");
  ASSERT_EQ(x.size(), 2u);
  const int32_t cat_index = v.word_index("cat");
  ASSERT_GE(cat_index, 0);
  EXPECT_EQ(v.word_index("zebra"), -1);
  const size_t cat = x.index[0] == cat_index ? 0 : 1;
  EXPECT_EQ(x.index[cat], cat_index);
  EXPECT_GT(x.value[cat], x.value[1 - cat]);
}

TEST(Keywords, TfidfSkipsStopWordsAndUsesIdf) {
  const std::vector<std::string_view> texts{"the battery of this phone is great and the battery lasts"};
  const auto k = tfidf_keywords(texts, 3);
  ASSERT_FALSE(k.empty());
  EXPECT_EQ(k[0].word, "battery");
  for (const auto& w : k) EXPECT_FALSE(is_stop_word(w.word));
  KeywordIndex index;
  for (int i = 0; i < 20; ++i) index.add_document("the phone is here");
  index.add_document("battery");
  const auto weighted = tfidf_keywords({"phone phone battery"}, 2, &index);
  EXPECT_EQ(weighted[0].word, "battery");  // rare in the corpus beats frequent in the text
  const auto copy = KeywordIndex::from_bytes(index.to_bytes());
  EXPECT_DOUBLE_EQ(copy.idf("battery"), index.idf("battery"));
}

TEST(Keywords, TextRankFindsTheHubInChinese) {
  const std::vector<std::string_view> texts{"这款手机的屏幕很大，手机电池也耐用，手机拍照清晰，手机价格便宜"};
  const auto k = textrank_keywords(texts, 3);
  ASSERT_FALSE(k.empty());
  EXPECT_EQ(k[0].word, "手机");
  EXPECT_DOUBLE_EQ(k[0].score, 1.0);
  EXPECT_TRUE(textrank_keywords({"的 了 是 😀"}, 3).empty());
}

}  // namespace
}  // namespace persona::text

namespace persona::text {

TEST(Html, TagsGoAndEntitiesAreDecoded) {
  EXPECT_FALSE(looks_like_html("5 < 6 and 7 > 3, I <3 it, AT&T"));
  EXPECT_TRUE(looks_like_html("great &amp; cheap"));
  EXPECT_TRUE(looks_like_html("<p>great</p>"));
  EXPECT_EQ(tokenize_words("<p>Great&nbsp;phone &amp; fast delivery</p><script>var amp = 1;</script>"),
            (std::vector<std::string>{"great", "phone", "fast", "delivery"}));
  // Block elements separate words; inline ones do not split them.
  EXPECT_EQ(tokenize_words("good<br>product<div>very <b>nice</b></div>"),
            (std::vector<std::string>{"good", "product", "very", "nice"}));
  EXPECT_EQ(tokenize_words("<p>质量&#24456;好</p>"), tokenize_words("质量很好"));
}

TEST(Html, HostileNestingStaysLinear) {
  // gumbo alone takes minutes on 300,000 nested <div>s (it was stopped after 7); in pieces it is
  // linear. The bound only tells a hang from a pass.
  std::string nested;
  for (int i = 0; i < 100000; ++i) nested += "<div>";
  nested += "word";
  const auto t0 = std::chrono::steady_clock::now();
  const std::string text = html_to_text(nested);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60.0);
  EXPECT_NE(text.find("word"), std::string::npos);
}

}  // namespace persona::text
