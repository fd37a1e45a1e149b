// io/gguf.hpp — GGUF, llama.cpp's single-file checkpoint format: a validated reader that
// maps the file, and dequantization of ggml's block formats to f32, bit-exact with the
// `gguf` Python package (gguf-py, `gguf.quants.dequantize`).
//
// The file (ggml `docs/gguf.md`; ggml `src/gguf.cpp` is the C reader), little-endian:
//
//   u32 magic "GGUF" | u32 version (2 or 3) | u64 tensor_count | u64 kv_count
//   kv_count     × { string key | u32 value type | value }
//   tensor_count × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset }
//   zero padding up to a multiple of `general.alignment` (a u32 key; 32 when absent)
//   the data section: tensor i at data_start + offset_i, every offset a multiple of the alignment
//
//   string = u64 byte length + UTF-8 bytes (no terminator)
//   value  = u8 i8 u16 i16 u32 i32 f32 bool(1 byte) string u64 i64 f64, or
//   array  = u32 element type + u64 count + count values (an element may itself be an array)
//
// Versions 2 and 3 share this layout (v3 allowed big-endian files, told apart only by the
// byte order of the version field); version 1 (32-bit counts and lengths) is refused.
//
// Shapes. ggml lists dimensions fastest-varying first: ne[0] is the length of a row. The
// reader reports `shape` in PyTorch's order, ne reversed, so a Linear weight stored with
// ne = [in_features, out_features] reads as shape (out_features, in_features), the Hugging
// Face layout; dequantize() writes the elements in that row-major order.
//
// Reading validates everything, because a checkpoint is a download from strangers:
//   - magic, version (2 or 3; a byte-swapped version is named as a big-endian file);
//   - every count against the bytes left before anything is allocated (a key/value takes at
//     least 13 bytes, a tensor info at least 24, an array element at least its type's size);
//   - every string length against the end of the file; keys, names and string values are
//     UTF-8 (gguf-py decodes them as UTF-8 too); bools are 0 or 1; value types are known;
//     arrays nest at most kGgufMaxArrayDepth deep; no key appears twice;
//   - `general.alignment`, when present, is a u32 and a non-zero power of two (as ggml and
//     gguf-py require);
//   - per tensor: a unique name, 0 ≤ n_dims ≤ 4 (GGML_MAX_DIMS), every ne ≥ 1, the element
//     count fits in int64, a known ggml type, ne[0] a multiple of the type's block size, the
//     offset a multiple of the alignment, and the bytes [start, start + size) inside the file;
//   - no two tensors' bytes overlap.
// Each failure is a galvani::Error naming the file and the key, tensor or field at fault,
// and, for a structural fault, the byte offset. Where ggml and gguf-py differ, the reader is
// the stricter on safety (gguf-py accepts overlapping and misaligned tensors) and the more
// lenient on limits that are only llama.cpp's (ggml refuses names of 64 bytes or more and
// nested arrays; ggml also wants tensors stored back to back in info order — here any order
// without overlap is read). It refuses zero-length dimensions, which ggml's checks let through.
//
// Dequantization covers the types published models use: F32, F16, BF16, Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. Each follows ggml's `dequantize_row_*`
// (ggml/src/ggml-quants.c) and gguf-py's `quants.py`; the arithmetic is done in f32 in the
// same order as gguf-py's numpy code, so the result is bit-identical to `gguf.quants.dequantize`
// (tests/test_gguf.cpp checks every type against fixtures written by tools/gen_gguf_fixtures.py).
// Other ggml types (IQ*, Q8_K, TQ*, MXFP4, I8…) are read as tensor infos and raw bytes;
// dequantizing one is an Error that names the type and the tensor.
//
// Usage:
//   auto g = galvani::io::GgufFile::open("model.gguf");
//   std::string arch = g.metadata().get_string("general.architecture");       // "llama"
//   const auto& tokens = g.metadata().get_string_array("tokenizer.ggml.tokens");
//   for (const auto& t : g.tensors()) {                      // file order
//     std::vector<float> w(size_t(t.numel));                 // t.shape: (out, in) for a Linear
//     g.dequantize(t, w);
//   }
#pragma once
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "json.hpp"
#include "mmap_file.hpp"

namespace galvani::io {

static_assert(std::endian::native == std::endian::little,
              "io/gguf.hpp reads GGUF's little-endian blocks in place: a little-endian host is assumed");

// ------------------------------------------------------------------ metadata value types

// The 13 value types of a GGUF key/value (gguf-py `GGUFValueType`, ggml `enum gguf_type`).
enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12
};
inline constexpr uint32_t kGgufTypeCount = 13;

inline const char* gguf_type_name(GgufType t) {
  static constexpr const char* names[kGgufTypeCount] = {"UINT8", "INT8",  "UINT16", "INT16",  "UINT32",
                                                        "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY",
                                                        "UINT64", "INT64", "FLOAT64"};
  return uint32_t(t) < kGgufTypeCount ? names[uint32_t(t)] : "unknown";
}

// Bytes of one scalar of type t in the file; 0 for STRING and ARRAY (variable length).
inline constexpr size_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    case GgufType::STRING: case GgufType::ARRAY: return 0;
  }
  return 0;
}

inline constexpr bool gguf_is_integer(GgufType t) {
  return t == GgufType::UINT8 || t == GgufType::INT8 || t == GgufType::UINT16 || t == GgufType::INT16 ||
         t == GgufType::UINT32 || t == GgufType::INT32 || t == GgufType::UINT64 || t == GgufType::INT64;
}

// Arrays of arrays are legal GGUF (gguf-py writes and reads them; ggml refuses them). No
// published model nests; the limit keeps a hostile file from recursing without end.
inline constexpr int kGgufMaxArrayDepth = 8;

// An array value. Scalars stay packed exactly as in the file (one byte per u8, four per
// f32…), so a 150,000-entry scores or token-type array costs what it costs on disk.
struct GgufArray {
  GgufType type = GgufType::UINT8;   // the element type
  uint64_t count = 0;                // number of elements
  std::vector<uint8_t> raw;          // scalar elements: count × gguf_scalar_size(type) bytes, little-endian
  std::vector<std::string> strings;  // type == STRING: the elements
  std::vector<GgufArray> arrays;     // type == ARRAY: each element, with its own element type

  // The elements as T, which must be the element type's own C++ type (uint8_t for UINT8,
  // float for FLOAT32, bool for BOOL, …). Throws Error otherwise.
  template <class T> std::vector<T> values() const;
  // Integer elements of any width as int64 (an UINT64 above INT64_MAX throws).
  std::vector<int64_t> to_int64() const;
  // FLOAT32 or FLOAT64 elements as double (exact).
  std::vector<double> to_double() const;
};

// A value: the variant's index is the GGUF type id (index 9 is ARRAY).
using GgufValue = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string,
                               GgufArray, uint64_t, int64_t, double>;

inline GgufType gguf_type_of(const GgufValue& v) { return GgufType(v.index()); }

