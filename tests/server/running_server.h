#pragma once
// A server in-process over the sample shop (made once with the persona binary, shared by the
// tests of one binary), with keys for every role: what the server tests run against.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "persona/privacy/access.h"
#include "persona/server/server.h"
#include "support/test_support.h"

#include <httplib.h>  // after the persona headers (its <resolv.h> defines _res, which Eigen uses)

namespace persona::server::testing {

namespace fs = std::filesystem;
using test::run_persona;

struct Shop {
  test::TempDir dir;
  std::string config, store, models, api_keys;
  std::map<std::string, std::string> key;  // role -> secret
  Shop() {
    config = dir.file("shop.toml");
    store = dir.file("persona.db");
    models = dir.file("models");
    api_keys = dir.file("api-keys.json");
    EXPECT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
    EXPECT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
    EXPECT_EQ(run_persona({"train", "recommend", "--config", config, "--models", models, "--method", "item-knn", "-q"}).exit_code, 0);
    EXPECT_EQ(run_persona({"profile", "build", "--config", config, "--models", models, "-q"}).exit_code, 0);
    privacy::ApiKeyStore keys(api_keys, privacy::Argon2Cost::minimal());
    key["admin"] = keys.create("admin", privacy::Role::Admin).secret;
    key["analyst"] = keys.create("analyst", privacy::Role::Analyst).secret;
    key["service"] = keys.create("service", privacy::Role::Service).secret;
    key["user"] = keys.create("app of U000002", privacy::Role::User, "U000002").secret;
  }
};

inline Shop& shop() {
  static Shop s;
  return s;
}

// A server on a free port, serving on its own thread for the test's lifetime.
class Running {
 public:
  // The shop's store, config, models and keys unless `o` names others.
  explicit Running(ServerOptions o = {}) {
    o.port = 0;
    if (o.store_path == ServerOptions{}.store_path) o.store_path = shop().store;
    if (o.config_path.empty()) o.config_path = shop().config;
    if (o.models_dir.empty()) o.models_dir = shop().models;
    if (o.api_keys_path.empty()) o.api_keys_path = shop().api_keys;
    o.access_log = log_path_ = shop().dir.file("access-" + std::to_string(counter_++) + ".log");
    server_ = std::make_unique<Server>(o);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~Running() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    server_->stop();
    thread_.join();
  }
  httplib::Client client(const std::string& role = "") const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    if (!role.empty()) c.set_bearer_token_auth(shop().key.at(role).c_str());
    return c;
  }
  Server& server() { return *server_; }
  int port() const { return port_; }
  const std::string& log_path() const { return log_path_; }

 private:
  static inline int counter_ = 0;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::string log_path_;
};

inline nlohmann::json json_of(const httplib::Result& r) {
  EXPECT_TRUE(r) << "no answer";
  if (!r) return {};
  return nlohmann::json::parse(r->body, nullptr, false);
}

// A problem answer: the status, application/problem+json, and a reason.
inline void expect_problem(const httplib::Result& r, int status, const std::string& reason_part = "") {
  ASSERT_TRUE(r) << "no answer";
  EXPECT_EQ(r->status, status) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/problem+json") << r->body;
  const auto j = nlohmann::json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r->body;
  EXPECT_EQ(j["status"], status);
  EXPECT_FALSE(j["detail"].get<std::string>().empty());
  if (!reason_part.empty()) {
    EXPECT_NE(r->body.find(reason_part), std::string::npos) << r->body;
  }
}

}  // namespace persona::server::testing
