// io/safetensors.hpp — the safetensors format: a validated zero-copy reader and a writer
// whose output is byte-identical to Python's `safetensors.torch.save_file`.
//
// The file (huggingface/safetensors, README "Format"):
//
//   [ 8 bytes: N, u64 little-endian ][ N bytes: JSON header ][ tensor bytes ... ]
//
//   header = {"__metadata__": {"format": "pt"},            <- optional, string -> string
//             "wte.weight": {"dtype": "F32", "shape": [50257, 768],
//                            "data_offsets": [0, 154389504]}, ...}
//
// Offsets count from the first byte after the header; tensors are row-major and
// little-endian. Reading validates everything the Rust reference does, because a
// checkpoint is a download from strangers:
//   - N <= 100,000,000 and 8 + N <= file size;
//   - the header is UTF-8 JSON starting with '{', an object, no duplicate keys;
//   - every dtype is one of the 22 safetensors knows (those galvani cannot compute
//     with — I8, F8_E4M3, BOOL, … — still parse, and are served as raw bytes);
//   - shape × dtype size == end − begin (checked multiplication, whole bytes);
//   - sorted by offset, tensors tile the data section from 0 with no gap and no
//     overlap, and the last one ends exactly at the end of the file.
// Each failure is a galvani::Error that names the file and, where there is one, the tensor.
//
// Reading maps the file (io/mmap_file.hpp). A tensor whose dtype galvani holds comes
// back as a view into the mapping (no copy) when its bytes are aligned for its
// element type; to_tensor(DType::f32) converts bf16/f16 on request.
#pragma once
#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "json.hpp"
#include "mmap_file.hpp"
#include "state_dict.hpp"