namespace detail::gguf {

template <class T> struct type_of;  // the GgufType of a C++ scalar type
template <> struct type_of<uint8_t> { static constexpr GgufType value = GgufType::UINT8; };
template <> struct type_of<int8_t> { static constexpr GgufType value = GgufType::INT8; };
template <> struct type_of<uint16_t> { static constexpr GgufType value = GgufType::UINT16; };
template <> struct type_of<int16_t> { static constexpr GgufType value = GgufType::INT16; };
template <> struct type_of<uint32_t> { static constexpr GgufType value = GgufType::UINT32; };
template <> struct type_of<int32_t> { static constexpr GgufType value = GgufType::INT32; };
template <> struct type_of<float> { static constexpr GgufType value = GgufType::FLOAT32; };
template <> struct type_of<bool> { static constexpr GgufType value = GgufType::BOOL; };
template <> struct type_of<uint64_t> { static constexpr GgufType value = GgufType::UINT64; };
template <> struct type_of<int64_t> { static constexpr GgufType value = GgufType::INT64; };
template <> struct type_of<double> { static constexpr GgufType value = GgufType::FLOAT64; };

template <class T> T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Element i of a packed integer array, widened; `ok` is false for an UINT64 above INT64_MAX.
inline int64_t int_at(const GgufArray& a, size_t i, bool& ok) {
  const uint8_t* p = a.raw.data() + i * gguf_scalar_size(a.type);
  ok = true;
  switch (a.type) {
    case GgufType::UINT8: return load<uint8_t>(p);
    case GgufType::INT8: return load<int8_t>(p);
    case GgufType::UINT16: return load<uint16_t>(p);
    case GgufType::INT16: return load<int16_t>(p);
    case GgufType::UINT32: return load<uint32_t>(p);
    case GgufType::INT32: return load<int32_t>(p);
    case GgufType::INT64: return load<int64_t>(p);
    case GgufType::UINT64: {
      uint64_t u = load<uint64_t>(p);
      ok = u <= uint64_t(INT64_MAX);
      return int64_t(u);
    }
    default: ok = false; return 0;
  }
}

}  // namespace detail::gguf

template <class T> std::vector<T> GgufArray::values() const {
  constexpr GgufType want = detail::gguf::type_of<T>::value;
  GALVANI_CHECK(type == want, "GGUF array of ", gguf_type_name(type), " read as ", gguf_type_name(want));
  std::vector<T> out(static_cast<size_t>(count));
  if constexpr (std::is_same_v<T, bool>) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = raw[i] != 0;
  } else if (count) {
    std::memcpy(out.data(), raw.data(), raw.size());
  }
  return out;
}

inline std::vector<int64_t> GgufArray::to_int64() const {
  GALVANI_CHECK(gguf_is_integer(type), "GGUF array of ", gguf_type_name(type), " read as integers");
  std::vector<int64_t> out(static_cast<size_t>(count));
  for (size_t i = 0; i < out.size(); ++i) {
    bool ok;
    out[i] = detail::gguf::int_at(*this, i, ok);
    GALVANI_CHECK(ok, "GGUF array of UINT64: element ", i, " (", detail::gguf::load<uint64_t>(raw.data() + 8 * i),
                  ") does not fit in int64");
  }
  return out;
}

inline std::vector<double> GgufArray::to_double() const {
  if (type == GgufType::FLOAT64) return values<double>();
  GALVANI_CHECK(type == GgufType::FLOAT32, "GGUF array of ", gguf_type_name(type), " read as floats");
  std::vector<double> out(static_cast<size_t>(count));
  for (size_t i = 0; i < out.size(); ++i) out[i] = detail::gguf::load<float>(raw.data() + 4 * i);
  return out;
}

// A value as JSON: integers as integers, f32/f64 as numbers (NaN and ±inf become null, as
// nlohmann dumps them), arrays as (nested) JSON arrays. For display and for tools; the
// typed readers of GgufMetadata keep the GGUF type.
inline json gguf_to_json(const GgufArray& a) {
  json out = json::array();
  switch (a.type) {
    case GgufType::STRING:
      for (const auto& s : a.strings) out.push_back(s);
      break;
    case GgufType::ARRAY:
      for (const auto& x : a.arrays) out.push_back(gguf_to_json(x));
      break;
    case GgufType::BOOL:
      for (uint8_t b : a.raw) out.push_back(b != 0);
      break;
    case GgufType::FLOAT32:
    case GgufType::FLOAT64:
      for (double d : a.to_double()) out.push_back(d);
      break;
    case GgufType::UINT64:
      for (size_t i = 0; i < a.count; ++i) out.push_back(detail::gguf::load<uint64_t>(a.raw.data() + 8 * i));
      break;
    default:
      for (int64_t v : a.to_int64()) out.push_back(v);
  }
  return out;
}

inline json gguf_to_json(const GgufValue& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, GgufArray>) return gguf_to_json(x);
        else if constexpr (std::is_same_v<T, float>) return double(x);
        else return json(x);
      },
      v);
}

// The key/value metadata of one file, in file order, with typed readers whose errors name
// the file and the key.
class GgufMetadata {
 public:
  GgufMetadata() = default;
  explicit GgufMetadata(std::string path) : path_(std::move(path)) {}

  using Entry = std::pair<std::string, GgufValue>;
  const std::vector<Entry>& entries() const { return entries_; }  // file order
  size_t size() const { return entries_.size(); }
  bool contains(const std::string& key) const { return index_.count(key) != 0; }
  const GgufValue* find(const std::string& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  const GgufValue& at(const std::string& key) const {
    const GgufValue* v = find(key);
    GALVANI_CHECK(v, path_, ": no metadata key '", key, "'");
    return *v;
  }
  GgufType type(const std::string& key) const { return gguf_type_of(at(key)); }

  // STRING.
  const std::string& get_string(const std::string& key) const { return get<std::string>(key, "a string"); }
  // BOOL.
  bool get_bool(const std::string& key) const { return get<bool>(key, "a bool"); }
  // Any integer type whose value fits in int64 (llama.cpp writes counts as UINT32, token ids
  // as UINT32 or INT32, gguf-py's add_key_value(int) as INT32).
  int64_t get_int(const std::string& key) const {
    const GgufValue& v = at(key);
    GALVANI_CHECK(gguf_is_integer(gguf_type_of(v)), path_, ": metadata '", key, "' is ",
                  gguf_type_name(gguf_type_of(v)), ", not an integer");
    if (const auto* u = std::get_if<uint64_t>(&v)) {
      GALVANI_CHECK(*u <= uint64_t(INT64_MAX), path_, ": metadata '", key, "' = ", *u, " does not fit in int64");
      return int64_t(*u);
    }
    return std::visit([](const auto& x) -> int64_t {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) return int64_t(x);
      else return 0;
    }, v);
  }
  // Any integer type whose value is ≥ 0.
  uint64_t get_uint(const std::string& key) const {
    if (const auto* u = std::get_if<uint64_t>(&at(key))) return *u;
    int64_t i = get_int(key);
    GALVANI_CHECK(i >= 0, path_, ": metadata '", key, "' = ", i, " is negative where a count or size is expected");
    return uint64_t(i);
  }
  // FLOAT32 or FLOAT64, as double (exact). Integers are refused: a float key stored as an
  // integer is a converter bug worth hearing about.
  double get_float(const std::string& key) const {
    const GgufValue& v = at(key);
    if (const auto* f = std::get_if<float>(&v)) return *f;
    if (const auto* d = std::get_if<double>(&v)) return *d;
    throw Error(galvani::detail::cat(path_, ": metadata '", key, "' is ", gguf_type_name(gguf_type_of(v)),
                                     ", not FLOAT32 or FLOAT64"));
  }

