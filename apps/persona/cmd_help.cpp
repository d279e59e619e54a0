// persona help [COMMAND...|TOPIC]: every command's help, and the documentation (docs/*.md, built
// into the binary), wherever the binary was installed.
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.h"
#include "persona/core/error.h"

namespace persona::cli {

extern const std::vector<std::pair<std::string_view, std::string_view>> kHelpTopics;

namespace {

// A topic's first heading ("# Configuration" -> "Configuration"), as its one-line description.
std::string_view title_of_doc(std::string_view text) {
  const size_t start = text.rfind("# ", 0) == 0 ? 2 : 0;
  const size_t end = text.find('\n');
  return text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

CLI::App* find_command(CLI::App& app, const std::vector<std::string>& words) {
  CLI::App* at = &app;
  for (const auto& w : words) {
    CLI::App* next = nullptr;
    for (auto* c : at->get_subcommands([](CLI::App*) { return true; }))
      if (c->get_name() == w) next = c;
    if (!next) return nullptr;
    at = next;
  }
  return at;
}

}  // namespace

Command add_help(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("help", "Help on a command (persona help train recommend) or a topic (persona help config)");
  auto words = std::make_shared<std::vector<std::string>>();
  sub->add_option("topic", *words, "A command (and its subcommand), or a topic: see `persona help`");
  return {sub, [&app, words] {
            if (words->empty()) {
              fmt::print("Commands (persona help COMMAND, or persona COMMAND --help):\n");
              for (auto* c : app.get_subcommands([](CLI::App*) { return true; }))
                fmt::print("  {:<16} {}\n", c->get_name(), c->get_description());
              fmt::print("\nTopics (persona help TOPIC prints the documentation):\n");
              for (const auto& [name, text] : kHelpTopics) fmt::print("  {:<16} {}\n", name, title_of_doc(text));
              return 0;
            }
            if (auto* c = find_command(app, *words); c && c != &app) {
              fmt::print("{}", c->help());
              return 0;
            }
            if (words->size() == 1)
              for (const auto& [name, text] : kHelpTopics)
                if (name == words->front()) {
                  fmt::print("{}", text);
                  return 0;
                }
            throw Error(fmt::format("no command or topic {}", quote_value(fmt::format("{}", fmt::join(*words, " ")))), {},
                        "`persona help` lists them");
          }};
}

}  // namespace persona::cli
