#include <pthread.h>
#include <malloc.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "commands.h"
#include "persona/core/error.h"
#include "persona/pipeline/config.h"
#include "persona/server/server.h"

namespace persona::cli {

Command add_serve(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("serve", "The HTTP API of every stage (docs/api.md); SIGTERM stops it gracefully");
  auto o = std::make_shared<server::ServerOptions>();
  auto store = std::make_shared<std::string>();
  auto no_auth = std::make_shared<bool>(false), no_cache = std::make_shared<bool>(false);
  sub->add_option("-s,--store", *store, "Store: a file, or a postgresql:// URL");
  sub->add_option("-c,--config", o->config_path, "Config file (its store, profile settings, reject log, assistant)");
  sub->add_option("--models", o->models_dir, "Model directory (default $PERSONA_MODELS or ./models)");
  sub->add_option("--host", o->host, "Address to listen on (default 127.0.0.1)");
  sub->add_option("-p,--port", o->port, "Port (0: any free one)")->check(CLI::Range(0, 65535));
  sub->add_option("--threads", o->threads, "Worker threads for the slower routes: ingest, chat, statistics (default 16)")
      ->check(CLI::Range(1, 4096));
  sub->add_option("--io-threads", o->io_threads, "Event loops reading and writing every connection (default: one per core)")
      ->check(CLI::Range(0, 256));
  sub->add_option("--key-file", o->key_file, "Key file (sealed store, audit log, erasure receipts)");
  sub->add_option("--api-keys", o->api_keys_path, "API key file (default $PERSONA_API_KEYS or ./persona-api-keys.json)");
  sub->add_flag("--no-auth", *no_auth, "No API keys: every caller is an admin (a laptop, never a network)");
  sub->add_option("--tls-cert", o->tls_cert, "PEM certificate: serve HTTPS");
  sub->add_option("--tls-key", o->tls_key, "PEM private key of --tls-cert");
  sub->add_option("--max-body", o->max_body_bytes, "Largest request body in bytes (default 16 MiB)")->check(CLI::Range(1024, 1 << 30));
  sub->add_option("--max-body-total", o->max_total_body_bytes,
                  "Request bodies held at once, in bytes; past it new ones are told to retry (503; default 64 MiB)")
      ->check(CLI::Range(1024, 1 << 30));
  sub->add_option("--read-timeout", o->read_timeout_s, "Seconds a client may take to send a request (default 10)")
      ->check(CLI::Range(1, 3600));
  sub->add_option("--write-timeout", o->write_timeout_s, "Seconds a client may take to read an answer (default 10)")
      ->check(CLI::Range(1, 3600));
  sub->add_option("--rate", o->rate_per_s, "Requests per second per API key (0: unlimited; default 100)")->check(CLI::Range(0.0, 1e9));
  sub->add_option("--burst", o->burst, "Requests a key may send at once above its rate (default 200)")->check(CLI::Range(1.0, 1e9));
  sub->add_option("--web", o->web_dir, "The dashboard's files, served at / (default: the built one; \"none\": no dashboard)");
  sub->add_flag("--no-cache", *no_cache, "Compute every recommendation afresh (no answer cache)");
  sub->add_option("--redis", o->redis_url,
                  "Redis shared by several servers: rate limits per key and assistant conversations (redis://host:port/db)");
  sub->add_option("--cache-ttl", o->cache_ttl_s, "Seconds a cached answer is kept at most (changes empty it first; default 300)")
      ->check(CLI::Range(0.0, 1e7));
  sub->add_option("--access-log", o->access_log, "Access log: - for stderr (default), a file, or \"\" for none");
  return {sub, [o, store, no_auth, no_cache, &common] {
            o->store_path = store_path_from(*store, o->config_path);
            o->require_keys = !*no_auth;
            o->cache = !*no_cache;
            if (o->web_dir.empty()) o->web_dir = default_web_dir();
            else if (o->web_dir == "none") o->web_dir.clear();
            return serve_until_stopped(*o, common);
          }};
}

std::string default_web_dir() {
  if (const char* env = std::getenv("PERSONA_WEB_DIR"); env && *env) return env;
  // Installed (cmake --install, ./run install): PREFIX/bin/persona beside PREFIX/share/persona.
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto installed = exe.parent_path().parent_path() / "share" / "persona" / "dashboard";
    if (std::filesystem::exists(installed / "index.html", ec)) return installed.string();
  }
#ifdef PERSONA_WEB_DIR
  if (std::filesystem::exists(std::filesystem::path(PERSONA_WEB_DIR) / "index.html")) return PERSONA_WEB_DIR;
#endif
  return "";
}

int serve_until_stopped(server::ServerOptions options, const Common& common, const std::string& dashboard_key) {
  // Signals go to one thread that stops the server; the workers never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Request bodies (up to 16 MiB) are mapped and unmapped, never kept in malloc's arenas: glibc's
  // threshold for that grows with every large free, and then each worker thread's arena keeps
  // its freed bodies (measured, eight clients posting 16 MiB bodies: 584 MiB peak, 255 MiB fixed).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  server::Server server(options);
  const int port = server.bind();
  const std::string base = fmt::format("{}://{}:{}/", options.tls_cert.empty() ? "http" : "https",
                                       options.host == "0.0.0.0" ? "127.0.0.1" : options.host, port);
  if (!common.quiet) {
    fmt::print(stderr, "persona serving {} on {} ({} routes{}); SIGTERM or Ctrl-C stops it\n", options.store_path, base,
               server.routes().size(), options.require_keys ? ", API keys required" : ", NO AUTHENTICATION");
    std::fflush(stderr);
  }
  // The dashboard's address once its aggregates are computed (seconds at 1M events), so that the
  // first page a person opens is answered from memory; the API serves meanwhile.
  std::thread dashboard([&] {
    if (options.web_dir.empty()) return;
    server.warm_dashboard(dashboard_key);
    if (common.quiet) return;
    fmt::print(stderr, "dashboard: {}{}\n", base, dashboard_key.empty() ? "" : "#key=" + dashboard_key);
    std::fflush(stderr);
  });
  std::thread waiter([&server, signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    server.stop();
  });
  server.run();
  pthread_kill(waiter.native_handle(), SIGTERM);  // when run() ended for another reason
  waiter.join();
  dashboard.join();
  if (!common.quiet) fmt::print(stderr, "persona stopped; every request in flight was answered\n");
  return 0;
}

}  // namespace persona::cli
