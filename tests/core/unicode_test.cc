#include "persona/core/unicode.h"

#include <gtest/gtest.h>

namespace persona {

TEST(Unicode, ValidUtf8) {
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("质量很好，物流很快"));
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // a surrogate
  EXPECT_FALSE(valid_utf8("abc\xE8\xB4"));       // truncated sequence
  EXPECT_FALSE(valid_utf8("\xFF"));
}

TEST(Unicode, NfkcFoldsFullWidthForms) {
  EXPECT_EQ(nfkc("ＡＢＣ１２３"), "ABC123");
  EXPECT_EQ(nfkc("ﬁ"), "fi");
  EXPECT_EQ(nfkc("中文不变"), "中文不变");
}

TEST(Unicode, CleanTextCollapsesSpaceAndDropsControls) {
  std::string s = "  Hello\t\tworld\r\n\x01" "again\xE3\x80\x80 end  ";
  EXPECT_TRUE(clean_text(s));
  EXPECT_EQ(s, "Hello world again end");
  std::string clean = "already clean";
  EXPECT_FALSE(clean_text(clean));
  std::string bad = "ok\xFFok";
  clean_text(bad);
  EXPECT_TRUE(valid_utf8(bad));
}

}  // namespace persona
