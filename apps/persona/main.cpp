// persona: turn a platform's own user data into better products.
#include <cstdio>
#include <vector>

#include <fmt/format.h>

#include "commands.h"
#include "persona/core/error.h"
#include "persona/core/terminal.h"

int main(int argc, char** argv) {
  using namespace persona::cli;
  CLI::App app{"Persona: ingest, clean and understand your users' data.\n"
               "Start with `persona demo`, or `persona ingest --config shop.toml`."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "persona 0.1.0");
  Common common;
  const std::vector<Command> commands = {add_demo(app, common),    add_generate(app, common), add_ingest(app, common), add_consume(app, common),
                                        add_clean(app, common),   add_stats(app, common),    add_store(app, common),    add_rejects(app, common),
                                        add_normalise(app, common), add_presets(app, common),
                                        add_analyze(app, common),  add_keywords(app, common),  add_classify(app, common),
                                        add_eval(app, common),     add_train(app, common),     add_predict(app, common),
                                        add_forecast(app, common), add_profile(app, common),
                                        add_segments(app, common),  add_recommend(app, common),
                                        add_similar(app, common),   add_experiment(app, common), add_faq(app, common),
                                        add_kg(app, common),        add_chat(app, common),
                                        add_test_dialogues(app, common), add_test_intents(app, common),
                                        add_anonymize(app, common), add_keys(app, common), add_pseudonym(app, common),
                                        add_seal(app, common), add_audit(app, common), add_dp(app, common),
                                        add_redact(app, common),   add_erase(app, common),
                                        add_export(app, common), add_serve(app, common), add_help(app, common)};
  for (const auto& [sub, runner] : commands) {
    sub->add_flag("--json", common.json, "Print machine-readable JSON on stdout");
    sub->add_flag("-q,--quiet", common.quiet, "No progress output");
  }
  // Data echoed to a terminal (chat messages, reject rows, titles) cannot drive it.
  persona::filter_stdout_on_terminal();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 has a code per kind of usage error; the documented contract is 2 for all of them
    // (0 for --help).
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    for (const auto& [sub, runner] : commands)
      if (sub->parsed()) return runner();
  } catch (const persona::Error& e) {
    // A message may quote the input (a parser's "last read"): shown, never obeyed by a terminal.
    std::fprintf(stderr, "persona: error: %s\n", persona::terminal_safe(e.what()).c_str());
    return 1;
  } catch (const std::runtime_error& e) {  // bad model files, unreadable inputs: the user's to fix
    std::fprintf(stderr, "persona: error: %s\n", persona::terminal_safe(e.what()).c_str());
    return 1;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "persona: error: %s\n", persona::terminal_safe(e.what()).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "persona: internal error: %s\n", persona::terminal_safe(e.what()).c_str());
    return 3;
  }
  return 0;
}
