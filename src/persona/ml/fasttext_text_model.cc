#include "persona/ml/fasttext_text_model.h"

#include <fasttext/fasttext.h>

#include <atomic>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include <Imath/half.h>
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

// The input matrix after training. Its rows no training text reaches (hash buckets none of its
// n-grams fell into: about four in five, at four buckets per n-gram) hold only their random
// start, noise added to any new text whose n-gram lands there: they are zeroed. The others are
// rounded to half precision, as they are stored. Both happen before validation, so the model
// validated is the model saved. Returns which rows are in use.
std::vector<bool> settle_input_rows(fasttext::FastText& ft, const std::string& train_file) {
  const auto dictionary = ft.getDictionary();
  const auto matrix = ft.getInputMatrix();
  const auto rows = static_cast<size_t>(matrix->size(0)), dim = static_cast<size_t>(matrix->size(1));
  std::vector<bool> used(rows, false);
  std::ifstream in(train_file, std::ios::binary);
  std::vector<int32_t> ids, labels;
  // getLine seeks back to the start at the end of the stream: stop before.
  while (in.peek() != std::char_traits<char>::eof()) {
    dictionary->getLine(in, ids, labels);
    for (const int32_t id : ids)
      if (id >= 0 && static_cast<size_t>(id) < rows) used[static_cast<size_t>(id)] = true;
  }
  // The matrix is fastText's own, not a const object: only its accessor is const.
  float* data = const_cast<fasttext::DenseMatrix&>(*matrix).data();
  for (size_t r = 0; r < rows; ++r) {
    float* row = data + r * dim;
    if (!used[r]) {
      std::fill(row, row + dim, 0.0f);
      continue;
    }
    for (size_t d = 0; d < dim; ++d) row[d] = imath_half_to_float(imath_float_to_half(row[d]));
  }
  return used;
}

// fastText's model file read back from its stored pieces without building it whole in memory
// first: the bytes before the input matrix's values, the matrix (its used rows in half precision,
// the others zero) decoded a block of rows at a time, then the bytes after it.
class StoredModelStream : public std::streambuf {
 public:
  StoredModelStream(std::string_view head, std::vector<bool> used, std::string_view halves, size_t dim,
                    std::string_view tail)
      : head_(head), used_(std::move(used)), halves_(halves), dim_(dim), tail_(tail) {}

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    if (stage_ == 0) {
      stage_ = 1;
      if (!head_.empty()) return serve(head_);
    }
    if (stage_ == 1 && row_ < used_.size()) return serve_rows();
    if (stage_ == 1) {
      stage_ = 2;
      if (!tail_.empty()) return serve(tail_);
    }
    return traits_type::eof();
  }

 private:
  int_type serve(std::string_view bytes) {
    char* begin = const_cast<char*>(bytes.data());  // read only: the get area is never written
    setg(begin, begin, begin + bytes.size());
    return traits_type::to_int_type(*begin);
  }
  int_type serve_rows() {
    constexpr size_t kRows = 1024;
    const size_t end = std::min(used_.size(), row_ + kRows);
    block_.assign((end - row_) * dim_, 0.0f);
    for (size_t r = row_; r < end; ++r) {
      if (!used_[r]) continue;
      uint16_t h = 0;
      float* out = block_.data() + (r - row_) * dim_;
      for (size_t d = 0; d < dim_; ++d, half_ += sizeof h) {
        std::memcpy(&h, halves_.data() + half_, sizeof h);
        out[d] = imath_half_to_float(h);
      }
    }
    row_ = end;
    return serve({reinterpret_cast<const char*>(block_.data()), block_.size() * sizeof(float)});
  }

  std::string_view head_;
  std::vector<bool> used_;
  std::string_view halves_;
  size_t dim_, row_ = 0, half_ = 0;
  std::string_view tail_;
  std::vector<float> block_;
  int stage_ = 0;
};

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
  out->used_rows_ = settle_input_rows(*ft, train_file);
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

