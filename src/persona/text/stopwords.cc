#include "persona/text/stopwords.h"

#include <absl/container/flat_hash_set.h>

#include <string>

namespace persona::text {
namespace {

// Function words of each language: articles, pronouns, auxiliaries, prepositions, particles.
constexpr const char* kEnglish[] = {
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
    "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having",
    "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it",
    "its", "itself", "just", "me", "more", "most", "my", "myself", "now", "of", "off", "on", "once", "only", "or",
    "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such",
    "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where",
    "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself",
    "yourselves", "i'm", "it's", "i've", "i'd", "i'll", "you're", "can't", "please", "also", "get", "got", "one",
    "us", "let", "may", "might", "must", "shall", "much", "many", "even", "still", "yet", "via", "etc"};

constexpr const char* kChinese[] = {
    "的", "了", "是", "在", "我", "有", "和", "就", "都", "一", "一个", "上", "也", "到", "说", "要", "去", "你",
    "会", "着", "看", "自己", "这", "那", "他", "她", "它", "我们", "你们", "他们", "她们", "它们", "这个", "那个",
    "这些", "那些", "之", "与", "及", "或", "而", "但", "但是", "并", "并且", "因为", "所以", "如果", "虽然", "然后",
    "还", "还是", "又", "把", "被", "让", "给", "对", "从", "向", "以", "为", "为了", "于", "跟", "比", "等",
    "啊", "吧", "呢", "吗", "哦", "嗯", "呀", "啦", "么", "嘛", "哈", "得", "地", "过", "个", "些", "么", "什么",
    "怎么", "怎样", "如何", "哪", "哪里", "哪个", "谁", "多少", "几", "可以", "能", "能够", "就是", "已经", "一下",
    "一些", "一样", "这样", "那样", "这么", "那么", "时候", "现在", "里", "中", "请", "请问", "您", "咱们", "其",
    "此", "该", "每", "各", "某", "其他", "还有", "以及", "或者", "而且", "只是", "只", "才", "再", "更", "最",
    "呃", "诶", "喔", "嘿", "我的", "你的", "他的", "她的", "它的", "我们的", "您的"};

const absl::flat_hash_set<std::string>& stop_words() {
  static const auto* set = [] {
    auto* s = new absl::flat_hash_set<std::string>();
    for (const char* w : kEnglish) s->insert(w);
    for (const char* w : kChinese) s->insert(w);
    return s;
  }();
  return *set;
}

}  // namespace

bool is_stop_word(std::string_view token) { return stop_words().contains(std::string(token)); }

}  // namespace persona::text
