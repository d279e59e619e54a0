#include "persona/profile/tags.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>

#include "persona/core/error.h"

namespace persona::profile {

// A parsed rule: and / or / not over comparisons of one feature with a literal.
struct TagRule::Node {
  enum class Kind { And, Or, Not, Compare } kind = Kind::Compare;
  std::vector<std::shared_ptr<const Node>> children;
  const FeatureInfo* feature = nullptr;
  std::string op;
  FeatureValue literal;
};

namespace {

using Node = TagRule::Node;

class Parser {
 public:
  Parser(const TagRuleSpec& spec) : spec_(spec), s_(spec.rule) {}

  std::shared_ptr<const Node> parse() {
    auto n = parse_or();
    skip_space();
    if (pos_ < s_.size()) fail(fmt::format("unexpected \"{}\"", s_.substr(pos_, 20)));
    return n;
  }

 private:
  [[noreturn]] void fail(const std::string& what, const std::string& hint = {}) const {
    throw Error(fmt::format("tag \"{}\": {} at position {} of the rule \"{}\"", spec_.name, what, pos_ + 1, s_), {},
                hint.empty() ? "rules look like: m_score == 5 and f_score >= 4; features: see `persona profile schema`"
                             : hint);
  }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool keyword(std::string_view word) {
    skip_space();
    if (s_.compare(pos_, word.size(), word) != 0) return false;
    const size_t end = pos_ + word.size();
    if (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '_')) return false;
    pos_ = end;
    return true;
  }
  std::shared_ptr<const Node> combine(Node::Kind kind, std::shared_ptr<const Node> a, std::shared_ptr<const Node> b) {
    auto n = std::make_shared<Node>();
    n->kind = kind;
    n->children = {std::move(a), std::move(b)};
    return n;
  }
  std::shared_ptr<const Node> parse_or() {
    auto n = parse_and();
    while (keyword("or")) n = combine(Node::Kind::Or, n, parse_and());
    return n;
  }
  std::shared_ptr<const Node> parse_and() {
    auto n = parse_not();
    while (keyword("and")) n = combine(Node::Kind::And, n, parse_not());
    return n;
  }
  std::shared_ptr<const Node> parse_not() {
    if (keyword("not")) {
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::Not;
      n->children = {parse_not()};
      return n;
    }
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == '(') {
      ++pos_;
      auto n = parse_or();
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != ')') fail("missing \")\"");
      ++pos_;
      return n;
    }
    return parse_comparison();
  }
  std::shared_ptr<const Node> parse_comparison() {
    skip_space();
    const size_t start = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) ++pos_;
    const std::string name = s_.substr(start, pos_ - start);
    if (name.empty()) fail("expected a feature name");
    auto n = std::make_shared<Node>();
    n->feature = find_feature(name);
    if (!n->feature) {
      std::string known;
      for (const auto& f : feature_schema()) known += (known.empty() ? "" : ", ") + f.name;
      pos_ = start;
      fail(fmt::format("unknown feature \"{}\"", name), "known features: " + known);
    }
    skip_space();
    for (const char* op : {"==", "!=", "<=", ">=", "<", ">"})
      if (s_.compare(pos_, std::string_view(op).size(), op) == 0) {
        n->op = op;
        pos_ += std::string_view(op).size();
        break;
      }
    if (n->op.empty() && keyword("contains")) n->op = "contains";
    if (n->op.empty()) fail("expected ==, !=, <, <=, >, >= or contains");
    n->literal = parse_literal();
    const bool text_feature = n->feature->type == "text" || n->feature->type == "level" || n->feature->type == "list";
    if (n->op == "contains" && n->feature->type != "list") fail("contains applies to list features (categories, keywords, tags, ...)");
    if (text_feature != std::holds_alternative<std::string>(n->literal))
      fail(fmt::format("feature \"{}\" is {}: compare it with {}", name, n->feature->type,
                       text_feature ? "a quoted text" : "a number"));
    if (text_feature && n->op != "==" && n->op != "!=" && n->op != "contains") fail("texts compare with ==, != or contains");
    return n;
  }
  FeatureValue parse_literal() {
    skip_space();
    if (pos_ < s_.size() && (s_[pos_] == '"' || s_[pos_] == '\'')) {
      const char quote = s_[pos_++];
      const size_t end = s_.find(quote, pos_);
      if (end == std::string::npos) fail("unterminated text");
      std::string v = s_.substr(pos_, end - pos_);
      pos_ = end + 1;
      return v;
    }
    const size_t start = pos_;
    while (pos_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.' || s_[pos_] == '-' ||
                                s_[pos_] == '+' || s_[pos_] == 'e' || s_[pos_] == 'E'))
      ++pos_;
    double v = 0;
    const auto [ptr, ec] = std::from_chars(s_.data() + start, s_.data() + pos_, v);
    if (ec != std::errc() || ptr != s_.data() + pos_ || pos_ == start) {
      pos_ = start;
      fail("expected a number or a quoted text");
    }
    return v;
  }

  const TagRuleSpec& spec_;
  std::string s_;
  size_t pos_ = 0;
};

