#include "persona/core/terminal.h"

#include <gtest/gtest.h>

namespace persona {
namespace {

TEST(Terminal, ControlCharactersAreShownNotObeyed) {
  EXPECT_EQ(terminal_safe("plain text\twith a tab\n"), "plain text\twith a tab\n");
  EXPECT_EQ(terminal_safe("\x1b]0;owned\x07\x1b[2J"), "\\x1b]0;owned\\x07\\x1b[2J");
  EXPECT_EQ(terminal_safe(std::string("a\0b\r\x7f", 5)), "a\\x00b\\x0d\\x7f");
  EXPECT_EQ(terminal_safe("中文 ok é"), "中文 ok é");
  EXPECT_EQ(terminal_safe("\xc2\x9b" "31m"), "\\u009b31m");  // C1 CSI
  EXPECT_EQ(terminal_safe("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(terminal_safe("\xe4\xb8"), "\\xe4\\xb8");  // cut off at the end
}

TEST(Terminal, ACharacterSplitBetweenWritesPassesWhole) {
  TerminalFilter f;
  std::string out = f.filter("\xe4\xb8");
  out += f.filter("\xad hello \x1b");
  out += f.filter("[31m");
  out += f.finish();
  EXPECT_EQ(out, "中 hello \\x1b[31m");
}

}  // namespace
}  // namespace persona
