#include "persona/sample/shop_generator.h"

#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/core/time.h"

namespace persona::sample {
namespace {

struct Category {
  const char* path;
  const char* path_zh;
  const char* noun;
  const char* noun_zh;
  double price_median;
  bool consumable;  // re-bought often
  std::vector<const char*> brands;
  std::vector<const char*> adjectives;
};

const std::vector<Category>& categories() {
  static const std::vector<Category> c = {
      {"Electronics > Audio", "电子产品 > 音频", "Headphones", "耳机", 60, false, {"Sonic", "AudioMax", "漫步者"}, {"Wireless", "Noise-Cancelling", "Bass"}},
      {"Electronics > Phones", "电子产品 > 手机", "Phone Case", "手机壳", 15, false, {"Shield", "小米", "Anker"}, {"Slim", "Rugged", "Clear"}},
      {"Home > Kitchen", "家居 > 厨房", "Kettle", "电水壶", 35, false, {"美的", "HomeChef", "Bosch"}, {"Electric", "Glass", "Steel"}},
      {"Home > Decor", "家居 > 装饰", "Candle Holder", "烛台", 12, false, {"Nordic", "宜家", "Lumen"}, {"Hanging", "Ceramic", "Vintage"}},
      {"Beauty > Skincare", "美妆 > 护肤", "Face Cream", "面霜", 28, true, {"自然堂", "Cerave", "Glow"}, {"Hydrating", "Night", "Gentle"}},
      {"Grocery > Tea", "食品 > 茶叶", "Green Tea", "绿茶", 9, true, {"西湖", "Twinings", "TeaLand"}, {"Organic", "Jasmine", "Premium"}},
      {"Grocery > Snacks", "食品 > 零食", "Nut Mix", "坚果", 7, true, {"三只松鼠", "Planters", "良品铺子"}, {"Roasted", "Salted", "Daily"}},
      {"Fashion > Shoes", "服饰 > 鞋", "Running Shoes", "跑鞋", 80, false, {"李宁", "Nike", "Asics"}, {"Lightweight", "Trail", "Classic"}},
      {"Fashion > Clothing", "服饰 > 服装", "T-Shirt", "T恤", 18, false, {"优衣库", "Basic", "H&M"}, {"Cotton", "Oversized", "Striped"}},
      {"Books > Fiction", "图书 > 小说", "Novel", "小说", 14, false, {"人民文学", "Penguin", "中信"}, {"Bestselling", "Illustrated", "Classic"}},
      {"Toys > Building", "玩具 > 积木", "Building Set", "积木", 45, false, {"Lego", "乐高", "BlockCo"}, {"City", "Space", "Creative"}},
      {"Sports > Fitness", "运动 > 健身", "Yoga Mat", "瑜伽垫", 25, false, {"Keep", "Decathlon", "Gaiam"}, {"Non-slip", "Thick", "Travel"}},
  };
  return c;
}

const char* kRegions[] = {"Shanghai", "Beijing", "Guangzhou", "Shenzhen", "Hangzhou", "Chengdu",
                          "London", "Singapore", "New York", "Sydney"};
constexpr int kChineseRegions = 6;

struct User {
  std::string id;
  int age;
  const char* gender;
  int region;
  bool chinese;
  int64_t signup;
  std::vector<double> taste;  // per category
  double price_sensitivity;   // 0..1
  double activity;            // relative number of sessions
  double generosity;          // shifts review sentiment
};

struct Product {
  std::string id, title, title_zh;
  int category;
  std::string brand;
  double price;
  double quality;  // 0..1; drives returns and review sentiment
  double popularity;
};

const std::vector<std::pair<const char*, const char*>> kPositiveReviews = {
    {"Great {}, works perfectly and arrived fast.", "{}质量很好，物流很快，非常满意！"},
    {"Love this {}. Exactly as described, would buy again.", "这个{}很好用，和描述一致，会回购。"},
    {"Excellent value for money, the {} is well made.", "性价比很高，{}做工不错，推荐购买。"},
    {"Very happy with the {}, five stars.", "{}非常满意，五星好评！"},
};
const std::vector<std::pair<const char*, const char*>> kNegativeReviews = {
    {"The {} broke after two days. Very disappointed.", "{}用了两天就坏了，太失望了。"},
    {"Not as described, the {} feels cheap. Returning it.", "{}和描述不符，做工很差，已申请退货。"},
    {"Terrible quality {}, waste of money.", "{}质量太差了，浪费钱。"},
    {"Arrived late and the {} was damaged.", "物流太慢，{}收到时已经损坏了。"},
};
const std::vector<std::pair<const char*, const char*>> kNeutralReviews = {
    {"The {} is okay, nothing special.", "{}还行吧，一般般。"},
    {"Average {}, does the job.", "{}中规中矩，能用。"},
};

struct Question {
  const char* intent;
  const char* en;
  const char* zh;
};
const std::vector<Question> kQuestions = {
    {"order_status", "Where is my order {order}? It has not arrived yet.", "我的订单{order}怎么还没到？"},
    {"order_status", "Can you check the status of order {order}?", "帮我查一下订单{order}的物流状态"},
    {"return_request", "I want to return the {product}, it does not fit.", "我想退货，{product}不合适"},
    {"return_request", "How do I send back the {product} I bought?", "{product}怎么申请退货？"},
    {"shipping_time", "How long does shipping to {region} take?", "寄到{region}要几天？"},
    {"payment_issue", "My card was charged twice for order {order}.", "订单{order}被重复扣款了"},
    {"product_question", "Is the {product} waterproof?", "{product}防水吗？"},
    {"product_question", "What size is the {product}?", "{product}是什么尺寸的？"},
    {"cancel_order", "Please cancel my order {order}.", "请帮我取消订单{order}"},
    {"change_address", "I need to change the delivery address for {order}.", "订单{order}需要修改收货地址"},
    {"complaint", "This is the third time my delivery is late, I am very unhappy.", "第三次送货迟到了，非常不满意！"},
};

// More ways customers put the same requests, for the support chat log (labelled by intent).
const std::vector<Question> kParaphrases = {
    {"order_status", "My parcel still hasn't arrived, can you check?", "我的快递怎么还没到？"},
    {"order_status", "Has my package been shipped yet?", "我的包裹发货了吗？"},
    {"order_status", "When will my delivery get here?", "我的东西什么时候能送到？"},
    {"order_status", "I'm still waiting for my order, where is it now?", "订单到哪里了？一直没收到"},
    {"return_request", "I'd like to send this back and get my money back.", "这个东西我不想要了，能退吗？"},
    {"return_request", "The item I received is broken, I want a refund.", "收到的商品坏了，我要退款"},
    {"return_request", "It doesn't fit, can I give it back?", "尺码不合适，可以退吗？"},
    {"shipping_time", "How many days does delivery usually take?", "一般几天能到货？"},
    {"shipping_time", "Do you offer express shipping?", "有没有加急快递？"},
    {"payment_issue", "My payment failed but the money was taken.", "付款失败了，但是钱被扣了"},
    {"payment_issue", "I was charged the wrong amount.", "扣款金额不对"},
    {"product_question", "Does this come in other colours?", "这个有其他颜色吗？"},
    {"product_question", "What is this made of?", "这个是什么材质的？"},
    {"cancel_order", "I changed my mind, please don't send the order.", "我不想要了，订单别发了"},
    {"cancel_order", "Can I still stop my order before it ships?", "还没发货的订单能取消吗？"},
    {"change_address", "I moved, please deliver to my new address.", "我搬家了，请寄到新地址"},
    {"change_address", "The delivery address on my order is wrong.", "订单上的收货地址填错了"},
    {"complaint", "Your service is awful, I'm really angry.", "你们的服务太差了，我很生气"},
    {"complaint", "Nobody answers my emails, this is unacceptable.", "一直没人回复，太不像话了"},
};

// Messages a shop's chat also receives that are not about shopping: an analyst labels them
// out_of_scope, so that the intent model learns to say "not mine" (ml::kOutOfScope).
constexpr const char* ml_out_of_scope = "out_of_scope";  // ml::kOutOfScope (the sample does not link ml)
const std::vector<std::pair<const char*, const char*>> kOffTopic = {
    {"What's the weather like tomorrow?", "明天天气怎么样？"},
    {"Tell me a joke.", "给我讲个笑话吧"},
    {"Who won the football match last night?", "昨晚的足球赛谁赢了？"},
    {"Can you help me with my maths homework?", "你能帮我做数学作业吗？"},
    {"What is the meaning of life?", "人生的意义是什么？"},
    {"I'm bored, let's chat.", "好无聊，陪我聊聊天"},
    {"Which movie should I watch tonight?", "今晚看什么电影好？"},
    {"asdf qwerty", "啊啊啊啊"},
    {"Are you a robot?", "你是机器人吗？"},
    {"What time is it in New York?", "纽约现在几点？"},
};

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  double uniform() { return std::uniform_real_distribution<double>(0, 1)(engine_); }
  int below(int n) { return static_cast<int>(uniform() * n) % std::max(n, 1); }
  bool chance(double p) { return uniform() < p; }
  double normal(double mean, double sd) { return std::normal_distribution<double>(mean, sd)(engine_); }
  double lognormal(double mu, double sigma) { return std::exp(normal(mu, sigma)); }
  int poisson(double mean) { return std::poisson_distribution<int>(mean)(engine_); }
  int weighted(const std::vector<double>& cumulative) {
    const double x = uniform() * cumulative.back();
    return static_cast<int>(std::upper_bound(cumulative.begin(), cumulative.end(), x) - cumulative.begin());
  }
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};


std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string iso(int64_t t) {
  std::string s = format_timestamp(t);
  s[10] = 'T';
  return s + "Z";
}

class Writer {
 public:
  Writer(const std::string& path, bool gzip) : path_(path) {
    if (gzip) {
      gz_ = gzopen(path.c_str(), "wb1");
      if (!gz_) throw Error("cannot write", {path});
    } else {
      file_ = std::fopen(path.c_str(), "wb");
      if (!file_) throw Error("cannot write", {path});
    }
    buffer_.reserve(1 << 20);
  }
  ~Writer() { close(); }
  std::string& buffer() { return buffer_; }
  void maybe_flush() {
    if (buffer_.size() > (1 << 20)) flush();
  }
  void close() {
    flush();
    if (gz_) gzclose(gz_);
    if (file_) std::fclose(file_);
    gz_ = nullptr;
    file_ = nullptr;
  }

