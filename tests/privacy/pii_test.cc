// PII detection: every kind in English and Chinese text, validated (checksums), and the hard
// negatives a shop's texts are full of (order ids, prices, dates, quantities) left alone.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

#include "persona/core/error.h"
#include "persona/privacy/pii.h"
#include "support/test_support.h"

namespace persona::privacy {
namespace {

std::vector<std::string> kinds(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& f : find_pii(text)) out.push_back(pii_kind_name(f.kind));
  return out;
}

TEST(Pii, FindsEachKind) {
  EXPECT_EQ(kinds("write to li.wei+shop@example.com.cn please"), std::vector<std::string>{"email"});
  EXPECT_EQ(kinds("我的手机是13812345678，请联系"), std::vector<std::string>{"phone"});
  EXPECT_EQ(kinds("call +86 138 1234 5678"), std::vector<std::string>{"phone"});
  EXPECT_EQ(kinds("or +44 20 7946 0958 in London"), std::vector<std::string>{"phone"});
  EXPECT_EQ(kinds("US office (415) 555-0132"), std::vector<std::string>{"phone"});
  EXPECT_EQ(kinds("身份证号11010519491231002X"), std::vector<std::string>{"cn_id"});
  EXPECT_EQ(kinds("card 4111 1111 1111 1111 exp 12/27"), std::vector<std::string>{"bank_card"});
  EXPECT_EQ(kinds("卡号6222020200112233446"), std::vector<std::string>{"bank_card"}) << "19-digit UnionPay, Luhn-valid";
  EXPECT_EQ(kinds("from 192.168.10.254 and 2001:db8::8a2e:370:7334"), (std::vector<std::string>{"ip", "ip"}));
}

TEST(Pii, ChecksumsDecide) {
  EXPECT_TRUE(valid_chinese_id("11010519491231002X"));
  EXPECT_FALSE(valid_chinese_id("110105194912310021"));  // wrong check digit
  EXPECT_TRUE(kinds("身份证号110105194912310021").empty());
  EXPECT_TRUE(luhn_valid("4111111111111111"));
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_TRUE(kinds("card 4111 1111 1111 1112").empty());
  EXPECT_TRUE(kinds("number 9111111111111111 starts like no card").empty());
  EXPECT_TRUE(kinds("999.1.1.1 is not an address").empty());
  EXPECT_TRUE(kinds("at 12:30:45 sharp").empty()) << "a time is not an IPv6 address";
  EXPECT_EQ(kinds("from fe80::1 and 2001:db8::b880:80b6"), (std::vector<std::string>{"ip", "ip"}));
  EXPECT_TRUE(kinds("身份证号440305195602222219").empty()) << "a mistyped id is not a card either";
}

TEST(Pii, HardNegativesAreLeftAlone) {
  for (const char* text : {"order ORD-2025-000123 and S00000004", "订单ORD-2025-13800138000已发货", "it costs ¥1299.00 or $45.50",
                           "delivered on 2025-11-15 at 14:30", "2 pieces, 3件, version 1.2.3", "tracking 202511150001",
                           "barcode 6901234567892", "room 1203, 12 Main Street"})
    EXPECT_TRUE(find_pii(text).empty()) << text << ": " << kinds(text).front();
}

TEST(Pii, RedactionKeepsTheRest) {
  EXPECT_EQ(redact_pii("Mail a@b.co or call 13812345678 about ORD-2025-000123"),
            "Mail [EMAIL] or call [PHONE] about ORD-2025-000123");
  EXPECT_EQ(redact_pii("我的身份证11010519491231002X"), "我的身份证[CN_ID]");
  EXPECT_EQ(redact_pii("nothing here"), "nothing here");
  EXPECT_EQ(redact_pii("x@y.co13812345678"), "[EMAIL][PHONE]") << "a number glued to an email";
  // A chain of glued findings (found by fuzzing): nothing is left behind.
  const auto chained = redact_pii("+110 0r66 =12>b8::1+910105191230::1+91010519123018::1+9101051914");
  EXPECT_TRUE(find_pii(chained).empty()) << chained;
  EXPECT_EQ(redact_pii(""), "");
  // Invalid UTF-8 and odd bytes do not trip it.
  EXPECT_EQ(redact_pii(std::string("\xff\xfe a@b.co")), std::string("\xff\xfe [EMAIL]"));
}

// The labelled set (bench/pii_cases.py): every kind in English and Chinese, and hard negatives.
TEST(Pii, TheLabelledSet) {
  const auto e = evaluate_pii(std::string(PERSONA_SOURCE_DIR) + "/tests/data/pii_cases.jsonl");
  for (const auto& m : e.mistakes) ADD_FAILURE() << m;
  EXPECT_GT(e.right(), 200);
  EXPECT_EQ(e.false_positives(), 0);
  EXPECT_EQ(e.missed(), 0);
  EXPECT_EQ(e.cases, 380);
}

// Evaluation counts what it should: a wrong kind is a false positive and a miss.
TEST(Pii, EvaluationCountsRightWrongAndMissed) {
  test::TempDir dir;
  test::write_file(dir.file("cases.jsonl"),
                   "{\"text\": \"mail a@b.co\", \"pii\": [{\"kind\": \"email\", \"value\": \"a@b.co\"}]}\n"
                   "{\"text\": \"call 13812345678\", \"pii\": [{\"kind\": \"email\", \"value\": \"13812345678\"}]}\n\n");
  const auto e = evaluate_pii(dir.file("cases.jsonl"));
  EXPECT_EQ(e.cases, 2);
  EXPECT_EQ(e.right(), 1);
  EXPECT_EQ(e.false_positives(), 1);
  EXPECT_EQ(e.missed(), 1);
  EXPECT_DOUBLE_EQ(e.precision(), 0.5);
  EXPECT_EQ(e.mistakes.size(), 2u);
  test::write_file(dir.file("bad.jsonl"), "not json\n");
  EXPECT_THROW(evaluate_pii(dir.file("bad.jsonl")), Error);
}

}  // namespace
// The prefilter that skips most texts never hides a finding: random strings over the characters
// the patterns are made of, compared with the six scans alone.
TEST(Pii, ThePrefilterNeverHidesAFinding) {
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789012345678901234567890123456789 -.:@+()abcdefXx,/";
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1), length(1, 48);
  // Half the strings are PII-shaped pieces with random characters around them and one edited.
  const std::vector<std::string> pieces = {"(555) 123-4567", "555-123-4567", "+86 139 1234 5678", "13912345678",
                                           "a.b@ex.co",      "192.168.1.20", "fe80::1",           "::1",
                                           "11010519491231002X", "4111 1111 1111 1111", "+44 20 7946 0958"};
  std::uniform_int_distribution<size_t> piece(0, pieces.size() - 1), coin(0, 1);
  size_t with_findings = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string text;
    for (size_t n = length(rng); n > 0; --n) {
      if (i % 2 && n % 7 == 0) text += pieces[piece(rng)];
      text += alphabet[pick(rng)];
    }
    if (i % 2 && coin(rng) && !text.empty()) text[pick(rng) % text.size()] = alphabet[pick(rng)];
    const auto scanned = detail::find_pii_by_scans(text);
    const auto found = find_pii(text);
    ASSERT_EQ(found.size(), scanned.size()) << text;
    with_findings += !found.empty();
  }
  EXPECT_GT(with_findings, 100u);  // the strings do hold findings, so the comparison means something
}

}  // namespace persona::privacy
