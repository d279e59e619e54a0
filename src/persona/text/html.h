#pragma once
// Texts that arrive as HTML (reviews scraped from a page, chat messages from a web widget): their
// words, without tags, scripts or styles, with character references decoded ("&amp;" is "&", not
// the word "amp"). Parsing is Google's gumbo (Debian's libgumbo), an HTML5 parser.
#include <string>
#include <string_view>

namespace persona::text {

// Whether the text has an HTML tag (<b>, </p>, <!-- -->) or a character reference (&amp;, &#39;).
bool looks_like_html(std::string_view text);

// The text content of an HTML fragment; block elements and line breaks separate words. Linear in
// the input: gumbo's tree building grows faster than linearly with nesting (4,000 nested <div>s
// take a second), so long inputs are parsed in pieces of at most kHtmlTagsPerPiece tags.
inline constexpr int kHtmlTagsPerPiece = 256;
std::string html_to_text(std::string_view html);

}  // namespace persona::text