 private:
  void flush() {
    if (buffer_.empty()) return;
    const bool ok = gz_ ? gzwrite(gz_, buffer_.data(), static_cast<unsigned>(buffer_.size())) == int(buffer_.size())
                        : std::fwrite(buffer_.data(), 1, buffer_.size(), file_) == buffer_.size();
    if (!ok) throw Error("cannot write (disk full?)", {path_});
    buffer_.clear();
  }
  std::string path_, buffer_;
  gzFile gz_ = nullptr;
  std::FILE* file_ = nullptr;
};

std::string shop_config() {
  return R"(# The sample shop: how its files map onto Persona's model, and how they are cleaned.
# Generated by `persona generate`; edit freely. Every key is described in docs/config.md.

[store]
path = "persona.db"

[ingest]
batch_rows = 50000
reject_log = "rejects.jsonl"

[assistant]
order_id_example = "S00001234"   # the shop's orders are named by their session ids

[[sources]]
name = "users"
path = "users.csv"
[sources.user]
id = "user_id"
age = "age"
gender = "gender"
region = "region"
signup_time = { column = "signup_date", format = "%Y-%m-%d" }
attr.member_level = "member_level"
attr.channel = "channel"
[[sources.clean]]
rule = "duplicate_key"
name = "duplicate_user"
fields = ["user.id"]
[[sources.clean]]
rule = "type_error"
name = "bad_age"
fields = ["user.age"]
action = "null"
[[sources.clean]]
rule = "range"
name = "implausible_age"
fields = ["user.age"]
min = 10
max = 110
action = "null"

[[sources]]
name = "items"
path = "items.jsonl"
[sources.item]
id = "item_id"
title = "title"
aliases = "title_zh"
category = "category"
category_aliases = "category_zh"
brand = "brand"
price = "price"
available = "in_stock"
text = "description"
[[sources.clean]]
rule = "duplicate_key"
name = "duplicate_item"
fields = ["item.id"]
[[sources.clean]]
rule = "text_hygiene"

[[sources]]
name = "events"
path = "events.csv.gz"
[sources.event]
user = "user_id"
item = "item_id"
type = "event"
quantity = { column = "quantity", default = "1" }
value = "price"
timestamp = "timestamp"
session = "session_id"
[[sources.clean]]
rule = "exact_duplicate"
[[sources.clean]]
rule = "missing"
name = "missing_user"
fields = ["event.user"]
[[sources.clean]]
rule = "type_error"
[[sources.clean]]
rule = "range"
name = "nonpositive_quantity"
fields = ["event.quantity"]
min = 0
min_exclusive = true
[[sources.clean]]
rule = "range"
name = "negative_price"
fields = ["event.value"]
min = 0
[[sources.clean]]
rule = "outlier"
name = "price_outlier"
fields = ["event.value"]
method = "iqr"
threshold = 8.0
action = "flag"

[[sources]]
name = "texts"
path = "texts.jsonl"
[sources.text]
user = "user_id"
item = "item_id"
kind = "kind"
language = "lang"
body = "text"
label = "intent"
sentiment = "rating"
timestamp = "timestamp"
[[sources.clean]]
rule = "text_hygiene"
[[sources.clean]]
rule = "missing"
name = "empty_text"
fields = ["text.body"]

[[normalise]]
field = "event.value"
method = "robust"

[[normalise]]
field = "user.age"
method = "zscore"
)";
}

}  // namespace

