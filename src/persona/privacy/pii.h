#pragma once
// Personal data in free text, in English and Chinese: emails, phone numbers (Chinese mobiles,
// international and North-American numbers), Chinese resident identity numbers (the checksum
// must hold), bank card numbers (13-19 digits passing Luhn) and IP addresses (v4 and v6).
// Numbers that only look alike (order ids, prices, dates, quantities) are not personal data:
// each finding is validated, not just pattern-matched. Redaction replaces each finding with a
// placeholder naming its kind ("[EMAIL]"), so a redacted text still reads naturally.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace persona::privacy {

enum class PiiKind { Email, Phone, ChineseId, BankCard, IpAddress };
const char* pii_kind_name(PiiKind kind);  // email, phone, cn_id, bank_card, ip

struct PiiFinding {
  PiiKind kind;
  size_t begin = 0, end = 0;  // byte offsets in the text as given
};

// Findings in order of position; spans do not overlap. Invalid UTF-8 is tolerated.
std::vector<PiiFinding> find_pii(std::string_view text);
namespace detail {
// find_pii without its one-pass prefilter (which skips texts no pattern can match): for the
// test that the prefilter never hides a finding.
std::vector<PiiFinding> find_pii_by_scans(std::string_view text);
}  // namespace detail
// The text with each finding replaced by "[EMAIL]", "[PHONE]", "[CN_ID]", "[BANK_CARD]", "[IP]".
std::string redact_pii(std::string_view text);

// Precision and recall on labelled cases, JSON Lines of {"text", "pii": [{"kind", "value"}]}: a
// finding is right when its kind and exact text match a label.
struct PiiEvaluation {
  int64_t cases = 0;
  std::map<std::string, std::array<int64_t, 3>> by_kind;  // per kind: right, false positives, missed
  std::vector<std::string> mistakes;                      // the first 100, with their text
  int64_t right() const, false_positives() const, missed() const;
  double precision() const, recall() const;
  nlohmann::json to_json() const;
};
// Throws persona::Error naming the file (and line) when it cannot be read or a case is not JSON.
PiiEvaluation evaluate_pii(const std::string& path);

// The validators, exposed for tests: the GB 11643 check digit of an 18-character resident id,
// and the Luhn checksum of a digit string.
bool valid_chinese_id(std::string_view id);
bool luhn_valid(std::string_view digits);

}  // namespace persona::privacy
