#pragma once
// Text files in other encodings than UTF-8, which Persona uses inside. A source may name its
// encoding (`encoding = "gb18030"` in its mapping: any name ICU knows, such as gbk, gb18030,
// big5, shift_jis, utf-16le, windows-1252); its bytes are then converted to UTF-8 as they are
// read (ICU's converters). Without one, a byte-order mark decides (UTF-16 and UTF-32 are
// converted, UTF-8's is dropped by the readers), and a file that is plainly not UTF-8 (mostly NUL
// bytes: UTF-16 without a mark; mostly invalid sequences: GBK, Big5...) is refused at once with
// the encoding to set, instead of garbled columns or "no such column".
#include <memory>
#include <string>

#include "persona/io/byte_source.h"

namespace persona::io {

// Throws persona::Error when ICU has no converter by this name.
void check_encoding(const std::string& encoding);

// `raw` as UTF-8: converted from `encoding` when one is named ("" or "utf-8": detected as above).
// Throws persona::Error naming the file for a file that is not UTF-8 and names no encoding.
std::unique_ptr<ByteSource> utf8_source(std::unique_ptr<ByteSource> raw, const std::string& encoding);

}  // namespace persona::io
