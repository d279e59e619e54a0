#include "persona/text/html.h"

#include <gumbo.h>
#include <re2/re2.h>

#include <algorithm>
#include <vector>

namespace persona::text {
namespace {

// Elements whose text is not prose, and inline elements that do not separate words.
bool skipped(GumboTag tag) {
  return tag == GUMBO_TAG_SCRIPT || tag == GUMBO_TAG_STYLE || tag == GUMBO_TAG_TEMPLATE || tag == GUMBO_TAG_NOSCRIPT;
}
bool inline_element(GumboTag tag) {
  switch (tag) {
    case GUMBO_TAG_A: case GUMBO_TAG_B: case GUMBO_TAG_I: case GUMBO_TAG_U: case GUMBO_TAG_EM:
    case GUMBO_TAG_STRONG: case GUMBO_TAG_SPAN: case GUMBO_TAG_SMALL: case GUMBO_TAG_SUB: case GUMBO_TAG_SUP:
    case GUMBO_TAG_FONT: case GUMBO_TAG_CODE: case GUMBO_TAG_MARK: case GUMBO_TAG_S: case GUMBO_TAG_ABBR:
      return true;
    default:
      return false;
  }
}

// Appends the text of one parsed piece. Iterative: a deeply nested tree must not deepen the stack.
void append_text(const GumboNode* root, std::string& out) {
  std::vector<const GumboNode*> stack{root};
  while (!stack.empty()) {
    const GumboNode* node = stack.back();
    stack.pop_back();
    if (!node) {  // the end of a block element
      out += ' ';
      continue;
    }
    switch (node->type) {
      case GUMBO_NODE_TEXT:
      case GUMBO_NODE_CDATA:
      case GUMBO_NODE_WHITESPACE:
        out += node->v.text.text;
        break;
      case GUMBO_NODE_DOCUMENT:
      case GUMBO_NODE_ELEMENT:
      case GUMBO_NODE_TEMPLATE: {
        const GumboVector& children =
            node->type == GUMBO_NODE_DOCUMENT ? node->v.document.children : node->v.element.children;
        if (node->type != GUMBO_NODE_DOCUMENT) {
          if (skipped(node->v.element.tag)) break;
          if (!inline_element(node->v.element.tag)) {
            out += ' ';
            stack.push_back(nullptr);
          }
        }
        for (unsigned i = children.length; i-- > 0;) stack.push_back(static_cast<const GumboNode*>(children.data[i]));
        break;
      }
      default:
        break;  // comments
    }
  }
}

// The end of the next piece: after its kHtmlTagsPerPiece-th '>', or at most 64 KB on (at a
// character boundary) when the text has few '>'.
size_t piece_end(std::string_view html, size_t start) {
  constexpr size_t kMaxPieceBytes = 64 * 1024;
  size_t limit = std::min(html.size(), start + kMaxPieceBytes);
  while (limit < html.size() && (static_cast<unsigned char>(html[limit]) & 0xC0) == 0x80) ++limit;
  size_t end = start;
  for (int tags = 0; tags < kHtmlTagsPerPiece; ++tags) {
    const size_t gt = html.find('>', end);
    if (gt == std::string_view::npos || gt >= limit)
      return tags == 0 || (gt == std::string_view::npos && limit == html.size()) ? limit : end;
    end = gt + 1;
  }
  return end;
}

}  // namespace

bool looks_like_html(std::string_view text) {
  static const RE2 markup(R"(<[A-Za-z!/][^<>]*>|&(#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});)");
  return text.find_first_of("<&") != std::string_view::npos && RE2::PartialMatch(text, markup);
}

std::string html_to_text(std::string_view html) {
  std::string out;
  out.reserve(html.size());
  for (size_t start = 0; start < html.size();) {
    const size_t end = piece_end(html, start);
    GumboOutput* parsed = gumbo_parse_with_options(&kGumboDefaultOptions, html.data() + start, end - start);
    append_text(parsed->document, out);
    gumbo_destroy_output(&kGumboDefaultOptions, parsed);
    out += ' ';
    start = end;
  }
  return out;
}

}  // namespace persona::text
