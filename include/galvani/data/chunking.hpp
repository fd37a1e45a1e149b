// data/chunking.hpp — cut a book into training snippets of about N characters,
// always at the end of a sentence (what tools/make_chunks does to the novel).
//
// The steps, each a function below:
//   1. strip_gutenberg_boilerplate: drop the Project Gutenberg licence header
//      ("*** START OF ...") and footer ("*** END OF ..."), when present;
//   2. book_paragraphs: blank lines separate paragraphs; line breaks and runs
//      of spaces inside one become single spaces; heading lines ("CONTENTS",
//      "Letter 1", "Chapter 24", "BOOK IV") and the title page before the
//      first heading are dropped, so that no snippet reads "Chapter 5 Chapter 6";
//   3. split_sentences: a sentence ends at . ! or ? (closing quotes and
//      brackets may follow) when whitespace and then no lowercase letter come
//      next, and the word is not a title such as "Mr." or "M."; the end of a
//      paragraph always ends a sentence;
//   4. chunk_sentences: sentences are joined with single spaces, greedily: the
//      next sentence goes into the current snippet when that brings its length
//      closer to the target than stopping would. A sentence longer than the
//      target is a snippet of its own; sentences are never cut.
// Lengths are in characters (UTF-8 code points), as Python's len() counts them.
// Everything is deterministic: same text and target, same snippets.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <galvani/core/error.hpp>