namespace galvani::io {

// ------------------------------------------------------------------ dtypes

// In the order of safetensors' Rust `enum Dtype`: the writer sorts tensors by it
// (descending), so this order decides the byte layout of every file we write.
enum class StDtype : uint8_t {
  BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ,
  I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64
};

struct StDtypeInfo {
  const char* name;
  StDtype dtype;
  unsigned bits;  // F4 and F6 pack several elements per byte
};

inline constexpr StDtypeInfo kStDtypes[] = {
    {"BOOL", StDtype::BOOL, 8},       {"F4", StDtype::F4, 4},
    {"F6_E2M3", StDtype::F6_E2M3, 6}, {"F6_E3M2", StDtype::F6_E3M2, 6},
    {"U8", StDtype::U8, 8},           {"I8", StDtype::I8, 8},
    {"F8_E5M2", StDtype::F8_E5M2, 8}, {"F8_E4M3", StDtype::F8_E4M3, 8},
    {"F8_E8M0", StDtype::F8_E8M0, 8}, {"F8_E4M3FNUZ", StDtype::F8_E4M3FNUZ, 8},
    {"F8_E5M2FNUZ", StDtype::F8_E5M2FNUZ, 8},
    {"I16", StDtype::I16, 16},        {"U16", StDtype::U16, 16},
    {"F16", StDtype::F16, 16},        {"BF16", StDtype::BF16, 16},
    {"I32", StDtype::I32, 32},        {"U32", StDtype::U32, 32},
    {"F32", StDtype::F32, 32},        {"C64", StDtype::C64, 64},
    {"F64", StDtype::F64, 64},        {"I64", StDtype::I64, 64},
    {"U64", StDtype::U64, 64},
};

inline const char* st_dtype_name(StDtype d) { return kStDtypes[size_t(d)].name; }
inline unsigned st_dtype_bits(StDtype d) { return kStDtypes[size_t(d)].bits; }

inline std::optional<StDtype> st_dtype_from_string(std::string_view s) {
  for (const auto& e : kStDtypes)
    if (s == e.name) return e.dtype;
  return std::nullopt;
}

// The galvani DType holding the same bits, if there is one.
inline std::optional<DType> to_dtype(StDtype d) {
  switch (d) {
    case StDtype::F32: return DType::f32;
    case StDtype::F64: return DType::f64;
    case StDtype::BF16: return DType::bf16;
    case StDtype::F16: return DType::f16;
    case StDtype::I32: return DType::i32;
    case StDtype::I64: return DType::i64;
    case StDtype::U8: return DType::u8;
    default: return std::nullopt;
  }
}

inline StDtype to_st_dtype(DType d) {
  switch (d) {
    case DType::f32: return StDtype::F32;
    case DType::f64: return StDtype::F64;
    case DType::bf16: return StDtype::BF16;
    case DType::f16: return StDtype::F16;
    case DType::i32: return StDtype::I32;
    case DType::i64: return StDtype::I64;
    case DType::u8: return StDtype::U8;
  }
  throw Error("to_st_dtype: unknown dtype");
}

// ------------------------------------------------------------------ the header

inline constexpr uint64_t kMaxHeaderSize = 100'000'000;  // safetensors' MAX_HEADER_SIZE

using Metadata = std::map<std::string, std::string>;

struct TensorInfo {
  std::string name;
  StDtype dtype = StDtype::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data section, end one past the last byte
  uint64_t nbytes() const { return end - begin; }
  int64_t numel() const { return numel_of(shape); }
};

struct Header {
  uint64_t header_size = 0;          // N, the JSON's length in bytes (with padding)
  std::vector<TensorInfo> tensors;   // sorted by data offsets (file order)
  Metadata metadata;                 // the __metadata__ map, empty when absent
  bool has_metadata = false;
  uint64_t data_start() const { return 8 + header_size; }
  uint64_t data_size() const { return tensors.empty() ? 0 : tensors.back().end; }
};

namespace detail {

inline uint64_t json_offset(const json& v, const std::string& where, const char* what) {
  GALVANI_CHECK(v.is_number_unsigned(), where, ": ", what, " must be a non-negative integer, got ", v.dump());
  return v.get<uint64_t>();
}

inline TensorInfo parse_tensor_entry(const std::string& name, const json& e, const std::string& where) {
  GALVANI_CHECK(e.is_object(), where, ": entry must be an object with dtype, shape and data_offsets, got ",
                e.type_name());
  TensorInfo t;
  t.name = name;
  auto dt = e.find("dtype");
  GALVANI_CHECK(dt != e.end(), where, ": missing \"dtype\"");
  GALVANI_CHECK(dt->is_string(), where, ": \"dtype\" must be a string, got ", dt->dump());
  auto sd = st_dtype_from_string(dt->get<std::string>());
  GALVANI_CHECK(sd, where, ": unknown dtype \"", dt->get<std::string>(),
                "\" (safetensors knows BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_*, I16, U16, F16, BF16, I32, U32, F32, "
                "C64, F64, I64, U64)");
  t.dtype = *sd;

  auto sh = e.find("shape");
  GALVANI_CHECK(sh != e.end(), where, ": missing \"shape\"");
  GALVANI_CHECK(sh->is_array(), where, ": \"shape\" must be an array, got ", sh->dump());
  for (const auto& d : *sh) {
    uint64_t v = json_offset(d, where, "every shape entry");
    GALVANI_CHECK(v <= uint64_t(INT64_MAX), where, ": shape entry ", v, " is too large");
    t.shape.push_back(int64_t(v));
  }

  auto off = e.find("data_offsets");
  GALVANI_CHECK(off != e.end(), where, ": missing \"data_offsets\"");
  GALVANI_CHECK(off->is_array() && off->size() == 2, where, ": \"data_offsets\" must be [begin, end], got ",
                off->dump());
  t.begin = json_offset((*off)[0], where, "data_offsets begin");
  t.end = json_offset((*off)[1], where, "data_offsets end");
  return t;
}

// numel × bits / 8 with every multiplication checked (safetensors: ValidationOverflow,
// MisalignedSlice).
inline uint64_t expected_nbytes(const TensorInfo& t, const std::string& where) {
  uint64_t numel = 1;
  for (int64_t d : t.shape)
    GALVANI_CHECK(!__builtin_mul_overflow(numel, uint64_t(d), &numel), where, ": shape ", shape_str(t.shape),
                  " overflows 64 bits");
  uint64_t bits = 0;
  GALVANI_CHECK(!__builtin_mul_overflow(numel, uint64_t(st_dtype_bits(t.dtype)), &bits), where, ": shape ",
                shape_str(t.shape), " of ", st_dtype_name(t.dtype), " overflows 64 bits");
  GALVANI_CHECK(bits % 8 == 0, where, ": ", numel, " elements of ", st_dtype_name(t.dtype),
                " do not fill a whole number of bytes");
  return bits / 8;
}

inline uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace detail

// Parses and validates the header of a whole file held in `file[0, file_size)`.
// `path` only names the file in errors. Reads no byte outside that range.
inline Header parse_header(const uint8_t* file, size_t file_size, const std::string& path) {
  using galvani::detail::cat;
  GALVANI_CHECK(file_size >= 8, path, ": not a safetensors file: ", file_size,
                " bytes is too short for the 8-byte header length");
  Header h;
  h.header_size = detail::read_u64_le(file);
  GALVANI_CHECK(h.header_size <= kMaxHeaderSize, path, ": header length ", h.header_size,
                " exceeds the safetensors limit of ", kMaxHeaderSize, " bytes (corrupt, or not a safetensors file)");
  GALVANI_CHECK(8 + h.header_size <= file_size, path, ": header length ", h.header_size,
                " runs past the end of the file (", file_size, " bytes; truncated download?)");
  std::string_view text(reinterpret_cast<const char*>(file + 8), size_t(h.header_size));
  // JSON whitespace may precede the object (serde_json skips it, so safetensors does).
  const size_t first = text.find_first_not_of(" \t\n\r");
  GALVANI_CHECK(first != std::string_view::npos && text[first] == '{', path, ": header does not start with '{' (",
                first == std::string_view::npos ? cat("it is ", text.size(), " bytes of whitespace")
                                                : cat("byte offset ", 8 + first, " holds 0x", std::hex,
                                                      int(uint8_t(text[first])), std::dec),
                "; not a safetensors file)");
  json j = parse_json_strict(text, path + ": header", /*base=*/8);  // offsets in errors count from the file start
  GALVANI_CHECK(j.is_object(), path, ": header must be a JSON object");

  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "__metadata__") {
      h.has_metadata = true;
      if (it->is_null()) continue;
      GALVANI_CHECK(it->is_object(), path, ": __metadata__ must be an object of strings, got ", it->type_name());
      for (auto m = it->begin(); m != it->end(); ++m) {
        GALVANI_CHECK(m->is_string(), path, ": __metadata__ value for \"", m.key(),
                      "\" must be a string, got ", m->dump());
        h.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    h.tensors.push_back(detail::parse_tensor_entry(key, *it, cat(path, ": tensor '", key, "'")));
  }

  // Sorted by offsets, the tensors must tile [0, data size) exactly.
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });
  const uint64_t data_size = file_size - h.data_start();
  uint64_t expected = 0;
  const TensorInfo* prev = nullptr;
  for (const auto& t : h.tensors) {
    std::string where = cat(path, ": tensor '", t.name, "'");
    GALVANI_CHECK(t.end >= t.begin, where, ": data_offsets [", t.begin, ", ", t.end, "] end before they begin");
    GALVANI_CHECK(t.end <= data_size, where, ": data_offsets [", t.begin, ", ", t.end,
                  "] run past the end of the file (the data section holds ", data_size, " bytes)");
    GALVANI_CHECK(t.begin >= expected, where, ": data_offsets [", t.begin, ", ", t.end, "] overlap tensor '",
                  prev ? prev->name : "", "' which ends at ", expected);
    GALVANI_CHECK(t.begin == expected, where, ": data_offsets [", t.begin, ", ", t.end, "] leave a gap of ",
                  t.begin - expected, " bytes after ", (prev ? "tensor '" + prev->name + "'" : std::string("the header")));
    uint64_t want = detail::expected_nbytes(t, where);
    GALVANI_CHECK(want == t.nbytes(), where, ": shape ", shape_str(t.shape), " of ", st_dtype_name(t.dtype), " needs ",
                  want, " bytes but data_offsets [", t.begin, ", ", t.end, "] hold ", t.nbytes());
    expected = t.end;
    prev = &t;
  }
  GALVANI_CHECK(expected == data_size, path, ": ", data_size - expected,
                " bytes follow the last tensor's data; the file must end where the last tensor ends");
  return h;
}