  // ARRAY (any element type).
  const GgufArray& get_array(const std::string& key) const { return get<GgufArray>(key, "an array"); }
  // ARRAY of STRING (tokenizer.ggml.tokens, tokenizer.ggml.merges).
  const std::vector<std::string>& get_string_array(const std::string& key) const {
    return typed_array(key, GgufType::STRING).strings;
  }
  // ARRAY of any integer type, widened to int64 (tokenizer.ggml.token_type).
  std::vector<int64_t> get_int_array(const std::string& key) const {
    const GgufArray& a = get_array(key);
    GALVANI_CHECK(gguf_is_integer(a.type), path_, ": metadata '", key, "' is an array of ", gguf_type_name(a.type),
                  ", not of integers");
    try {
      return a.to_int64();
    } catch (const Error& e) {
      throw Error(galvani::detail::cat(path_, ": metadata '", key, "': ", e.what()));
    }
  }
  // ARRAY of FLOAT32, exactly (tokenizer.ggml.scores).
  std::vector<float> get_f32_array(const std::string& key) const {
    return typed_array(key, GgufType::FLOAT32).values<float>();
  }
  // ARRAY of FLOAT32 or FLOAT64, as double.
  std::vector<double> get_float_array(const std::string& key) const {
    const GgufArray& a = get_array(key);
    GALVANI_CHECK(a.type == GgufType::FLOAT32 || a.type == GgufType::FLOAT64, path_, ": metadata '", key,
                  "' is an array of ", gguf_type_name(a.type), ", not of FLOAT32 or FLOAT64");
    return a.to_double();
  }

  // {"key": value, …} (see gguf_to_json for the value mapping).
  json to_json() const {
    json out = json::object();
    for (const auto& [k, v] : entries_) out[k] = gguf_to_json(v);
    return out;
  }

  // Appends a key (the parser; keys are unique, checked by the caller).
  void add(std::string key, GgufValue value) {
    index_.emplace(key, entries_.size());
    entries_.emplace_back(std::move(key), std::move(value));
  }

 private:
  template <class T> const T& get(const std::string& key, const char* what) const {
    const GgufValue& v = at(key);
    const T* p = std::get_if<T>(&v);
    GALVANI_CHECK(p, path_, ": metadata '", key, "' is ", gguf_type_name(gguf_type_of(v)), ", not ", what);
    return *p;
  }
  const GgufArray& typed_array(const std::string& key, GgufType elem) const {
    const GgufArray& a = get_array(key);
    GALVANI_CHECK(a.type == elem, path_, ": metadata '", key, "' is an array of ", gguf_type_name(a.type), ", not of ",
                  gguf_type_name(elem));
    return a;
  }

  std::string path_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// ------------------------------------------------------------------ ggml tensor types

// ggml's tensor types (ggml.h `enum ggml_type`; gguf-py `GGMLQuantizationType`). Ids 4, 5
// (Q4_2, Q4_3), 31–33 and 36–38 (the repacked Q4_0_4_4 … IQ4_NL_8_8) were removed from ggml
// and are unknown here, as they are to llama.cpp today.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41
};

// Elements per block and bytes per block (gguf-py `GGML_QUANT_SIZES`, ggml `type_traits`).
struct GgmlTypeTraits {
  GgmlType type;
  const char* name;
  uint32_t block_size;  // elements per block; a row (ne[0]) holds a whole number of blocks
  uint32_t type_size;   // bytes per block
  bool dequantize;      // dequantize() handles it
};

inline constexpr uint32_t kQK_K = 256;  // super-block size of the K-quants (ggml QK_K)

inline constexpr GgmlTypeTraits kGgmlTypes[] = {
    {GgmlType::F32, "F32", 1, 4, true},
    {GgmlType::F16, "F16", 1, 2, true},
    {GgmlType::Q4_0, "Q4_0", 32, 2 + 16, true},
    {GgmlType::Q4_1, "Q4_1", 32, 2 + 2 + 16, true},
    {GgmlType::Q5_0, "Q5_0", 32, 2 + 4 + 16, true},
    {GgmlType::Q5_1, "Q5_1", 32, 2 + 2 + 4 + 16, true},
    {GgmlType::Q8_0, "Q8_0", 32, 2 + 32, true},
    {GgmlType::Q8_1, "Q8_1", 32, 4 + 4 + 32, false},
    {GgmlType::Q2_K, "Q2_K", 256, 2 + 2 + kQK_K / 16 + kQK_K / 4, true},
    {GgmlType::Q3_K, "Q3_K", 256, 2 + kQK_K / 4 + kQK_K / 8 + 12, true},
    {GgmlType::Q4_K, "Q4_K", 256, 2 + 2 + kQK_K / 2 + 12, true},
    {GgmlType::Q5_K, "Q5_K", 256, 2 + 2 + kQK_K / 2 + kQK_K / 8 + 12, true},
    {GgmlType::Q6_K, "Q6_K", 256, 2 + kQK_K / 2 + kQK_K / 4 + kQK_K / 16, true},
    {GgmlType::Q8_K, "Q8_K", 256, 4 + kQK_K + kQK_K / 8, false},
    {GgmlType::IQ2_XXS, "IQ2_XXS", 256, 2 + kQK_K / 4, false},
    {GgmlType::IQ2_XS, "IQ2_XS", 256, 2 + kQK_K / 4 + kQK_K / 32, false},
    {GgmlType::IQ3_XXS, "IQ3_XXS", 256, 2 + kQK_K / 4 + kQK_K / 8, false},
    {GgmlType::IQ1_S, "IQ1_S", 256, 2 + kQK_K / 8 + kQK_K / 16, false},
    {GgmlType::IQ4_NL, "IQ4_NL", 32, 2 + 16, false},
    {GgmlType::IQ3_S, "IQ3_S", 256, 2 + kQK_K / 4 + kQK_K / 8 + kQK_K / 32 + 4, false},
    {GgmlType::IQ2_S, "IQ2_S", 256, 2 + kQK_K / 4 + kQK_K / 16, false},
    {GgmlType::IQ4_XS, "IQ4_XS", 256, 2 + 2 + kQK_K / 2 + kQK_K / 64, false},
    {GgmlType::I8, "I8", 1, 1, false},
    {GgmlType::I16, "I16", 1, 2, false},
    {GgmlType::I32, "I32", 1, 4, false},
    {GgmlType::I64, "I64", 1, 8, false},
    {GgmlType::F64, "F64", 1, 8, false},
    {GgmlType::IQ1_M, "IQ1_M", 256, kQK_K / 8 + kQK_K / 16 + kQK_K / 32, false},
    {GgmlType::BF16, "BF16", 1, 2, true},
    {GgmlType::TQ1_0, "TQ1_0", 256, 2 + 4 * 13, false},
    {GgmlType::TQ2_0, "TQ2_0", 256, 2 + 64, false},
    {GgmlType::MXFP4, "MXFP4", 32, 1 + 16, false},
    {GgmlType::NVFP4, "NVFP4", 64, 4 + 32, false},
    {GgmlType::Q1_0, "Q1_0", 128, 2 + 16, false},
};