namespace galvani {

// Where every program reads and writes the course's CSV unless told otherwise
// (make_chunks, step1_eda, step2_dataset, step5_finetune, step6_evaluate, frankenstein).
inline constexpr const char* kDefaultChunksCsv = "runs/frankenstein_chunks.csv";

namespace detail {
inline int64_t chunk_len(std::string_view s) {  // UTF-8 code points
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}
inline bool starts_with_at(std::string_view s, size_t i, std::string_view p) { return s.substr(i, p.size()) == p; }
}  // namespace detail

// 1. The text between Project Gutenberg's "*** START OF ..." and "*** END OF ..."
//    lines (each line itself dropped); the text as it is when there are none.
//    Also drops a UTF-8 byte-order mark and turns CRLF into LF.
inline std::string strip_gutenberg_boilerplate(std::string_view raw) {
  if (raw.substr(0, 3) == "\xEF\xBB\xBF") raw.remove_prefix(3);
  std::string text;
  text.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i)
    if (!(raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n')) text += raw[i];
  auto marker = [&](std::string_view what, size_t from) -> size_t {  // start of a "*** START OF" line
    for (size_t p = text.find(what, from); p != std::string::npos; p = text.find(what, p + 1))
      if (p == 0 || text[p - 1] == '\n') return p;
    return std::string::npos;
  };
  size_t begin = 0, end = text.size();
  if (size_t s = marker("*** START OF", 0); s != std::string::npos) {
    size_t eol = text.find('\n', s);
    begin = eol == std::string::npos ? text.size() : eol + 1;
  }
  if (size_t e = marker("*** END OF", begin); e != std::string::npos) end = e;
  return text.substr(begin, end - begin);
}

// A heading line: "CONTENTS", or Letter/Chapter/Book/Part/Volume and a number
// (digits or Roman numerals), any case, with an optional final period.
inline bool is_heading_line(std::string_view line) {
  line = detail::trim(line);
  if (line == "CONTENTS" || line == "Contents") return true;
  static const char* words[] = {"Letter", "Chapter", "Book", "Part", "Volume",
                                "LETTER", "CHAPTER", "BOOK", "PART", "VOLUME"};
  for (const char* w : words) {
    std::string_view word(w);
    if (line.substr(0, word.size()) != word || line.size() < word.size() + 2 || line[word.size()] != ' ') continue;
    std::string_view num = line.substr(word.size() + 1);
    if (!num.empty() && num.back() == '.') num.remove_suffix(1);
    if (num.empty()) return false;
    bool digits = num.find_first_not_of("0123456789") == std::string_view::npos;
    bool roman = num.find_first_not_of("IVXLCDM") == std::string_view::npos;
    return digits || roman;
  }
  return false;
}

// 2. The paragraphs of a book, each on one line with single spaces; heading
//    lines and everything before the first of them (the title page) dropped.
inline std::vector<std::string> book_paragraphs(std::string_view text) {
  std::vector<std::string> out;
  std::string para;
  bool seen_heading = false, any_heading = false;
  for (size_t pos = 0; pos <= text.size();) {  // first pass: is there any heading at all?
    size_t eol = std::min(text.find('\n', pos), text.size());
    if (is_heading_line(text.substr(pos, eol - pos))) { any_heading = true; break; }
    pos = eol + 1;
  }
  auto flush = [&] {
    if (!para.empty() && (seen_heading || !any_heading)) out.push_back(para);
    para.clear();
  };
  for (size_t pos = 0; pos <= text.size();) {
    size_t eol = std::min(text.find('\n', pos), text.size());
    std::string_view line = detail::trim(text.substr(pos, eol - pos));
    pos = eol + 1;
    if (line.empty()) { flush(); continue; }
    if (is_heading_line(line)) { flush(); seen_heading = true; continue; }
    for (size_t i = 0; i < line.size(); ++i) {  // collapse inner whitespace
      if (detail::is_space(line[i])) {
        if (!para.empty() && para.back() != ' ') para += ' ';
      } else {
        if (i == 0 && !para.empty()) para += ' ';
        para += line[i];
      }
    }
  }
  flush();
  return out;
}

// Titles, initials and month names after which a period does not end a
// sentence ("Mr. Kirwin", "M. Krempe", "Dec. 11th"). "etc." is not among
// them: it ends sentences as often as not.
inline bool is_title_abbreviation(std::string_view word) {
  static const char* titles[] = {"Mr", "Mrs", "Ms", "Dr", "St", "Mme", "Mlle", "Messrs", "Rev", "Capt", "Col", "Gen",
                                 "Prof", "Sr", "Jr", "Esq", "Hon", "No", "Vol", "vs", "viz", "cf", "i.e", "e.g",
                                 "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec"};
  while (!word.empty() && (word.front() == '(' || word.front() == '"' || word.front() == '_')) word.remove_prefix(1);
  if (word.size() == 1 && word[0] >= 'A' && word[0] <= 'Z') return true;  // an initial: "M. Waldman", "J. Smith"
  for (const char* t : titles)
    if (word == t) return true;
  return false;
}

// 3. The sentences of one paragraph (single-spaced, as book_paragraphs makes them).
inline std::vector<std::string> split_sentences(std::string_view para) {
  static const std::string_view closers[] = {"\xE2\x80\x9D", "\xE2\x80\x99", "\"", "'", ")", "]", "_"};  // ” ’ " ' ) ] _
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < para.size(); ++i) {
    char c = para[i];
    if (c != '.' && c != '!' && c != '?') continue;
    size_t end = i + 1;  // past the punctuation and any closers
    for (bool more = true; more;) {
      more = false;
      if (end < para.size() && (para[end] == '.' || para[end] == '!' || para[end] == '?')) { ++end; more = true; continue; }
      for (auto cl : closers)
        if (detail::starts_with_at(para, end, cl)) { end += cl.size(); more = true; break; }
    }
    if (end >= para.size() || para[end] != ' ') continue;  // not followed by a space: "17—.”" mid-line, "e.g."
    size_t next = end + 1;
    if (next < para.size() && para[next] >= 'a' && para[next] <= 'z') continue;  // “Oh! no, …” goes on
    if (c == '.') {
      size_t w = i;  // the word before the period
      while (w > start && para[w - 1] != ' ') --w;
      std::string_view word = para.substr(w, i - w);
      if (is_title_abbreviation(word)) continue;
    }
    out.emplace_back(detail::trim(para.substr(start, end - start)));
    start = next;
    i = end;
  }
  if (std::string_view rest = detail::trim(para.substr(std::min(start, para.size()))); !rest.empty())
    out.emplace_back(rest);
  return out;
}

struct ChunkOptions {
  int64_t target_chars = 900;  // aim for snippets of about this many characters
};

// 4. Sentences joined into snippets of about target_chars characters.
inline std::vector<std::string> chunk_sentences(const std::vector<std::string>& sentences, const ChunkOptions& opt = {}) {
  GALVANI_CHECK(opt.target_chars > 0, "chunk_sentences: target_chars must be positive, got ", opt.target_chars);
  std::vector<std::string> out;
  std::string cur;
  int64_t cur_len = 0;
  for (const std::string& s : sentences) {
    const int64_t s_len = detail::chunk_len(s);
    if (cur_len > 0) {
      const int64_t with = cur_len + 1 + s_len;  // one space between sentences
      if (with > opt.target_chars && std::llabs(with - opt.target_chars) >= std::llabs(cur_len - opt.target_chars)) {
        out.push_back(std::move(cur));  // stopping here is closer to the target
        cur.clear();
        cur_len = 0;
      }
    }
    if (cur_len > 0) cur += ' ', ++cur_len;
    cur += s;
    cur_len += s_len;
  }
  if (cur_len > 0) out.push_back(std::move(cur));
  return out;
}

// 1–4 together: a Project Gutenberg book (or any plain text) into snippets.
inline std::vector<std::string> chunk_book(std::string_view raw_text, const ChunkOptions& opt = {}) {
  std::vector<std::string> sentences;
  for (const std::string& para : book_paragraphs(strip_gutenberg_boilerplate(raw_text)))
    for (std::string& s : split_sentences(para)) sentences.push_back(std::move(s));
  return chunk_sentences(sentences, opt);
}

}  // namespace galvani