// The payload: the parameters, the number of classes, then fastText's own model file in three
// pieces: the bytes before the input matrix's values, the used rows (a bitmap and their values in
// half precision; the other rows are zero, see settle_input_rows), and the bytes after (the
// output matrix, classes x dim, kept whole). Models stored whole (before this layout, or when
// the file does not have the layout expected) say so by lacking "rows" in the parameters.
std::string FastTextModel::to_bytes() const {
  TempDirectory dir;
  const std::string file = dir.file("model.bin");
  model_->saveModel(file);
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string saved = ss.str();
  nlohmann::json params = params_.to_json();
  ByteWriter w;
  const auto input = model_->getInputMatrix(), output = model_->getOutputMatrix();
  const auto rows = static_cast<size_t>(input->size(0)), dim = static_cast<size_t>(input->size(1));
  const size_t values = rows * dim * sizeof(float);
  const size_t tail = 1 + 2 * sizeof(int64_t) + static_cast<size_t>(output->size(0) * output->size(1)) * sizeof(float);
  const size_t values_at = saved.size() >= tail + values + 17 ? saved.size() - tail - values : 0;
  auto int64_at = [&](size_t at) {
    int64_t v = 0;
    std::memcpy(&v, saved.data() + at, sizeof v);
    return v;
  };
  const bool layout = used_rows_.size() == rows && values_at > 0 && saved[values_at - 17] == 0 &&
                      int64_at(values_at - 16) == static_cast<int64_t>(rows) &&
                      int64_at(values_at - 8) == static_cast<int64_t>(dim);
  if (!layout) {
    w.put_string(params.dump());
    w.put<int32_t>(classes_);
    w.put_string(saved);
    return std::move(w.bytes());
  }
  params["rows"] = "used-f16";
  std::string bitmap((rows + 7) / 8, '\0'), halves;
  const float* data = input->data();
  for (size_t r = 0; r < rows; ++r) {
    if (!used_rows_[r]) continue;
    bitmap[r / 8] = static_cast<char>(bitmap[r / 8] | (1 << (r % 8)));
    for (size_t d = 0; d < dim; ++d) {
      const uint16_t h = imath_float_to_half(data[r * dim + d]);
      halves.append(reinterpret_cast<const char*>(&h), sizeof h);
    }
  }
  w.put_string(params.dump());
  w.put<int32_t>(classes_);
  w.put_string(std::string_view(saved).substr(0, values_at));
  w.put<uint64_t>(rows);
  w.put<uint64_t>(dim);
  w.put_string(bitmap);
  w.put_string(halves);
  w.put_string(std::string_view(saved).substr(values_at + values));
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
    m->params_.bucket = params.value("bucket", 0);
  }
  m->classes_ = r.get<int32_t>();
  std::unique_ptr<std::streambuf> source;
  if (params.is_object() && params.value("rows", "") == "used-f16") {
    const std::string_view head = r.get_view();
    const auto rows = r.get<uint64_t>(), dim = r.get<uint64_t>();
    const std::string_view bitmap = r.get_view(), halves = r.get_view(), tail = r.get_view();
    if (rows > (uint64_t{1} << 32) || dim == 0 || dim > 4096 || bitmap.size() != (rows + 7) / 8)
      throw std::runtime_error("the fastText part of the model is damaged");
    std::vector<bool> used(rows);
    size_t count = 0;
    for (size_t i = 0; i < rows; ++i) count += used[i] = (static_cast<uint8_t>(bitmap[i / 8]) >> (i % 8)) & 1;
    if (halves.size() != count * dim * sizeof(uint16_t)) throw std::runtime_error("the fastText part of the model is damaged");
    m->used_rows_ = used;
    source = std::make_unique<StoredModelStream>(head, std::move(used), halves, dim, tail);
  } else {
    const std::string_view whole = r.get_view();
    source = std::make_unique<StoredModelStream>(whole, std::vector<bool>{}, std::string_view{}, 0, std::string_view{});
  }
  std::istream in(source.get());
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
  if (!in) throw std::runtime_error("the fastText part of the model is truncated");
  return m;
}

}  // namespace persona::ml