// The traits of type id `id`, or nullptr when ggml has no such type.
inline const GgmlTypeTraits* ggml_type_traits(uint32_t id) {
  for (const auto& t : kGgmlTypes)
    if (uint32_t(t.type) == id) return &t;
  return nullptr;
}
inline const GgmlTypeTraits& ggml_type_traits(GgmlType t) {
  const GgmlTypeTraits* p = ggml_type_traits(uint32_t(t));
  GALVANI_CHECK(p, "unknown ggml type id ", uint32_t(t));
  return *p;
}
inline const char* ggml_type_name(GgmlType t) {
  const GgmlTypeTraits* p = ggml_type_traits(uint32_t(t));
  return p ? p->name : "unknown";
}
inline bool ggml_can_dequantize(GgmlType t) {
  const GgmlTypeTraits* p = ggml_type_traits(uint32_t(t));
  return p && p->dequantize;
}

// ------------------------------------------------------------------ the header

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> ne;  // ggml order: ne[0] = elements per row (fastest varying)
  Shape shape;              // PyTorch order: ne reversed
  uint64_t offset = 0;      // from the start of the data section, as stored (a multiple of the alignment)
  uint64_t nbytes = 0;      // numel / block_size × type_size
  int64_t numel = 0;
  const char* type_name() const { return ggml_type_name(type); }
};

struct GgufHeader {
  uint32_t version = 0;           // 2 or 3
  uint64_t alignment = 32;        // general.alignment, or ggml's default 32
  uint64_t data_start = 0;        // file offset of the data section: the end of the tensor infos, aligned up
  GgufMetadata metadata;
  std::vector<GgufTensorInfo> tensors;  // in tensor-info order
};

inline constexpr uint32_t kGgmlMaxDims = 4;            // GGML_MAX_DIMS
inline constexpr uint64_t kGgufDefaultAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT

namespace detail::gguf {

using galvani::detail::cat;

inline std::string hex_bytes(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

// A bounds-checked little-endian reader over file[0, size). Every read names what it reads
// (`what` is built by the caller only when a read fails) and the byte offset.
struct Cursor {
  const uint8_t* file;
  size_t size;
  size_t pos;
  const std::string& path;

  size_t left() const { return size - pos; }

  template <class What> void need(uint64_t n, const What& what) const {
    GALVANI_CHECK(n <= left(), path, ": ", what(), " at byte offset ", pos, " needs ", n,
                  " bytes, but the file ends ", left(), " bytes later (truncated or corrupt file)");
  }
  template <class T, class What> T read(const What& what) {
    need(sizeof(T), what);
    T v = load<T>(file + pos);
    pos += sizeof(T);
    return v;
  }
  // u64 length + UTF-8 bytes.
  template <class What> std::string read_string(const What& what) {
    const size_t at = pos;
    uint64_t n = read<uint64_t>([&] { return cat(what(), ": string length"); });
    GALVANI_CHECK(n <= left(), path, ": ", what(), ": string length ", n, " at byte offset ", at,
                  " runs past the end of the file (", left(), " bytes left)");
    std::string s(reinterpret_cast<const char*>(file + pos), size_t(n));
    size_t bad = utf8_error_offset(s);
    GALVANI_CHECK(bad == std::string_view::npos, path, ": ", what(), ": string at byte offset ", at,
                  " is not valid UTF-8 (bad byte at offset ", pos + bad, ")");
    pos += size_t(n);
    return s;
  }
};

inline bool known_value_type(uint32_t t) { return t < kGgufTypeCount; }

// The least number of bytes one element of type t takes: the bound on a hostile count.
inline uint64_t min_size(GgufType t) {
  if (t == GgufType::STRING) return 8;       // u64 length, empty string
  if (t == GgufType::ARRAY) return 4 + 8;    // element type + count, empty array
  return gguf_scalar_size(t);
}

template <class T, class What> GgufValue scalar(Cursor& c, const What& what) {
  return GgufValue(std::in_place_type<T>, c.template read<T>(what));
}

inline GgufArray read_array(Cursor& c, const std::string& where, int depth);

inline GgufValue read_value(Cursor& c, uint32_t type, const std::string& where, int depth) {
  auto what = [&] { return where; };
  switch (GgufType(type)) {
    case GgufType::UINT8: return scalar<uint8_t>(c, what);
    case GgufType::INT8: return scalar<int8_t>(c, what);
    case GgufType::UINT16: return scalar<uint16_t>(c, what);
    case GgufType::INT16: return scalar<int16_t>(c, what);
    case GgufType::UINT32: return scalar<uint32_t>(c, what);
    case GgufType::INT32: return scalar<int32_t>(c, what);
    case GgufType::FLOAT32: return scalar<float>(c, what);
    case GgufType::UINT64: return scalar<uint64_t>(c, what);
    case GgufType::INT64: return scalar<int64_t>(c, what);
    case GgufType::FLOAT64: return scalar<double>(c, what);
    case GgufType::BOOL: {
      const size_t at = c.pos;
      uint8_t b = c.read<uint8_t>(what);
      GALVANI_CHECK(b <= 1, c.path, ": ", where, ": bool at byte offset ", at, " is ", int(b), ", not 0 or 1");
      return GgufValue(std::in_place_type<bool>, b == 1);
    }
    case GgufType::STRING: return GgufValue(std::in_place_type<std::string>, c.read_string(what));
    case GgufType::ARRAY: return GgufValue(std::in_place_type<GgufArray>, read_array(c, where, depth + 1));
  }
  throw Error(cat(c.path, ": ", where, ": unknown value type ", type,
                  " (GGUF knows 0..12: UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, "
                  "UINT64, INT64, FLOAT64)"));
}

inline GgufArray read_array(Cursor& c, const std::string& where, int depth) {
  GALVANI_CHECK(depth <= kGgufMaxArrayDepth, c.path, ": ", where, ": arrays nested deeper than ", kGgufMaxArrayDepth,
                " levels (at byte offset ", c.pos, ")");
  GgufArray a;
  const size_t type_at = c.pos;
  uint32_t type = c.read<uint32_t>([&] { return cat(where, ": array element type"); });
  GALVANI_CHECK(known_value_type(type), c.path, ": ", where, ": unknown array element type ", type,
                " at byte offset ", type_at, " (GGUF knows 0..12)");
  a.type = GgufType(type);
  const size_t count_at = c.pos;
  a.count = c.read<uint64_t>([&] { return cat(where, ": array length"); });
  const uint64_t each = min_size(a.type);
  GALVANI_CHECK(a.count <= c.left() / each, c.path, ": ", where, ": array length ", a.count, " at byte offset ",
                count_at, " cannot fit in the ", c.left(), " bytes left in the file (each ", gguf_type_name(a.type),
                " element takes at least ", each, " bytes)");
  switch (a.type) {
    case GgufType::STRING: {
      a.strings.reserve(size_t(a.count));  // bounded above: at most left / 8 elements
      for (uint64_t i = 0; i < a.count; ++i)
        a.strings.push_back(c.read_string([&] { return cat(where, ": element ", i, " of ", a.count); }));
      break;
    }
    case GgufType::ARRAY: {
      for (uint64_t i = 0; i < a.count; ++i) a.arrays.push_back(read_array(c, cat(where, "[", i, "]"), depth + 1));
      break;
    }
    default: {
      const size_t n = size_t(a.count) * gguf_scalar_size(a.type);  // ≤ left: checked above
      a.raw.assign(c.file + c.pos, c.file + c.pos + n);
      if (a.type == GgufType::BOOL)
        for (size_t i = 0; i < n; ++i)
          GALVANI_CHECK(a.raw[i] <= 1, c.path, ": ", where, ": bool element ", i, " at byte offset ", c.pos + i,
                        " is ", int(a.raw[i]), ", not 0 or 1");
      c.pos += n;
    }
  }
  return a;
}

inline bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
inline bool checked_add(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_add_overflow(a, b, &out); }

}  // namespace detail::gguf

// Parses and validates the header of a whole GGUF file held in `file[0, file_size)`:
// metadata, tensor infos, alignment, and every tensor's byte range. `path` only names the
// file in errors. Reads no byte outside that range and allocates nothing a count in the
// file could inflate beyond a small multiple of the file's size. Throws galvani::Error.
inline GgufHeader parse_gguf(const uint8_t* file, size_t file_size, const std::string& path) {
  using galvani::detail::cat;
  using namespace detail::gguf;
  Cursor c{file, file_size, 0, path};
  GgufHeader h;
  h.metadata = GgufMetadata(path);

  GALVANI_CHECK(file_size >= 4, path, ": not a GGUF file: ", file_size, " bytes is too short for the magic \"GGUF\"");
  GALVANI_CHECK(std::memcmp(file, "GGUF", 4) == 0, path, ": not a GGUF file: bad magic (the file starts with bytes ",
                hex_bytes(file, 4), ", not 47 47 55 46 = \"GGUF\")");
  c.pos = 4;
  h.version = c.read<uint32_t>([] { return std::string("the version"); });
  GALVANI_CHECK(!(h.version != 0 && (h.version & 0xFFFF) == 0), path, ": version field reads 0x", std::hex, h.version,
                std::dec, ": a big-endian GGUF file (galvani reads little-endian GGUF only)");
  GALVANI_CHECK(h.version != 1, path,
                ": GGUF version 1 is not supported (the pre-release format of August 2023, with 32-bit counts; "
                "convert the model again with a current llama.cpp)");
  GALVANI_CHECK(h.version == 2 || h.version == 3, path, ": unsupported GGUF version ", h.version,
                " (galvani reads versions 2 and 3)");
  const uint64_t tensor_count = c.read<uint64_t>([] { return std::string("the tensor count"); });
  const uint64_t kv_count = c.read<uint64_t>([] { return std::string("the metadata key/value count"); });

  // Counts are checked against the bytes left before anything is reserved: a key/value takes
  // at least 13 bytes (u64 key length, u32 type, a 1-byte value), a tensor info at least 24
  // (u64 name length, u32 n_dims, u32 type, u64 offset).
  GALVANI_CHECK(kv_count <= c.left() / 13, path, ": metadata key/value count ", kv_count,
                " (byte offset 16) cannot fit in the ", c.left(), " bytes after the header (each takes at least 13 bytes)");
  GALVANI_CHECK(tensor_count <= (c.left() - 13 * kv_count) / 24, path, ": tensor count ", tensor_count,
                " (byte offset 8) cannot fit in the ", c.left(), " bytes after the header (each tensor info takes at "
                "least 24 bytes, after ", kv_count, " key/values of at least 13)");

  // ---- key/value metadata
  std::unordered_map<std::string, size_t> key_offset;
  for (uint64_t i = 0; i < kv_count; ++i) {
    const size_t at = c.pos;
    std::string key = c.read_string([&] { return cat("metadata key #", i); });
    const std::string where = cat("metadata '", key, "'");
    auto [it, fresh] = key_offset.emplace(key, at);
    GALVANI_CHECK(fresh, path, ": duplicate metadata key '", key, "' (at byte offsets ", it->second, " and ", at, ")");
    const size_t type_at = c.pos;
    uint32_t type = c.read<uint32_t>([&] { return cat(where, ": value type"); });
    GALVANI_CHECK(known_value_type(type), path, ": ", where, ": unknown value type ", type, " at byte offset ", type_at,
                  " (GGUF knows 0..12: UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, "
                  "UINT64, INT64, FLOAT64)");
    h.metadata.add(std::move(key), read_value(c, type, where, 0));
  }

  if (const GgufValue* a = h.metadata.find("general.alignment")) {
    const uint32_t* u = std::get_if<uint32_t>(a);
    GALVANI_CHECK(u, path, ": metadata 'general.alignment' is ", gguf_type_name(gguf_type_of(*a)),
                  ", but GGUF requires UINT32");
    GALVANI_CHECK(*u != 0 && (*u & (*u - 1)) == 0, path, ": metadata 'general.alignment' = ", *u,
                  " is not a non-zero power of two");
    h.alignment = *u;
  }

  // ---- tensor infos
  GALVANI_CHECK(tensor_count <= c.left() / 24, path, ": tensor count ", tensor_count, " cannot fit in the ", c.left(),
                " bytes left after the metadata (each tensor info takes at least 24 bytes)");
  h.tensors.reserve(size_t(tensor_count));
  std::unordered_map<std::string, size_t> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo t;
    t.name = c.read_string([&] { return cat("tensor info #", i, ": name"); });
    const std::string where = cat("tensor '", t.name, "'");
    auto [it, fresh] = names.emplace(t.name, size_t(i));
    GALVANI_CHECK(fresh, path, ": duplicate tensor name '", t.name, "' (tensor infos #", it->second, " and #", i, ")");
    const size_t dims_at = c.pos;
    const uint32_t n_dims = c.read<uint32_t>([&] { return cat(where, ": n_dims"); });
    GALVANI_CHECK(n_dims <= kGgmlMaxDims, path, ": ", where, ": n_dims ", n_dims, " exceeds ggml's limit of ",
                  kGgmlMaxDims, " dimensions (GGML_MAX_DIMS; at byte offset ", dims_at, ")");
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const size_t ne_at = c.pos;
      const uint64_t ne = c.read<uint64_t>([&] { return cat(where, ": ne[", d, "]"); });
      GALVANI_CHECK(ne >= 1 && ne <= uint64_t(INT64_MAX), path, ": ", where, ": ne[", d, "] = ", ne, " at byte offset ",
                    ne_at, " is not a dimension (must be between 1 and 2^63 - 1)");
      GALVANI_CHECK(checked_mul(numel, ne, numel) && numel <= uint64_t(INT64_MAX), path, ": ", where,
                    ": the element count overflows int64 at ne[", d, "] = ", ne);
      t.ne.push_back(int64_t(ne));
    }
    t.numel = int64_t(numel);
    t.shape.assign(t.ne.rbegin(), t.ne.rend());
    const size_t type_at = c.pos;
    const uint32_t type = c.read<uint32_t>([&] { return cat(where, ": ggml type"); });
    const GgmlTypeTraits* traits = ggml_type_traits(type);
    GALVANI_CHECK(traits, path, ": ", where, ": unknown ggml type id ", type, " at byte offset ", type_at,
                  " (not a type of ggml.h's enum ggml_type)");
    t.type = traits->type;
    const uint64_t row = t.ne.empty() ? 1 : uint64_t(t.ne[0]);
    GALVANI_CHECK(row % traits->block_size == 0, path, ": ", where, ": row length ne[0] = ", row,
                  " is not a multiple of ", traits->name, "'s block size ", traits->block_size);
    GALVANI_CHECK(checked_mul(numel / traits->block_size, traits->type_size, t.nbytes), path, ": ", where,
                  ": the byte size of ", numel, " elements of ", traits->name, " overflows 64 bits");
    const size_t off_at = c.pos;
    t.offset = c.read<uint64_t>([&] { return cat(where, ": data offset"); });
    GALVANI_CHECK(t.offset % h.alignment == 0, path, ": ", where, ": data offset ", t.offset, " (at byte offset ", off_at,
                  ") is not a multiple of the alignment ", h.alignment);
    h.tensors.push_back(std::move(t));
  }

  // ---- the data section and each tensor's bytes in it
  uint64_t start = c.pos + (h.alignment - c.pos % h.alignment) % h.alignment;
  h.data_start = start;
  for (const auto& t : h.tensors) {
    uint64_t begin = 0, end = 0;
    GALVANI_CHECK(checked_add(start, t.offset, begin) && checked_add(begin, t.nbytes, end) && end <= file_size, path,
                  ": tensor '", t.name, "': its ", t.nbytes, " bytes of ", t.type_name(), " ", shape_str(t.shape),
                  " at data offset ", t.offset, " (file offset ", begin, ") run past the end of the file (", file_size,
                  " bytes; truncated download?)");
  }
  std::vector<const GgufTensorInfo*> order;
  order.reserve(h.tensors.size());
  for (const auto& t : h.tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const GgufTensorInfo* a, const GgufTensorInfo* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->nbytes < b->nbytes;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    const GgufTensorInfo& a = *order[i - 1];
    const GgufTensorInfo& b = *order[i];
    GALVANI_CHECK(b.offset >= a.offset + a.nbytes, path, ": tensor '", b.name, "': data [", b.offset, ", ",
                  b.offset + b.nbytes, ") overlaps tensor '", a.name, "' at [", a.offset, ", ", a.offset + a.nbytes,
                  ") (offsets from the data section)");
  }
  return h;
}