bool evaluate(const Node& n, const UserProfile& p) {
  switch (n.kind) {
    case Node::Kind::And: return evaluate(*n.children[0], p) && evaluate(*n.children[1], p);
    case Node::Kind::Or: return evaluate(*n.children[0], p) || evaluate(*n.children[1], p);
    case Node::Kind::Not: return !evaluate(*n.children[0], p);
    case Node::Kind::Compare: break;
  }
  const FeatureValue v = n.feature->get(p);
  if (std::holds_alternative<std::monostate>(v)) return false;
  if (const auto* text = std::get_if<std::string>(&v)) {
    const auto& want = std::get<std::string>(n.literal);
    if (n.op == "contains") {
      // List features export as "name:share;name:share" or "a;b": match whole names.
      size_t start = 0;
      while (start <= text->size()) {
        size_t end = text->find(';', start);
        if (end == std::string::npos) end = text->size();
        std::string item = text->substr(start, end - start);
        if (const auto colon = item.rfind(':'); colon != std::string::npos && n.feature->unit != "") item.resize(colon);
        if (item == want) return true;
        start = end + 1;
      }
      return false;
    }
    return n.op == "==" ? *text == want : *text != want;
  }
  const double x = std::get<double>(v), y = std::get<double>(n.literal);
  if (n.op == "==") return x == y;
  if (n.op == "!=") return x != y;
  if (n.op == "<") return x < y;
  if (n.op == "<=") return x <= y;
  if (n.op == ">") return x > y;
  return x >= y;
}

}  // namespace

TagRule TagRule::compile(const TagRuleSpec& spec) {
  if (spec.name.empty()) throw Error("a tag needs a name");
  TagRule r;
  r.name_ = spec.name;
  r.rule_ = spec.rule;
  r.root_ = Parser(spec).parse();
  return r;
}

bool TagRule::matches(const UserProfile& p) const { return evaluate(*root_, p); }

const std::vector<TagRuleSpec>& default_tag_rules() {
  static const std::vector<TagRuleSpec> rules = {
      {"high value", "m_score == 5 and f_score >= 4"},
      {"churn risk", "recency_days > 90 and f_score >= 4"},
      {"bargain hunter", "price_sensitivity < 0.85 and purchases >= 3"},
      {"new customer", "tenure_days <= 30 and events > 0"},
      {"window shopper", "views >= 10 and purchases == 0"},
      {"frequent returner", "return_rate > 0.3 and purchases >= 3"},
      {"unhappy", "sentiment < 0.4 and reviews >= 2"},
  };
  return rules;
}

std::vector<TagRule> compile_tag_rules(const std::vector<TagRuleSpec>& specs) {
  std::vector<TagRule> out;
  for (const auto& s : specs) out.push_back(TagRule::compile(s));
  return out;
}

void apply_tags(const std::vector<TagRule>& rules, std::vector<UserProfile>& profiles) {
  for (auto& p : profiles) {
    p.tags.clear();
    for (const auto& r : rules)
      if (r.matches(p)) p.tags.push_back(r.name());
  }
}

}  // namespace persona::profile