// ------------------------------------------------------------------ reading

// One tensor inside an opened file: its header entry and its bytes. Cheap to copy;
// it keeps the file mapped while it exists.
class TensorView {
 public:
  TensorView(std::shared_ptr<const Header> header, size_t index, std::shared_ptr<MappedFile> file)
      : header_(std::move(header)), info_(&header_->tensors.at(index)), file_(std::move(file)),
        data_start_(header_->data_start()) {}

  const std::string& name() const { return info_->name; }
  StDtype st_dtype() const { return info_->dtype; }
  const char* dtype_name() const { return st_dtype_name(info_->dtype); }
  std::optional<DType> dtype() const { return to_dtype(info_->dtype); }
  const Shape& shape() const { return info_->shape; }
  int64_t numel() const { return info_->numel(); }
  size_t nbytes() const { return size_t(info_->nbytes()); }
  const TensorInfo& info() const { return *info_; }
  const std::string& file() const { return file_->path(); }
  const std::shared_ptr<MappedFile>& mapped_file() const { return file_; }
  const Header& header() const { return *header_; }  // the whole file's header (its __metadata__ too)
  const uint8_t* data() const { return file_->data() + data_start_ + info_->begin; }

  // The bytes as a u8 [nbytes] tensor, zero-copy. Works for every dtype.
  Tensor bytes() const {
    return Tensor::from_blob(file_->mutable_data() + data_start_ + info_->begin, {int64_t(nbytes())}, DType::u8,
                             file_);
  }

