// Any bytes as a model file, and any payload as a linear text model or a tabular model: a clear
// error (an exception) or a model, never a crash, a hang or a huge allocation.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "persona/ml/model_file.h"
#include "persona/ml/tabular.h"
#include "persona/ml/text_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    persona::ml::parse_model_file(bytes, "fuzz.model");
  } catch (const std::runtime_error&) {
  }
  try {
    auto m = persona::ml::text_model_from_bytes("tfidf-linear", bytes);
    m->predict("where is my order 我的订单");
  } catch (const std::runtime_error&) {
  }
  for (const char* kind : {"logistic", "mlp"}) {
    try {
      auto m = persona::ml::make_tabular_classifier(kind);
      m->from_bytes(bytes);
    } catch (const std::runtime_error&) {
    }
  }
  return 0;
}