// ------------------------------------------------------------------ dequantization
//
// Each ggml block format as a struct, field for field as ggml-common.h declares it (f16
// values held as their bits). A tensor row is a whole number of blocks; element e of a
// block is element (block index × block size + e) of the row. Blocks are copied out of
// the file with memcpy, so a file whose alignment leaves them unaligned is read safely.
//
// Formula notation: d, m, dmin are f16 scales/mins widened to f32, and the products are
// taken in the order gguf-py's numpy code takes them. Every product of a scale and a code
// except Q6_K's last is exact in f32 (an f16 scale has an 11-bit significand, a code at
// most 6 bits, and sub-block scale × code stays within 24 bits), so a compiler that fuses
// `dl * q - ml` into an FMA (-ffp-contract=fast with -mfma) still gives gguf-py's bits.

namespace detail::gguf {

inline float h2f(uint16_t bits) { return f16::to_float(bits); }

// Q4_0: 32 weights in 18 bytes. w = d * (q - 8), q in 0..15.
struct BlockQ4_0 {
  uint16_t d;       // scale (f16)
  uint8_t qs[16];   // weight j < 16: low nibble of qs[j]; weight j + 16: high nibble of qs[j]
};
// Q4_1: 32 weights in 20 bytes. w = d * q + m, q in 0..15.
struct BlockQ4_1 {
  uint16_t d, m;    // scale and min (f16)
  uint8_t qs[16];   // as Q4_0
};
// Q5_0: 32 weights in 22 bytes. w = d * (q - 16), q in 0..31: the low 4 bits as Q4_0,
// bit 4 of weight j is bit j of qh read as a little-endian u32.
struct BlockQ5_0 {
  uint16_t d;       // scale (f16)
  uint8_t qh[4];    // fifth bits, u32 little-endian
  uint8_t qs[16];   // low nibbles, as Q4_0
};
// Q5_1: 32 weights in 24 bytes. w = d * q + m, q in 0..31 as Q5_0.
struct BlockQ5_1 {
  uint16_t d, m;    // scale and min (f16)
  uint8_t qh[4];
  uint8_t qs[16];
};
// Q8_0: 32 weights in 34 bytes. w = q * d, q an int8.
struct BlockQ8_0 {
  uint16_t d;       // scale (f16)
  int8_t qs[32];    // weight j: qs[j]
};

// The K-quants: super-blocks of 256 weights (QK_K) in sub-blocks of 16 or 32.

// Q2_K: 256 weights in 84 bytes, 16 sub-blocks of 16.
// Weight e, sub-block g = e / 16: w = (d * (scales[g] & 15)) * q - dmin * (scales[g] >> 4),
// q = (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3.
struct BlockQ2_K {
  uint8_t scales[16];  // sub-block g: scale in the low nibble, min in the high nibble
  uint8_t qs[64];      // 2-bit codes, four per byte (see above)
  uint16_t d, dmin;    // super-block scale for the scales and for the mins (f16)
};
// Q3_K: 256 weights in 110 bytes, 16 sub-blocks of 16, 6-bit signed scales.
// Weight e, sub-block g = e / 16: w = (d * (scale_g - 32)) * (lo - (hi ? 0 : 4)) with
// lo = (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3 and
// hi = (hmask[e % 32] >> (e / 32)) & 1.
// scale_g (6 bits): low 4 bits from scales[g % 8] (low nibble for g < 8, high for g ≥ 8),
// high 2 bits from scales[8 + g % 4] >> (2 * (g / 4)).
struct BlockQ3_K {
  uint8_t hmask[32];   // the third bit of each code, one bit per weight (see above)
  uint8_t qs[64];      // low 2 bits of each code, as Q2_K
  uint8_t scales[12];  // 16 six-bit scales, packed
  uint16_t d;          // super-block scale (f16)
};
// Q4_K: 256 weights in 144 bytes, 8 sub-blocks of 32, 6-bit scales and mins.
// Weight e, sub-block g = e / 32: w = (d * sc_g) * q - (dmin * m_g),
// q = (qs[32 * (g / 2) + e % 32] >> (4 * (g % 2))) & 15.
// sc_g, m_g (ggml get_scale_min_k4): g < 4: scales[g] & 63, scales[g + 4] & 63;
// g ≥ 4: (scales[g + 4] & 15) | (scales[g - 4] >> 6) << 4, (scales[g + 4] >> 4) | (scales[g] >> 6) << 4.
struct BlockQ4_K {
  uint16_t d, dmin;    // super-block scale for the scales and for the mins (f16)
  uint8_t scales[12];  // 8 six-bit scales and 8 six-bit mins, packed (see above)
  uint8_t qs[128];     // 4-bit codes
};
// Q5_K: 256 weights in 176 bytes, as Q4_K with a fifth bit:
// q = low nibble as Q4_K | ((qh[e % 32] >> g) & 1) << 4.
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];      // fifth bits: bit g of qh[e % 32] for weight e in sub-block g
  uint8_t qs[128];
};
// Q6_K: 256 weights in 210 bytes, 16 sub-blocks of 16, int8 scales.
// Weight e, sub-block g = e / 16, half h = e / 128, r = e % 128:
// w = (d * scales[g]) * (q - 32), q = lo | hi << 4 with
// lo = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 15 and
// hi = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 3.
struct BlockQ6_K {
  uint8_t ql[128];     // low 4 bits
  uint8_t qh[64];      // high 2 bits
  int8_t scales[16];   // sub-block scales
  uint16_t d;          // super-block scale (f16)
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);