  // The tensor in its own dtype: a view into the mapping when the bytes are aligned
  // for the element type (always, for files written by safetensors or galvani),
  // else an aligned copy.
  Tensor to_tensor() const {
    DType d = require_dtype();
    uint8_t* p = file_->mutable_data() + data_start_ + info_->begin;
    if (reinterpret_cast<uintptr_t>(p) % itemsize(d) == 0 || nbytes() == 0)
      return Tensor::from_blob(p, info_->shape, d, file_);
    Tensor t = Tensor::empty(info_->shape, d);
    std::memcpy(t.raw_data(), p, nbytes());
    return t;
  }

  // A tensor of dtype `want`: the view above when the dtypes match, else a fresh
  // converted copy (bf16/f16 -> f32 is the common case).
  Tensor to_tensor(DType want) const {
    Tensor src = to_tensor();
    if (src.dtype() == want) return src;
    Tensor dst = Tensor::empty(info_->shape, want);
    copy_into(dst, src);
    return dst;
  }

 private:
  DType require_dtype() const {
    auto d = dtype();
    GALVANI_CHECK(d, file(), ": tensor '", name(), "' has dtype ", dtype_name(),
                  ", which galvani's Tensor cannot hold (it holds F32, F64, BF16, F16, I32, I64, U8); "
                  "read its bytes with bytes()");
    return *d;
  }
  std::shared_ptr<const Header> header_;  // keeps info_ alive
  const TensorInfo* info_;
  std::shared_ptr<MappedFile> file_;      // keeps the bytes mapped
  uint64_t data_start_;
};