ShopSize ShopSize::named(const std::string& name) {
  if (name == "small") return {300, 120, 20000};
  if (name == "default" || name.empty()) return {};
  if (name == "large") return {50000, 10000, 5000000};
  throw Error(fmt::format("unknown size \"{}\"", name), {}, "use small, default or large");
}

nlohmann::json ShopReport::to_json() const {
  return {{"out_dir", out_dir},
          {"config", config_path},
          {"users", users},
          {"items", items},
          {"events", events},
          {"texts", texts},
          {"dirt",
           {{"duplicate_events", duplicate_events},
            {"missing_user_events", missing_user_events},
            {"bad_timestamp_events", bad_timestamp_events},
            {"negative_quantity_events", negative_quantity_events},
            {"bad_type_events", bad_type_events},
            {"duplicate_users", duplicate_users},
            {"bad_age_users", bad_age_users}}},
          {"seconds", seconds}};
}

ShopReport generate_shop(const ShopOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) throw Error(fmt::format("cannot create the directory: {}", ec.message()), {o.out_dir});
  const auto path = [&](const char* name) { return (std::filesystem::path(o.out_dir) / name).string(); };
  ShopReport report;
  report.out_dir = o.out_dir;
  Rng rng(o.seed);
  const auto& cats = categories();
  const int n_cats = static_cast<int>(cats.size());
  const int64_t year_start = days_from_civil(o.year, 1, 1) * 86400;
  const int64_t year_end = days_from_civil(o.year + 1, 1, 1) * 86400;

  // ---- catalogue
  std::vector<Product> products;
  std::vector<std::vector<int>> by_category(n_cats);
  for (int i = 0; i < o.size.items; ++i) {
    Product p;
    p.category = i % n_cats;
    const Category& c = cats[p.category];
    p.id = fmt::format("P{:05d}", i + 1);
    p.brand = c.brands[rng.below(static_cast<int>(c.brands.size()))];
    const char* adjective = c.adjectives[rng.below(static_cast<int>(c.adjectives.size()))];
    const int model = 100 + rng.below(900);
    p.title = fmt::format("{} {} {} {}", p.brand, adjective, c.noun, model);
    p.title_zh = fmt::format("{}{}{}", p.brand, c.noun_zh, model);
    p.price = std::round(c.price_median * rng.lognormal(0, 0.45) * 100) / 100;
    p.quality = std::clamp(rng.normal(0.75, 0.15), 0.05, 1.0);
    p.popularity = 1.0 / std::pow(static_cast<double>(by_category[p.category].size() + 1), 0.8);  // Zipf in category
    by_category[p.category].push_back(i);
    products.push_back(std::move(p));
  }
  std::vector<std::vector<double>> popularity_cdf(n_cats);
  for (int c = 0; c < n_cats; ++c) {
    double sum = 0;
    for (int i : by_category[c]) popularity_cdf[c].push_back(sum += products[i].popularity);
  }
  {
    Writer items(path("items.jsonl"), false);
    for (const auto& p : products) {
      const Category& c = cats[p.category];
      // About one item in fifty is out of stock now (fixed by position, so the random stream,
      // and with it every event, stays the same).
      const size_t index = static_cast<size_t>(&p - products.data());
      const bool in_stock = index % 50 != 7;
      fmt::format_to(std::back_inserter(items.buffer()),
                     "{{\"item_id\":\"{}\",\"title\":\"{}\",\"title_zh\":\"{}\",\"category\":\"{}\",\"category_zh\":"
                     "\"{}\",\"brand\":\"{}\",\"price\":{:.2f},\"in_stock\":{},\"description\":\"{}. {}，{}品牌正品。\"}}\n",
                     p.id, json_escape(p.title), json_escape(p.title_zh), c.path, c.path_zh, json_escape(p.brand),
                     p.price, in_stock, json_escape(p.title), json_escape(p.title_zh), json_escape(p.brand));
    }
    report.items = static_cast<int64_t>(products.size());
  }

  // ---- users
  std::vector<User> users;
  {
    Writer out(path("users.csv"), false);
    out.buffer() += "user_id,age,gender,region,signup_date,member_level,channel\n";
    for (int i = 0; i < o.size.users; ++i) {
      User u;
      u.id = fmt::format("U{:06d}", i + 1);
      u.age = std::clamp(static_cast<int>(rng.normal(34, 11)), 16, 80);
      u.gender = rng.chance(0.52) ? "F" : "M";
      u.region = rng.chance(0.7) ? rng.below(kChineseRegions) : kChineseRegions + rng.below(4);
      u.chinese = u.region < kChineseRegions ? rng.chance(0.9) : rng.chance(0.1);
      u.signup = year_start - 86400 * static_cast<int64_t>(rng.below(3 * 365)) + rng.below(86400);
      u.taste.resize(n_cats);
      for (auto& t : u.taste) t = std::pow(rng.uniform(), 3.0);  // a few strong tastes
      u.taste[(u.age / 10 + (u.gender[0] == 'F' ? 4 : 0)) % n_cats] += 0.6;  // demographics shape taste
      u.price_sensitivity = std::clamp(rng.normal(0.5, 0.2), 0.0, 1.0);
      u.activity = rng.lognormal(0, 0.8);
      u.generosity = rng.normal(0, 0.12);
      std::string age = std::to_string(u.age);
      if (o.dirt && rng.chance(0.01)) {
        age = rng.chance(0.5) ? "" : (rng.chance(0.5) ? "abc" : "-5");
        report.bad_age_users += age.empty() ? 0 : 1;
      }
      // Free-form attributes a shop keeps: a loyalty level that follows activity, and the
      // channel the user signed up through (mini programs are common in China).
      const char* level = u.activity > 2.0 ? "gold" : u.activity > 0.8 ? "silver" : "bronze";
      const char* channel = u.chinese ? (rng.chance(0.5) ? "mini_program" : "app") : (rng.chance(0.6) ? "web" : "app");
      const std::string line = fmt::format("{},{},{},{},{},{},{}\n", u.id, age, u.gender, kRegions[u.region],
                                           format_date(u.signup), level, channel);
      out.buffer() += line;
      if (o.dirt && rng.chance(0.005)) {
        out.buffer() += line;
        ++report.duplicate_users;
      }
      users.push_back(std::move(u));
    }
    report.users = static_cast<int64_t>(users.size());
    // The hidden truth: each user's category tastes (shares) and price sensitivity, for checking
    // what profiles and recommendations learn. No stage of Persona reads this file.
    Writer latent(path("latent.jsonl"), false);
    for (const auto& u : users) {
      double sum = 0;
      for (double t : u.taste) sum += t;
      std::string tastes;
      for (int c = 0; c < n_cats; ++c)
        if (u.taste[c] / sum >= 0.005)
          tastes += fmt::format("{}\"{}\":{:.4f}", tastes.empty() ? "" : ",", cats[c].path, u.taste[c] / sum);
      latent.buffer() += fmt::format("{{\"user_id\":\"{}\",\"tastes\":{{{}}},\"price_sensitivity\":{:.4f}}}\n", u.id, tastes,
                                     u.price_sensitivity);
      latent.maybe_flush();
    }
    latent.close();
  }

  // ---- events and texts
  double activity_sum = 0;
  for (const auto& u : users) activity_sum += u.activity;
  const double events_per_session = 7.5;
  const double sessions_total = static_cast<double>(o.size.target_events) / events_per_session;
  Writer events(path("events.csv.gz"), true);
  Writer texts(path("texts.jsonl"), false);
  events.buffer() += "user_id,item_id,event,quantity,price,timestamp,session_id\n";
  int64_t session_counter = 0, order_counter = 0;
  std::vector<double> taste_cdf(n_cats);

  auto emit = [&](const User& u, const Product& p, const char* type, int quantity, double price, int64_t t,
                  const std::string& session) {
    std::string user = u.id, ts = iso(t), qty = std::to_string(quantity), kind = type;
    if (o.dirt) {
      const double x = rng.uniform();
      if (x < 0.002) { user.clear(); ++report.missing_user_events; }
      else if (x < 0.003) { ts = rng.chance(0.5) ? "2025-13-45 99:00" : "yesterday"; ++report.bad_timestamp_events; }
      else if (x < 0.0035 && kind == "purchase") { qty = "-" + qty; ++report.negative_quantity_events; }
      else if (x < 0.0038) { kind = "clik"; ++report.bad_type_events; }
    }
    const std::string price_text = price > 0 ? fmt::format("{:.2f}", price) : "";
    std::string line = fmt::format("{},{},{},{},{},{},{}\n", user, p.id, kind, qty, price_text, ts, session);
    events.buffer() += line;
    ++report.events;
    if (o.dirt && rng.chance(0.004)) {  // the same line sent twice by a retrying client
      events.buffer() += line;
      ++report.duplicate_events;
    }
    events.maybe_flush();
  };

  auto write_text = [&](const User& u, const Product* p, const char* kind, const std::string& body, const char* intent,
                        int rating, int64_t t) {
    std::string line = fmt::format("{{\"user_id\":\"{}\"", u.id);
    if (p) line += fmt::format(",\"item_id\":\"{}\"", p->id);
    line += fmt::format(",\"kind\":\"{}\",\"lang\":\"{}\",\"text\":\"{}\"", kind, u.chinese ? "zh" : "en", json_escape(body));
    if (intent) line += fmt::format(",\"intent\":\"{}\"", intent);
    if (rating > 0) line += fmt::format(",\"rating\":{}", rating);
    line += fmt::format(",\"timestamp\":\"{}\"}}\n", iso(t));
    texts.buffer() += line;
    texts.maybe_flush();
    ++report.texts;
  };

  for (const auto& u : users) {
    double sum = 0;
    for (int c = 0; c < n_cats; ++c) taste_cdf[c] = sum += u.taste[c];
    const int sessions = std::max(1, rng.poisson(sessions_total * u.activity / activity_sum));
    std::vector<int> bought;
    const int64_t first = std::max(u.signup, year_start);
    for (int s = 0; s < sessions; ++s) {
      int64_t t = first + static_cast<int64_t>(rng.uniform() * static_cast<double>(year_end - first - 7200));
      // Sessions cluster in the evening.
      const int64_t day = t - t % 86400;
      t = day + static_cast<int64_t>(std::clamp(rng.normal(20.0, 3.5), 0.0, 23.5) * 3600);
      const std::string session = fmt::format("S{:08d}", ++session_counter);
      // Repeat purchase of something bought before (consumables above all).
      if (!bought.empty() && rng.chance(0.25)) {
        const Product& p = products[bought[rng.below(static_cast<int>(bought.size()))]];
        if (cats[p.category].consumable || rng.chance(0.2)) {
          emit(u, p, "view", 1, p.price, t, session);
          emit(u, p, "purchase", 1 + rng.below(3), p.price, t += 60 + rng.below(300), session);
          continue;
        }
      }
      const int c = rng.weighted(taste_cdf);
      const int views = 1 + rng.poisson(5.0);
      for (int v = 0; v < views; ++v) {
        const Product& p = products[by_category[c][rng.weighted(popularity_cdf[c])]];
        emit(u, p, "view", 1, p.price, t += 20 + rng.below(200), session);
        if (rng.chance(0.15)) emit(u, p, "click", 1, p.price, t += 5 + rng.below(30), session);
        if (rng.chance(0.03)) emit(u, p, "favourite", 1, p.price, t += 5, session);
        const double affordability = 1.0 - u.price_sensitivity * std::min(1.0, p.price / (2 * cats[c].price_median));
        if (!rng.chance(0.12 * (0.5 + affordability))) continue;
        emit(u, p, "cart", 1, p.price, t += 10 + rng.below(60), session);
        if (!rng.chance(0.55 * (0.4 + affordability))) continue;
        const int quantity = cats[c].consumable ? 1 + rng.below(4) : 1;
        // Occasional price outliers: a bulk or mis-keyed price.
        const double paid = o.dirt && rng.chance(0.001) ? p.price * 40 : p.price;
        emit(u, p, "purchase", quantity, paid, t += 30 + rng.below(120), session);
        ++order_counter;
        bought.push_back(static_cast<int>(&p - products.data()));
        // Experience: quality plus delivery luck decides returns and reviews.
        const double experience = p.quality + rng.normal(0, 0.2);
        const int64_t later = t + 86400 * (2 + rng.below(10));
        const bool returned = experience < 0.45 && rng.chance(0.6);
        if (returned && later < year_end) emit(u, p, "return", quantity, p.price, later, session);
        if (rng.chance(0.18) && later < year_end) {
          const double mood = experience + u.generosity - (returned ? 0.3 : 0);
          const int rating = std::clamp(static_cast<int>(std::lround(1 + mood * 5)), 1, 5);
          const auto& pool = rating >= 4 ? kPositiveReviews : rating <= 2 ? kNegativeReviews : kNeutralReviews;
          const auto& tmpl = pool[rng.below(static_cast<int>(pool.size()))];
          const std::string body = u.chinese ? fmt::format(fmt::runtime(tmpl.second), p.title_zh)
                                             : fmt::format(fmt::runtime(tmpl.first), std::string(cats[c].noun));
          emit(u, p, "rate", 1, rating, later + 60, session);
          write_text(u, &p, "review", body, nullptr, rating, later + 60);
        }
        if (rng.chance(0.06) && later < year_end) {
          const Question& q = kQuestions[rng.below(static_cast<int>(kQuestions.size()))];
          std::string body = u.chinese ? q.zh : q.en;
          auto replace = [&](const std::string& key, const std::string& value) {
            const auto pos = body.find(key);
            if (pos != std::string::npos) body.replace(pos, key.size(), value);
          };
          replace("{order}", fmt::format("ORD-{}-{:06d}", o.year, order_counter));
          replace("{product}", u.chinese ? p.title_zh : p.title);
          replace("{region}", kRegions[u.region]);
          write_text(u, &p, "chat", body, q.intent, 0, later - 86400);
        }
      }
    }
  }
  {
    // The support chat log: more paraphrased requests and off-topic messages, from a generator of
    // its own so that the shop's other data stay as they were.
    Rng chat(o.seed ^ 0x6f66662d746f7069ULL);
    auto when = [&] { return year_start + static_cast<int64_t>(chat.uniform() * static_cast<double>(year_end - year_start)); };
    auto anyone = [&]() -> const User& { return users[static_cast<size_t>(chat.below(static_cast<int>(users.size())))]; };
    const int requests = std::max(120, static_cast<int>(users.size()) / 2);
    for (int i = 0; i < requests; ++i) {
      const User& u = anyone();
      const auto& q = kParaphrases[static_cast<size_t>(chat.below(static_cast<int>(kParaphrases.size())))];
      write_text(u, nullptr, "chat", u.chinese ? q.zh : q.en, q.intent, 0, when());
    }
    const int off_topic = std::max(40, static_cast<int>(users.size()) / 8);
    for (int i = 0; i < off_topic; ++i) {
      const User& u = anyone();
      const auto& m = kOffTopic[static_cast<size_t>(chat.below(static_cast<int>(kOffTopic.size())))];
      write_text(u, nullptr, "chat", u.chinese ? m.second : m.first, ml_out_of_scope, 0, when());
    }
  }
  events.close();
  texts.close();

  // The shop's FAQ, in English and Chinese, for the assistant (persona faq build faq.json).
  {
    Writer faq(path("faq.json"), false);
    faq.buffer() += R"json([
  {"id": "returns", "question": "How do I return an item?", "answer": "Open My Orders, choose the item and press Return within 30 days of delivery; refunds reach your account within 5 working days."},
  {"id": "shipping-time", "question": "How long does delivery take?", "answer": "Standard delivery takes 3 to 5 working days; express delivery takes 1 to 2 working days."},
  {"id": "shipping-cost", "question": "How much is shipping?", "answer": "Shipping is free on orders over 99; below that it costs 8."},
  {"id": "payment", "question": "Which payment methods do you accept?", "answer": "We accept credit and debit cards, Alipay, WeChat Pay and PayPal."},
  {"id": "invoice", "question": "Can I get an invoice?", "answer": "Yes: choose an electronic invoice at checkout and it is emailed to you."},
  {"id": "password", "question": "I forgot my password, what can I do?", "answer": "Press Forgot password on the sign-in page and follow the link we email you."},
  {"id": "退货", "question": "怎么申请退货？", "answer": "在我的订单中选择商品，点击申请退货，签收后30天内均可退货，退款5个工作日内到账。"},
  {"id": "配送时间", "question": "多久能送到？", "answer": "普通快递3到5个工作日送达，加急快递1到2个工作日送达。"},
  {"id": "运费", "question": "运费怎么算？", "answer": "订单满99元包邮，不满99元运费8元。"},
  {"id": "支付方式", "question": "支持哪些支付方式？", "answer": "支持银行卡、支付宝、微信支付和PayPal。"},
  {"id": "发票", "question": "可以开发票吗？", "answer": "可以，下单时选择电子发票，开具后发送到您的邮箱。"},
  {"id": "忘记密码", "question": "忘记密码怎么办？", "answer": "在登录页点击忘记密码，按邮件中的链接重设即可。"}
]
)json";
    faq.close();
  }

  report.config_path = path("shop.toml");
  Writer config(report.config_path, false);
  config.buffer() += shop_config();
  config.close();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace persona::sample
