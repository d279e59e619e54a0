#pragma once
// Stop words for English and Chinese: used by keyword extraction (never by the classifiers,
// where "not" and "不" carry the sentiment).
#include <string_view>

namespace persona::text {

bool is_stop_word(std::string_view normalized_token);

}  // namespace persona::text
