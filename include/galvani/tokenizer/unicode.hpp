// tokenizer/unicode.hpp — the Unicode a tokenizer needs: UTF-8, character classes,
// normalization (all through utf8proc), and GPT-2's byte <-> character table.
//
// Hugging Face `tokenizers` works on Rust `&str` (always valid UTF-8) and its regexes
// come from Oniguruma. We mirror both: input is made valid UTF-8 first (the way Python's
// bytes.decode("utf-8", errors="replace") does it), and the classes below are the ones
// Oniguruma uses for \p{L}, \p{N}, \s and \w.
//
// Note: utf8proc's tables follow its own Unicode version; characters assigned in later
// versions than the one your utf8proc knows may be classified differently from HF.
#pragma once
#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utf8proc.h>

#include <galvani/core/error.hpp>

namespace galvani::unicode {

// ---------------------------------------------------------------- UTF-8

// Length of the UTF-8 sequence a lead byte starts (1 for stray continuation bytes).
inline size_t utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i past it.
inline char32_t next_cp(std::string_view s, size_t& i) {
  unsigned char c = (unsigned char)s[i];
  if (c < 0x80) { ++i; return c; }
  size_t n = utf8_len(c);
  char32_t cp = c & (0xFF >> (n + 1));
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
  i += n;
  return cp;
}

// The code point that ends just before byte i (valid UTF-8), or 0 at the start.
inline char32_t prev_cp(std::string_view s, size_t i) {
  if (i == 0) return 0;
  size_t j = i - 1;
  while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80) --j;
  return next_cp(s, j);
}

inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// Length of the well-formed UTF-8 sequence at s[i], or 0 if the bytes there are not one.
// The ranges are those of Unicode's Table 3-7 (no overlongs, no surrogates, <= U+10FFFF).
// When the result is 0, `valid_prefix` says how many bytes form the longest prefix of a
// well-formed sequence ("maximal subpart"): that many bytes become one U+FFFD.
inline size_t well_formed_len(std::string_view s, size_t i, size_t* valid_prefix = nullptr) {
  auto byte = [&](size_t k) -> int { return i + k < s.size() ? (unsigned char)s[i + k] : -1; };
  int b0 = byte(0);
  size_t n = 0;
  int lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
  else if (b0 >= 0xE0 && b0 <= 0xEF) { n = 3; if (b0 == 0xE0) lo = 0xA0; if (b0 == 0xED) hi = 0x9F; }
  else if (b0 >= 0xF0 && b0 <= 0xF4) { n = 4; if (b0 == 0xF0) lo = 0x90; if (b0 == 0xF4) hi = 0x8F; }
  else { if (valid_prefix) *valid_prefix = 1; return 0; }
  for (size_t k = 1; k < n; ++k) {
    int b = byte(k);
    int l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) { if (valid_prefix) *valid_prefix = k; return 0; }
  }
  return n;
}

inline bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if ((unsigned char)s[i] < 0x80) { ++i; continue; }
    size_t n = well_formed_len(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// Python's bytes.decode("utf-8", errors="replace") (and Rust's String::from_utf8_lossy):
// every maximal ill-formed subpart becomes one U+FFFD.
inline std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (size_t i = 0; i < s.size();) {
    size_t bad = 0, n = well_formed_len(s, i, &bad);
    if (n) { out.append(s.substr(i, n)); i += n; }
    else { out += "\xEF\xBF\xBD"; i += bad; }
  }
  return out;
}

inline size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// ---------------------------------------------------------------- character classes

inline utf8proc_category_t category(char32_t cp) { return utf8proc_category(utf8proc_int32_t(cp)); }

// \p{L}: Lu Ll Lt Lm Lo
inline bool is_letter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}
// \p{N}: Nd Nl No
inline bool is_number(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO;
}
inline bool is_mark(char32_t cp) {
  if (cp < 0x80) return false;
  auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_MN && c <= UTF8PROC_CATEGORY_ME;
}
// Oniguruma's Unicode \s, which is also Rust's char::is_whitespace (the White_Space
// property): U+0009..000D, U+0085 and the separators Zs, Zl, Zp.
inline bool is_whitespace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  if (cp == 0x85) return true;
  auto c = category(cp);
  return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}
