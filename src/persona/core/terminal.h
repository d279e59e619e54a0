#pragma once
// Text from users' data (chat messages, reject rows, item titles) shown on a terminal. Raw
// control characters there are not just ugly: ESC starts sequences that move the cursor, rewrite
// the screen or set the window title, so a hostile chat message could forge the output around it.
// Persona's human-readable output shows them as visible escapes instead.
#include <string>
#include <string_view>

namespace persona {

// Control characters (C0 but tab and newline, DEL, C1) as "\x1b"-style escapes, and bytes that are
// not UTF-8 as "\xff". Stateful across calls, so a character split between two writes passes whole.
class TerminalFilter {
 public:
  std::string filter(std::string_view chunk);
  std::string finish();  // what a cut-off sequence at the very end leaves

 private:
  std::string pending_;
};

// One piece of text, filtered whole.
std::string terminal_safe(std::string_view text);

// When standard output is a terminal, every later write to it (C stdio, fmt, std::cout) goes
// through a TerminalFilter. For the CLI's main(); does nothing for a pipe or a file.
void filter_stdout_on_terminal();

}  // namespace persona