// How load() turns views into a StateDict.
struct LoadOptions {
  std::optional<DType> float_dtype;  // convert every floating tensor to this (e.g. f32); nullopt keeps dtypes
  bool copy = false;                 // copy out of the mapping (the file can then be unmapped/replaced)
};

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::filesystem::path& path, MappedFile::Mode mode = MappedFile::Mode::copy_on_write) {
    return SafetensorsFile(MappedFile::open(path, mode));
  }
  static SafetensorsFile from_bytes(std::vector<uint8_t> bytes, std::string name) {
    return SafetensorsFile(MappedFile::from_bytes(std::move(bytes), std::move(name)));
  }
  explicit SafetensorsFile(std::shared_ptr<MappedFile> file) : file_(std::move(file)) {
    header_ = std::make_shared<Header>(parse_header(file_->data(), file_->size(), file_->path()));
    for (size_t i = 0; i < header_->tensors.size(); ++i) index_[header_->tensors[i].name] = i;
  }

  const std::string& path() const { return file_->path(); }
  size_t file_size() const { return file_->size(); }
  const Header& header() const { return *header_; }
  const std::vector<TensorInfo>& tensors() const { return header_->tensors; }  // in file order
  const Metadata& metadata() const { return header_->metadata; }
  const std::shared_ptr<MappedFile>& mapped_file() const { return file_; }
  size_t size() const { return header_->tensors.size(); }

  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const TensorInfo* find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &header_->tensors[it->second];
  }

  TensorView view(const std::string& name) const {
    auto it = index_.find(name);
    GALVANI_CHECK(it != index_.end(), path(), ": no tensor named '", name, "'");
    return TensorView(header_, it->second, file_);
  }
  std::vector<TensorView> views() const {
    std::vector<TensorView> out;
    out.reserve(size());
    for (size_t i = 0; i < size(); ++i) out.push_back(TensorView(header_, i, file_));
    return out;
  }
  Tensor tensor(const std::string& name) const { return view(name).to_tensor(); }
  Tensor tensor(const std::string& name, DType want) const { return view(name).to_tensor(want); }

  StateDict load(const LoadOptions& opts = {}) const {
    StateDict sd;
    for (const auto& v : views()) add_to(sd, v, opts);
    return sd;
  }

  // One view into `sd` per LoadOptions (shared with the sharded loader).
  static void add_to(StateDict& sd, const TensorView& v, const LoadOptions& opts, const std::string& name) {
    if (!v.dtype()) {  // a dtype galvani cannot hold: keep the bytes untouched
      Tensor b = v.bytes();
      if (opts.copy) b = copy_bytes(b);
      sd.insert_raw(name, v.dtype_name(), v.shape(), b);
      return;
    }
    Tensor t;
    if (opts.float_dtype && is_floating(*v.dtype()) && *v.dtype() != *opts.float_dtype) t = v.to_tensor(*opts.float_dtype);
    else if (opts.copy) t = copy_bytes(v.to_tensor());
    else t = v.to_tensor();
    sd.insert(name, std::move(t));
  }
  static void add_to(StateDict& sd, const TensorView& v, const LoadOptions& opts) { add_to(sd, v, opts, v.name()); }

 private:
  static Tensor copy_bytes(const Tensor& t) {
    Tensor c = Tensor::empty(t.shape(), t.dtype());
    if (t.nbytes()) std::memcpy(c.raw_data(), t.raw_data(), t.nbytes());
    return c;
  }

  std::shared_ptr<MappedFile> file_;
  std::shared_ptr<Header> header_;
  std::unordered_map<std::string, size_t> index_;
};

inline StateDict load_safetensors(const std::filesystem::path& path, const LoadOptions& opts = {}) {
  return SafetensorsFile::open(path).load(opts);
}

// ------------------------------------------------------------------ writing

