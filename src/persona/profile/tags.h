#pragma once
// Tags from declarative rules: `m_score == 5 and f_score >= 4`, `recency_days > 90 and not
// (frequency < 3)`, `top_category == "书籍"`, `keywords contains "退款"`. A rule names features of
// the profile schema (profile.h); a feature a user lacks (no purchases, no texts) makes its
// comparison false. Rules are checked when compiled: an unknown feature or a syntax error is a
// persona::Error naming the tag, the position and the known features.
#include <memory>
#include <string>
#include <vector>

#include "persona/profile/profile.h"

namespace persona::profile {

struct TagRuleSpec {
  std::string name, rule;
};

class TagRule {
 public:
  static TagRule compile(const TagRuleSpec& spec);
  bool matches(const UserProfile& p) const;
  const std::string& name() const { return name_; }
  const std::string& rule() const { return rule_; }
  struct Node;

 private:
  std::string name_, rule_;
  std::shared_ptr<const Node> root_;
};

// The tags a shop starts with when its config declares none.
const std::vector<TagRuleSpec>& default_tag_rules();
std::vector<TagRule> compile_tag_rules(const std::vector<TagRuleSpec>& specs);
// Sets every profile's tags (in rule order).
void apply_tags(const std::vector<TagRule>& rules, std::vector<UserProfile>& profiles);

}  // namespace persona::profile