// Oniguruma's Unicode \w: Letter, Mark, Number, Connector_Punctuation.
inline bool is_word_char(char32_t cp) {
  if (cp < 0x80) return is_letter(cp) || is_number(cp) || cp == '_';
  return is_letter(cp) || is_mark(cp) || is_number(cp) || category(cp) == UTF8PROC_CATEGORY_PC;
}
// Rust's char::is_alphanumeric is Alphabetic || Numeric; utf8proc has no Alphabetic
// property, so letters, marks and numbers stand in for it (used only by single_word).
inline bool is_alphanumeric(char32_t cp) { return is_letter(cp) || is_number(cp) || is_mark(cp); }

// Punctuation as HF's Punctuation pre-tokenizer sees it: ASCII punctuation or category P*.
inline bool is_punctuation(char32_t cp) {
  if (cp < 0x80) return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
  auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

// ---------------------------------------------------------------- normalization

enum class NormForm { NFC, NFD, NFKC, NFKD };

// Normalizes valid UTF-8 text with utf8proc (stable, composed/decomposed as asked).
inline std::string normalize(std::string_view s, NormForm form) {
  int opts = UTF8PROC_STABLE;
  switch (form) {
    case NormForm::NFC: opts |= UTF8PROC_COMPOSE; break;
    case NormForm::NFD: opts |= UTF8PROC_DECOMPOSE; break;
    case NormForm::NFKC: opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NormForm::NFKD: opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* out = nullptr;
  auto n = utf8proc_map((const utf8proc_uint8_t*)s.data(), utf8proc_ssize_t(s.size()), &out,
                        utf8proc_option_t(opts));
  GALVANI_CHECK(n >= 0, "unicode normalization failed: ", utf8proc_errmsg(n));
  std::string r((const char*)out, size_t(n));
  std::free(out);
  return r;
}

// Canonical combining class (0 for starters).
inline int combining_class(char32_t cp) {
  return cp < 0x300 ? 0 : utf8proc_get_property(utf8proc_int32_t(cp))->combining_class;
}

// Rust's char::to_lowercase: the full mapping. utf8proc gives the simple one; the only
// unconditional multi-character lowercase in SpecialCasing.txt is U+0130 -> "i̇".
inline void append_lowercase(std::string& out, char32_t cp) {
  if (cp < 0x80) { out += char(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp); return; }
  if (cp == 0x130) { out += "i\xCC\x87"; return; }
  append_utf8(out, char32_t(utf8proc_tolower(utf8proc_int32_t(cp))));
}

// ---------------------------------------------------------------- GPT-2 byte <-> char

// GPT-2 gives every byte a printable character so that BPE runs on visible strings:
// bytes '!'..'~', '¡'..'¬', '®'..'ÿ' map to themselves, the other 68 bytes (controls,
// space, ...) to U+0100 + n in byte order. So ' ' -> 'Ġ' (U+0120), '\n' -> 'Ċ' (U+010A).
struct ByteLevelTable {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<std::string, 256> byte_to_utf8;  // the same characters, UTF-8 encoded
  ByteLevelTable() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      byte_to_cp[b] = keep ? char32_t(b) : char32_t(256 + n++);
      append_utf8(byte_to_utf8[b], byte_to_cp[b]);
    }
  }
  // The byte a character stands for, or -1 if it is not one of the 256.
  int cp_to_byte(char32_t cp) const {
    if (cp < 256) {
      bool keep = (cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174);
      if (keep) return int(cp);
      return -1;
    }
    if (cp < 256 + 68) {
      for (int b = 0; b < 256; ++b) if (byte_to_cp[b] == cp) return b;
    }
    return -1;
  }
};

inline const ByteLevelTable& byte_level_table() {
  static const ByteLevelTable t;
  return t;
}

}  // namespace galvani::unicode