namespace detail {

struct WriteItem {
  const StateEntry* entry;
  StDtype dtype;
  Tensor data;  // contiguous CPU bytes
};

// The entries in safetensors' order (dtype descending, then name), each contiguous.
inline std::vector<WriteItem> plan_write(const StateDict& sd, const std::string& where) {
  std::vector<WriteItem> items;
  items.reserve(sd.size());
  for (const auto& e : sd) {
    GALVANI_CHECK(e.name != "__metadata__", where, ": a tensor cannot be named __metadata__");
    GALVANI_CHECK(e.tensor.device().is_cpu(), where, ": tensor '", e.name, "' is on ", e.tensor.device().str(),
                  "; move it to the CPU before saving");
    WriteItem w{&e, StDtype::U8, e.tensor};
    if (e.is_raw()) {
      auto d = st_dtype_from_string(e.raw_dtype);
      GALVANI_CHECK(d, where, ": tensor '", e.name, "' has unknown raw dtype \"", e.raw_dtype, "\"");
      w.dtype = *d;
      TensorInfo probe{e.name, *d, e.raw_shape, 0, 0};
      uint64_t want = expected_nbytes(probe, where + ": tensor '" + e.name + "'");
      GALVANI_CHECK(want == e.tensor.nbytes(), where, ": raw tensor '", e.name, "' of shape ", shape_str(e.raw_shape),
                    " ", e.raw_dtype, " needs ", want, " bytes, has ", e.tensor.nbytes());
    } else {
      w.dtype = to_st_dtype(e.tensor.dtype());
    }
    if (!w.data.is_contiguous()) {
      Tensor c = Tensor::empty(w.data.shape(), w.data.dtype());
      copy_into(c, w.data);
      w.data = c;
    }
    items.push_back(std::move(w));
  }
  std::sort(items.begin(), items.end(), [](const WriteItem& a, const WriteItem& b) {
    if (a.dtype != b.dtype) return a.dtype > b.dtype;
    return a.entry->name < b.entry->name;
  });
  return items;
}

inline std::string json_string(const std::string& s, const std::string& where) {
  try {
    return json(s).dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::exception&) {
    throw Error(galvani::detail::cat(where, ": name \"", s, "\" is not valid UTF-8"));
  }
}

// The header exactly as safetensors writes it: compact JSON, __metadata__ first,
// tensors in write order, padded with spaces to a multiple of 8 bytes so the data
// section (and with the dtype-descending order, every tensor) is aligned.
inline std::string build_header(const std::vector<WriteItem>& items, const Metadata& metadata,
                                const std::string& where) {
  // Appends only (no `"," + std::string`): GCC 12 warns falsely (-Wrestrict) on those.
  std::string h = "{";
  bool first = true;
  auto sep = [&] {
    if (!first) h += ',';
    first = false;
  };
  if (!metadata.empty()) {
    sep();
    h += "\"__metadata__\":{";
    bool f = true;
    for (const auto& [k, v] : metadata) {
      if (!f) h += ',';
      f = false;
      h += json_string(k, where);
      h += ':';
      h += json_string(v, where);
    }
    h += '}';
  }
  uint64_t offset = 0;
  for (const auto& w : items) {
    const Shape& shape = w.entry->shape();
    sep();
    h += json_string(w.entry->name, where);
    h += ":{\"dtype\":\"";
    h += st_dtype_name(w.dtype);
    h += "\",\"shape\":[";
    for (size_t i = 0; i < shape.size(); ++i) {
      if (i) h += ',';
      h += std::to_string(shape[i]);
    }
    uint64_t end = offset + w.data.nbytes();
    h += "],\"data_offsets\":[";
    h += std::to_string(offset);
    h += ',';
    h += std::to_string(end);
    h += "]}";
    offset = end;
  }
  h += '}';
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

template <class Sink>
inline void write_safetensors_to(const StateDict& sd, const Metadata& metadata, const std::string& where, Sink&& sink) {
  auto items = plan_write(sd, where);
  std::string header = build_header(items, metadata, where);
  uint8_t len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(n >> (8 * i));
  sink(len, 8);
  sink(reinterpret_cast<const uint8_t*>(header.data()), header.size());
  for (const auto& w : items)
    if (w.data.nbytes()) sink(static_cast<const uint8_t*>(w.data.raw_data()), w.data.nbytes());
}

}  // namespace detail

// The whole file in memory (tests, small fixtures).
inline std::vector<uint8_t> serialize_safetensors(const StateDict& sd, const Metadata& metadata = {}) {
  std::vector<uint8_t> out;
  detail::write_safetensors_to(sd, metadata, "serialize_safetensors",
                               [&](const uint8_t* p, size_t n) { out.insert(out.end(), p, p + n); });
  return out;
}

namespace detail {
// Writes `path` atomically: fill(put) writes the bytes through put(p, n) into path.tmp, which is
// then renamed over `path`; on any error the temporary is removed and the error rethrown.
// Errors name `path`.
template <class Fill>
void write_file_atomically(const std::filesystem::path& path, Fill&& fill) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  GALVANI_CHECK(f, path.string(), ": cannot open for writing: ", std::strerror(errno));
  try {
    fill([&](const void* p, size_t n) {
      GALVANI_CHECK(std::fwrite(p, 1, n, f) == n, path.string(), ": write failed: ", std::strerror(errno));
    });
    GALVANI_CHECK(std::fclose(f) == 0, path.string(), ": close failed: ", std::strerror(errno));
    f = nullptr;
    std::filesystem::rename(tmp, path);
  } catch (...) {
    if (f) std::fclose(f);
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}
}  // namespace detail

// Writes `path` atomically: into path.tmp, then renamed over path.
// transformers writes metadata {"format": "pt"}; pass it to match.
inline void save_safetensors(const std::filesystem::path& path, const StateDict& sd, const Metadata& metadata = {}) {
  detail::write_file_atomically(path, [&](const auto& put) {
    detail::write_safetensors_to(sd, metadata, path.string(), [&](const uint8_t* p, size_t n) { put(p, n); });
  });
}

}  // namespace galvani::io
