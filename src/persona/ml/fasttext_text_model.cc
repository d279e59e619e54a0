#include "persona/ml/fasttext_text_model.h"

#include <fasttext/fasttext.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include <fmt/format.h>

#include "persona/core/binary_io.h"
#include "persona/core/json.h"
#include "persona/text/normalize.h"
#include "persona/text/tokenizer.h"

namespace persona::ml {
namespace {

// fastText trains from files: a private temporary directory, removed on every exit path.
class TempDirectory {
 public:
  TempDirectory() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / fmt::format("persona-fasttext-{:x}", rd() ^ (uint64_t{rd()} << 32));
    std::filesystem::create_directories(path_);
  }
  ~TempDirectory() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The character n-grams fastText hashes for `word` (its computeSubwords): the n-grams of
// "<word>" counted in UTF-8 characters, minn..maxn long, single brackets left out.
void add_subword_hashes(std::string_view word, int minn, int maxn, std::unordered_set<uint64_t>& out) {
  const std::string w = "<" + std::string(word) + ">";
  std::vector<size_t> starts;  // byte offset of each character, and the end
  for (size_t i = 0; i < w.size(); ++i)
    if ((static_cast<unsigned char>(w[i]) & 0xC0) != 0x80) starts.push_back(i);
  starts.push_back(w.size());
  const size_t chars = starts.size() - 1;
  for (size_t i = 0; i < chars; ++i) {
    for (size_t n = static_cast<size_t>(std::max(1, minn)); n <= static_cast<size_t>(maxn) && i + n <= chars; ++n) {
      if (n == 1 && (i == 0 || i + 1 == chars)) continue;
      out.insert(std::hash<std::string_view>{}(std::string_view(w).substr(starts[i], starts[i + n] - starts[i])));
    }
  }
}

// Writes the texts in fastText's format and returns how many distinct hashed inputs (word
// n-grams of 2..word_ngrams words, character n-grams of minn..maxn) they hold, which sizes the
// hash buckets.
size_t write_training_file(const std::string& path, const LabelledTexts& data, const FastTextParams& params) {
  std::ofstream out(path, std::ios::binary);
  std::unordered_set<uint64_t> ngrams;
  std::unordered_set<std::string> words;
  std::vector<uint64_t> hashes;
  const bool subwords = params.maxn > 0;
  for (size_t i = 0; i < data.size(); ++i) {
    const std::string line = fasttext_tokens(data.texts[i]);
    out << "__label__" << data.labels[i] << ' ' << line << '\n';
    hashes.clear();
    const std::string_view text = line;
    for (size_t b = 0; b < text.size();) {
      size_t e = text.find(' ', b);
      if (e == std::string::npos) e = text.size();
      const auto word = text.substr(b, e - b);
      if (subwords) words.emplace(word);
      if (params.word_ngrams > 1) hashes.push_back(std::hash<std::string_view>{}(word));
      b = e + 1;
    }
    for (size_t w = 0; w < hashes.size(); ++w) {
      uint64_t h = hashes[w];
      for (size_t n = 1; n < static_cast<size_t>(params.word_ngrams) && w + n < hashes.size(); ++n) {
        h = h * 116049371 + hashes[w + n];  // fastText's own n-gram hash step
        ngrams.insert(h);
      }
    }
  }
  if (!out.flush()) throw std::runtime_error("cannot write fastText training file " + path);
  for (const auto& word : words) add_subword_hashes(word, params.minn, params.maxn, ngrams);
  return ngrams.size();
}

// Hash buckets: four per distinct hashed input (about one in five shares its row with another),
// at least 2^16 and at most what was asked. fastText's 2,000,000 suit corpora of millions of
// texts; for tens of thousands they make a 400 MB matrix (dim 50) whose random start alone took
// seconds, could not be stopped at a deadline, and was saved whole into the model file. On SST-2
// (100,000 distinct word 2-grams and character 2-4-grams) 2,000,000, 800,000, 400,000 and
// 200,000 buckets scored 0.814, 0.810, 0.813 and 0.802 on its dev set: within its noise.
int buckets_for(size_t distinct_ngrams, int asked) {
  const size_t wanted = std::max<size_t>(size_t{1} << 16, 4 * distinct_ngrams);
  return static_cast<int>(std::min<size_t>(wanted, static_cast<size_t>(std::max(asked, 0))));
}

// One training run stopped at `abort_at`, or earlier once fastText's own estimate of the time
// left (reported through its callback) says it cannot finish by then.
void train_until(fasttext::FastText& ft, const fasttext::Args& args, FastTextModel::Clock::time_point abort_at) {
  using Clock = FastTextModel::Clock;
  if (abort_at == Clock::time_point::max()) {
    ft.train(args);
    return;
  }
  std::atomic<bool> aborted{false};
  // Every training thread calls back: the first to see the deadline aborts.
  auto callback = [&](float progress, float, double, double, int64_t eta_s) {
    const auto now = Clock::now();
    // The estimate settles after the first few per cent.
    const bool hopeless = progress > 0.05f && now + std::chrono::seconds(eta_s) > abort_at;
    if ((now >= abort_at || hopeless) && !aborted.exchange(true)) ft.abort();
  };
  try {
    ft.train(args, callback);
  } catch (const std::exception&) {
    if (aborted || Clock::now() >= abort_at)
      throw TrainingTimedOut("fastText's training could not finish within the time given to it");
    throw;
  }
}

}  // namespace

std::string fasttext_tokens(std::string_view text) {
  return fasttext_tokens(text::tokenize(text::normalize_for_analysis(text)));
}

std::string fasttext_tokens(const std::vector<text::Token>& tokens) {
  std::string line;
  std::u32string cps;
  for (const auto& t : tokens) {
    if (t.kind == text::TokenKind::Ideographic) {
      text::decode_utf8(t.text, cps);
      for (char32_t c : cps) {
        if (!line.empty()) line += ' ';
        text::append_utf8(c, line);
      }
    } else {
      if (!line.empty()) line += ' ';
      line += t.text;
    }
  }
  return line;
}

nlohmann::json FastTextParams::to_json() const {
  return {{"lr", lr},       {"epoch", epoch}, {"dim", dim},   {"word_ngrams", word_ngrams},
          {"minn", minn},   {"maxn", maxn},   {"bucket", bucket}};
}

FastTextModel::~FastTextModel() = default;

std::unique_ptr<FastTextModel> FastTextModel::train(const LabelledTexts& data, const FastTextParams& params,
                                                    Clock::time_point abort_at) {
  if (data.size() == 0) throw std::invalid_argument("no training texts");
  TempDirectory dir;
  const std::string train_file = dir.file("train.txt");
  const size_t distinct_ngrams = write_training_file(train_file, data, params);
  fasttext::Args args;
  args.input = train_file;
  args.model = fasttext::model_name::sup;
  args.loss = fasttext::loss_name::softmax;
  args.lr = params.lr;
  args.epoch = params.epoch;
  args.dim = params.dim;
  args.wordNgrams = params.word_ngrams;
  args.minn = params.minn;
  args.maxn = params.maxn;
  const bool hashed = params.word_ngrams > 1 || params.maxn > 0;
  args.bucket = hashed ? buckets_for(distinct_ngrams, params.bucket) : 0;
  args.minCount = 1;
  args.thread = std::max(1, params.threads);
  args.seed = params.seed;
  args.verbose = 0;
  auto ft = std::make_shared<fasttext::FastText>();
  auto out = std::make_unique<FastTextModel>();
  out->params_ = params;
  out->params_.bucket = args.bucket;
  // Stopped at the deadline from its own progress callback. Not by a watchdog thread: fastText's
  // abort() throws and keeps the exception for the training threads to rethrow, and calling it
  // from another thread while they train races on it (ThreadSanitizer found it).
  train_until(*ft, args, abort_at);
  out->model_ = ft;
  out->classes_ = static_cast<int>(data.label_names.size());
  return out;
}

std::vector<float> FastTextModel::predict(const text::PreparedText& text) const {
  std::vector<float> p(static_cast<size_t>(classes_), 0.0f);
  std::istringstream in(fasttext_tokens(text.tokens) + "\n");
  std::vector<std::pair<fasttext::real, std::string>> predictions;
  model_->predictLine(in, predictions, -1, 0.0);
  double sum = 0;
  for (const auto& [prob, label] : predictions) {
    const int c = std::stoi(label.substr(9));
    if (c >= 0 && c < classes_) {
      p[static_cast<size_t>(c)] = prob;
      sum += prob;
    }
  }
  if (sum <= 0) {
    std::fill(p.begin(), p.end(), 1.0f / static_cast<float>(std::max(1, classes_)));
  } else {
    for (auto& x : p) x = static_cast<float>(x / sum);
  }
  return p;
}

bool FastTextModel::knows_word(std::string_view word) const {
  const auto dictionary = model_->getDictionary();
  // The same pieces fastText was trained on: Chinese words are split into characters.
  const std::string line = fasttext_tokens(word);
  for (size_t b = 0; b < line.size();) {
    size_t e = line.find(' ', b);
    if (e == std::string::npos) e = line.size();
    if (dictionary->getId(line.substr(b, e - b)) < 0) return false;
    b = e + 1;
  }
  return !line.empty();
}

std::string FastTextModel::to_bytes() const {
  TempDirectory dir;
  const std::string file = dir.file("model.bin");
  model_->saveModel(file);
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  ByteWriter w;
  w.put_string(params_.to_json().dump());
  w.put<int32_t>(classes_);
  w.put_string(ss.str());
  return std::move(w.bytes());
}

std::unique_ptr<FastTextModel> FastTextModel::from_bytes(std::string_view bytes) {
  ByteReader r(bytes);
  auto m = std::make_unique<FastTextModel>();
  const auto params = parse_json(r.get_string()).value_or(nlohmann::json());
  if (params.is_object()) {
    m->params_.lr = params.value("lr", 0.5);
    m->params_.epoch = params.value("epoch", 25);
    m->params_.dim = params.value("dim", 50);
    m->params_.word_ngrams = params.value("word_ngrams", 2);
    m->params_.minn = params.value("minn", 0);
    m->params_.maxn = params.value("maxn", 0);
  }
  m->classes_ = r.get<int32_t>();
  std::istringstream in(r.get_string());
  m->model_ = std::make_shared<fasttext::FastText>();
  // FastText::loadModel(istream&) expects the stream after the file signature, which only the
  // private checkModel reads: check it here (fastText 0.9's magic number and version 12).
  int32_t magic = 0, version = 0;
  in.read(reinterpret_cast<char*>(&magic), sizeof magic);
  in.read(reinterpret_cast<char*>(&version), sizeof version);
  if (!in || magic != 793712314 || version > 12)
    throw std::runtime_error("the fastText part of the model is not a fastText model of a known version");
  try {
    m->model_->loadModel(in);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("the fastText part of the model is unreadable: ") + e.what());
  }
  return m;
}

}  // namespace persona::ml