inline void dequantize_block(const BlockQ4_0& b, float* y) {
  const float d = h2f(b.d);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(int(b.qs[j] & 15) - 8);
    y[j + 16] = d * float(int(b.qs[j] >> 4) - 8);
  }
}

inline void dequantize_block(const BlockQ4_1& b, float* y) {
  const float d = h2f(b.d), m = h2f(b.m);
  for (int j = 0; j < 16; ++j) {
    y[j] = (d * float(b.qs[j] & 15)) + m;
    y[j + 16] = (d * float(b.qs[j] >> 4)) + m;
  }
}

inline void dequantize_block(const BlockQ5_0& b, float* y) {
  const float d = h2f(b.d);
  const uint32_t qh = load<uint32_t>(b.qh);
  for (int j = 0; j < 16; ++j) {
    const int lo = (b.qs[j] & 15) | int((qh >> j) & 1) << 4;
    const int hi = (b.qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
    y[j] = d * float(lo - 16);
    y[j + 16] = d * float(hi - 16);
  }
}

inline void dequantize_block(const BlockQ5_1& b, float* y) {
  const float d = h2f(b.d), m = h2f(b.m);
  const uint32_t qh = load<uint32_t>(b.qh);
  for (int j = 0; j < 16; ++j) {
    const int lo = (b.qs[j] & 15) | int((qh >> j) & 1) << 4;
    const int hi = (b.qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
    y[j] = (d * float(lo)) + m;
    y[j + 16] = (d * float(hi)) + m;
  }
}

inline void dequantize_block(const BlockQ8_0& b, float* y) {
  const float d = h2f(b.d);
  for (int j = 0; j < 32; ++j) y[j] = float(b.qs[j]) * d;
}

inline void dequantize_block(const BlockQ2_K& b, float* y) {
  const float d = h2f(b.d), dmin = h2f(b.dmin);
  for (int e = 0; e < 256; ++e) {
    const int g = e / 16;
    const float dl = d * float(b.scales[g] & 15);
    const float ml = dmin * float(b.scales[g] >> 4);
    const int q = (b.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    y[e] = (dl * float(q)) - ml;
  }
}

inline void dequantize_block(const BlockQ3_K& b, float* y) {
  const float d = h2f(b.d);
  float dl[16];
  for (int g = 0; g < 16; ++g) {
    const int lo = (b.scales[g % 8] >> (4 * (g / 8))) & 15;
    const int hi = (b.scales[8 + g % 4] >> (2 * (g / 4))) & 3;
    dl[g] = d * float((lo | hi << 4) - 32);
  }
  for (int e = 0; e < 256; ++e) {
    const int lo = (b.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    const int hi = (b.hmask[e % 32] >> (e / 32)) & 1;
    y[e] = dl[e / 16] * float(lo - (hi ? 0 : 4));
  }
}

// ggml get_scale_min_k4: the 6-bit scale and min of sub-block g of a Q4_K/Q5_K block.
inline void scale_min_k4(int g, const uint8_t* q, int& sc, int& m) {
  if (g < 4) {
    sc = q[g] & 63;
    m = q[g + 4] & 63;
  } else {
    sc = (q[g + 4] & 15) | ((q[g - 4] >> 6) << 4);
    m = (q[g + 4] >> 4) | ((q[g] >> 6) << 4);
  }
}

inline void dequantize_block(const BlockQ4_K& b, float* y) {
  const float d = h2f(b.d), dmin = h2f(b.dmin);
  for (int g = 0; g < 8; ++g) {
    int sc, m;
    scale_min_k4(g, b.scales, sc, m);
    const float dl = d * float(sc), ml = dmin * float(m);
    const uint8_t* qs = b.qs + 32 * (g / 2);
    const int shift = 4 * (g % 2);
    for (int l = 0; l < 32; ++l) y[32 * g + l] = (dl * float((qs[l] >> shift) & 15)) - ml;
  }
}

inline void dequantize_block(const BlockQ5_K& b, float* y) {
  const float d = h2f(b.d), dmin = h2f(b.dmin);
  for (int g = 0; g < 8; ++g) {
    int sc, m;
    scale_min_k4(g, b.scales, sc, m);
    const float dl = d * float(sc), ml = dmin * float(m);
    const uint8_t* qs = b.qs + 32 * (g / 2);
    const int shift = 4 * (g % 2);
    for (int l = 0; l < 32; ++l) {
      const int q = ((qs[l] >> shift) & 15) | ((b.qh[l] >> g) & 1) << 4;
      y[32 * g + l] = (dl * float(q)) - ml;
    }
  }
}

inline void dequantize_block(const BlockQ6_K& b, float* y) {
  const float d = h2f(b.d);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, r = e % 128;
    const int lo = (b.ql[64 * h + r % 64] >> (4 * (r / 64))) & 15;
    const int hi = (b.qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
    const float dl = d * float(b.scales[e / 16]);
    y[e] = dl * float((lo | hi << 4) - 32);
  }
}

// All blocks of a tensor: n_blocks × sizeof(Block) bytes at src -> n_blocks × block_size floats.
template <class Block, int kBlockSize>
void dequantize_blocks(const uint8_t* src, float* dst, int64_t n_blocks) {
#pragma omp parallel for schedule(static) if (n_blocks > 4096)
  for (int64_t i = 0; i < n_blocks; ++i) {
    Block b;
    std::memcpy(&b, src + size_t(i) * sizeof(Block), sizeof(Block));
    dequantize_block(b, dst + i * kBlockSize);
  }
}

}  // namespace detail::gguf

// Dequantizes `dst.size()` elements of ggml type `type` from `src` to f32, in storage order
// (which is the PyTorch row-major order of the reversed shape). `dst.size()` must be a whole
// number of blocks and `src.size()` exactly the bytes they take. Bit-identical to gguf-py's
// `gguf.quants.dequantize` (and ggml's dequantize_row_* / ggml_fp16_to_fp32 /
// ggml_bf16_to_fp32). Throws galvani::Error for a type it does not handle or for sizes that
// do not match.
inline void dequantize_ggml(GgmlType type, std::span<const uint8_t> src, std::span<float> dst) {
  using namespace detail::gguf;
  const GgmlTypeTraits* tr = ggml_type_traits(uint32_t(type));
  GALVANI_CHECK(tr, "dequantize_ggml: unknown ggml type id ", uint32_t(type));
  GALVANI_CHECK(tr->dequantize, "dequantize_ggml: ggml type ", tr->name, " (id ", uint32_t(type),
                ") cannot be dequantized (galvani handles F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, "
                "Q4_K, Q5_K, Q6_K)");
  const size_t n = dst.size();
  GALVANI_CHECK(n % tr->block_size == 0, "dequantize_ggml: ", n, " elements are not a whole number of ", tr->name,
                " blocks of ", tr->block_size);
  const int64_t n_blocks = int64_t(n / tr->block_size);
  GALVANI_CHECK(src.size() == size_t(n_blocks) * tr->type_size, "dequantize_ggml: ", n, " elements of ", tr->name,
                " take ", size_t(n_blocks) * tr->type_size, " bytes, got ", src.size());
  const uint8_t* s = src.data();
  float* y = dst.data();
  switch (type) {
    case GgmlType::F32:
      if (n) std::memcpy(y, s, n * 4);
      return;
    case GgmlType::F16:
#pragma omp parallel for schedule(static) if (n > 65536)
      for (size_t i = 0; i < n; ++i) y[i] = h2f(load<uint16_t>(s + 2 * i));
      return;
    case GgmlType::BF16:  // the top half of an f32: gguf-py shifts the bits, NaN payloads included
#pragma omp parallel for schedule(static) if (n > 65536)
      for (size_t i = 0; i < n; ++i) y[i] = std::bit_cast<float>(uint32_t(load<uint16_t>(s + 2 * i)) << 16);
      return;
    case GgmlType::Q4_0: return dequantize_blocks<BlockQ4_0, 32>(s, y, n_blocks);
    case GgmlType::Q4_1: return dequantize_blocks<BlockQ4_1, 32>(s, y, n_blocks);
    case GgmlType::Q5_0: return dequantize_blocks<BlockQ5_0, 32>(s, y, n_blocks);
    case GgmlType::Q5_1: return dequantize_blocks<BlockQ5_1, 32>(s, y, n_blocks);
    case GgmlType::Q8_0: return dequantize_blocks<BlockQ8_0, 32>(s, y, n_blocks);
    case GgmlType::Q2_K: return dequantize_blocks<BlockQ2_K, 256>(s, y, n_blocks);
    case GgmlType::Q3_K: return dequantize_blocks<BlockQ3_K, 256>(s, y, n_blocks);
    case GgmlType::Q4_K: return dequantize_blocks<BlockQ4_K, 256>(s, y, n_blocks);
    case GgmlType::Q5_K: return dequantize_blocks<BlockQ5_K, 256>(s, y, n_blocks);
    case GgmlType::Q6_K: return dequantize_blocks<BlockQ6_K, 256>(s, y, n_blocks);
    default: break;
  }
  throw Error(galvani::detail::cat("dequantize_ggml: no kernel for ", tr->name));  // the table and switch disagree
}

// ------------------------------------------------------------------ the file

// An opened GGUF file: its validated header, and its bytes mapped (io/mmap_file.hpp).
class GgufFile {
 public:
  static GgufFile open(const std::filesystem::path& path, MappedFile::Mode mode = MappedFile::Mode::copy_on_write) {
    return GgufFile(MappedFile::open(path, mode));
  }
  // Bytes already in memory (tests, the fuzz target), named `name` in errors.
  static GgufFile from_bytes(std::vector<uint8_t> bytes, std::string name) {
    return GgufFile(MappedFile::from_bytes(std::move(bytes), std::move(name)));
  }
  explicit GgufFile(std::shared_ptr<MappedFile> file) : file_(std::move(file)) {
    header_ = std::make_shared<GgufHeader>(parse_gguf(file_->data(), file_->size(), file_->path()));
    for (size_t i = 0; i < header_->tensors.size(); ++i) index_[header_->tensors[i].name] = i;
  }

  const std::string& path() const { return file_->path(); }
  size_t file_size() const { return file_->size(); }
  uint32_t version() const { return header_->version; }
  uint64_t alignment() const { return header_->alignment; }
  uint64_t data_start() const { return header_->data_start; }  // file offset of the data section
  const GgufHeader& header() const { return *header_; }
  const GgufMetadata& metadata() const { return header_->metadata; }
  const std::vector<GgufTensorInfo>& tensors() const { return header_->tensors; }  // tensor-info order
  size_t size() const { return header_->tensors.size(); }
  const std::shared_ptr<MappedFile>& mapped_file() const { return file_; }

  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const GgufTensorInfo* find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &header_->tensors[it->second];
  }
  const GgufTensorInfo& tensor(const std::string& name) const {
    const GgufTensorInfo* t = find(name);
    GALVANI_CHECK(t, path(), ": no tensor named '", name, "'");
    return *t;
  }

  // The tensor's stored bytes (nbytes of them), inside the mapping.
  std::span<const uint8_t> bytes(const GgufTensorInfo& t) const {
    return {file_->data() + header_->data_start + t.offset, size_t(t.nbytes)};
  }

  // Dequantizes tensor `t` of this file into `out`, which must hold exactly t.numel floats:
  // shape t.shape, row-major (ne[0] fastest). Throws Error naming the file and tensor when
  // the type has no dequantizer (the type name and id are in the message) or the size is wrong.
  void dequantize(const GgufTensorInfo& t, std::span<float> out) const {
    GALVANI_CHECK(ggml_can_dequantize(t.type), path(), ": tensor '", t.name, "' has ggml type ", t.type_name(),
                  " (id ", uint32_t(t.type), "), which galvani cannot dequantize (it handles F32, F16, BF16, Q4_0, "
                  "Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
    GALVANI_CHECK(out.size() == size_t(t.numel), path(), ": tensor '", t.name, "' ", shape_str(t.shape), " has ",
                  t.numel, " elements; the output buffer holds ", out.size());
    dequantize_ggml(t.type, bytes(t), out);
  }
  void dequantize(const std::string& name, std::span<float> out) const { dequantize(tensor(name), out); }
  std::vector<float> dequantize(const std::string& name) const {
    const GgufTensorInfo& t = tensor(name);
    std::vector<float> out(static_cast<size_t>(t.numel));
    dequantize(t, out);
    return out;
  }

 private:
  std::shared_ptr<MappedFile> file_;
  std::shared_ptr<GgufHeader> header_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace galvani::io
