// Differential tests of galvani's safetensors and GGUF readers against the reference
// implementations (issue #17): safetensors 0.8 (the Rust crate, through its Python binding)
// and gguf-py's GGUFReader.
//
// tools/gen_differential_safetensors_gguf.py writes a corpus of real files and their mutants
// (header spacing, key order, duplicate keys, every dtype, zero-size and scalar tensors,
// metadata forms, odd JSON, offsets, GGUF versions, value types, nested arrays, alignment,
// tensor offsets and types, counts, truncations) into tests/fixtures/differential/{safetensors,
// gguf}/, each with the reference's verdict in verdicts.json: accepted, and what it read; or
// rejected. For every file galvani must
//   - accept exactly what the reference accepts, and read the same names, dtypes (ggml types),
//     shapes, bytes (sha256), metadata and — for GGUF types galvani dequantizes — the same
//     dequantized values (sha256 of the f32s);
//   - reject the rest with a galvani::Error whose message names the file;
// except where it differs on purpose. Those files are listed in kDeliberate below, each with
// its reason, and the test checks that each difference is exactly as listed: galvani still
// rejects (with the listed phrase) what the reference accepts, or the other way round. A
// difference that goes away, or a new one, fails the test. docs/robustness.md gives the reasons.
#include <catch2/catch.hpp>

#include <galvani/io/gguf.hpp>
#include <galvani/io/safetensors.hpp>
#include <galvani/io/sha256.hpp>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <string>
#include <variant>
#include <vector>

using namespace galvani;
using namespace galvani::io;
namespace fs = std::filesystem;

namespace {

const fs::path kCorpus = fs::path(GALVANI_SOURCE_DIR) / "tests" / "fixtures" / "differential";

// ------------------------------------------------------------------ deliberate differences

// The files on which galvani and the reference disagree on purpose. `galvani_rejects`: the
// reference accepts the file and galvani refuses it with an error containing `phrase`; else
// the reference refuses it and galvani reads it.
struct Deliberate {
  const char* format;  // "safetensors" or "gguf"
  const char* file;
  bool galvani_rejects;
  const char* phrase;  // in galvani's error (when it rejects)
  const char* why;
};

const Deliberate kDeliberate[] = {
    // safetensors: serde_json lets a later duplicate key replace an earlier one.
    {"safetensors", "duplicate_tensor_same.safetensors", true, "duplicate key \"ids\"",
     "A JSON object with a key twice means whatever the parser decides: serde_json keeps the last, other "
     "parsers the first, so two tools can load different weights from one file. galvani refuses duplicate "
     "keys anywhere in the header, even when both entries agree."},
    {"safetensors", "duplicate_tensor_different.safetensors", true, "duplicate key \"weight\"",
     "A tensor given twice with different entries: safetensors reads 'weight' as the second (I32 [3, 2]), a "
     "first-wins parser as the first (F32 [2, 3]), over the same bytes; galvani refuses the file."},
    {"safetensors", "duplicate_metadata_key.safetensors", true, "duplicate key \"format\"",
     "A key twice inside __metadata__: safetensors keeps the last value; galvani refuses the file, as it "
     "refuses every duplicate key in the header."},
    {"safetensors", "shape_zero_and_2_63.safetensors", true, "is too large",
     "safetensors reads any u64 dimension, so a zero-size tensor may have another dimension of 2^63 or more; "
     "galvani's shapes are int64, as PyTorch's are, and it refuses a dimension it cannot hold rather than "
     "wrap it to a negative size."},
    {"safetensors", "shape_zero_and_u64_max.safetensors", true, "is too large",
     "A dimension of 2^64 - 1 beside a 0: safetensors reads the zero-size tensor; galvani refuses a "
     "dimension past int64, for the reason above."},
    // GGUF: gguf-py reads these; galvani is stricter, as the GGUF spec or ggml is.
    {"gguf", "bool_value_2.gguf", true, "not 0 or 1",
     "The GGUF spec: a bool is 0 (false) or 1 (true), 'anything else is invalid'; gguf-py and ggml read any "
     "non-zero byte as true. galvani refuses the byte, so a corrupt flag is not silently read as true."},
    {"gguf", "bool_array_value_255.gguf", true, "not 0 or 1",
     "A bool array element stored as 255: gguf-py reads it as true; galvani refuses it, as the spec says, for "
     "the reason above."},
    {"gguf", "nested_arrays_10_deep.gguf", true, "nested deeper than 8",
     "gguf-py follows nested arrays to any depth (ggml refuses any nesting); galvani reads up to 8 levels, so "
     "a hostile file cannot recurse without end. No published model nests at all."},
    {"gguf", "tensors_overlap.gguf", true, "overlaps tensor",
     "gguf-py reads tensors whose bytes overlap; galvani refuses them (ggml too, which wants tensors back to "
     "back): overlapping tensors are a corrupt or hostile file, never what a writer produces."},
    {"gguf", "tensors_same_offset.gguf", true, "overlaps tensor",
     "Two tensors at one offset: gguf-py reads both over the same bytes; galvani refuses them as overlapping, "
     "for the reason above."},
    {"gguf", "tensor_misaligned_offset.gguf", true, "not a multiple of the alignment",
     "gguf-py reads a tensor whose offset is not a multiple of general.alignment; ggml refuses it, and so "
     "does galvani, whose dequantizers and zero-copy views rely on the alignment the header promises."},
    {"gguf", "tensor_5_dims.gguf", true, "exceeds ggml's limit of 4",
     "gguf-py reads a 5-dimensional tensor; ggml has at most 4 dimensions (GGML_MAX_DIMS) and refuses it, as "
     "galvani does."},
    {"gguf", "tensor_zero_dim.gguf", true, "is not a dimension",
     "gguf-py reads a tensor with a zero-length dimension (no bytes); galvani refuses dimensions of 0, which "
     "no writer produces and which would make an empty weight out of a corrupt header."},
    {"gguf", "big_endian_writer.gguf", true, "big-endian",
     "gguf-py reads big-endian GGUF files (v3 allows them); galvani reads little-endian files only, in place, "
     "and names the byte order in its error rather than misreading every number."},
};

const Deliberate* deliberate(const std::string& format, const std::string& file) {
  for (const auto& d : kDeliberate)
    if (format == d.format && file == d.file) return &d;
  return nullptr;
}

// ------------------------------------------------------------------ helpers

json load_verdicts(const std::string& format) {
  std::ifstream in(kCorpus / format / "verdicts.json");
  REQUIRE(in);
  return json::parse(in);
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// Runs f; returns "" when it succeeds, else galvani's error message. Any other exception fails.
std::string outcome(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    std::string m = e.what();
    return m.empty() ? "(empty galvani::Error)" : m;
  } catch (const std::exception& e) {
    FAIL("not a galvani::Error: " << e.what());
  } catch (...) {
    FAIL("an exception that is not a std::exception");
  }
  return "";
}

std::string hex_bits(uint64_t bits, int bytes) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%0*llx", bytes * 2, static_cast<unsigned long long>(bits));
  return buf;
}

// ------------------------------------------------------------------ what galvani read, as the verdicts write it

// safetensors: {"tensors": [{name, dtype, shape, nbytes, sha256}, …] by name, "metadata": {…}}.
json read_safetensors(const SafetensorsFile& f) {
  json tensors = json::array();
  auto views = f.views();
  std::sort(views.begin(), views.end(), [](const TensorView& a, const TensorView& b) { return a.name() < b.name(); });
  for (const auto& v : views)
    tensors.push_back({{"name", v.name()},
                       {"dtype", v.dtype_name()},
                       {"shape", v.shape()},
                       {"nbytes", v.nbytes()},
                       {"sha256", sha256_hex({v.data(), v.nbytes()})}});
  json metadata = json::object();
  for (const auto& [k, val] : f.metadata()) metadata[k] = val;
  return {{"tensors", tensors}, {"metadata", metadata}};
}

json want_safetensors(const json& verdict) {
  // safetensors has no __metadata__ (None) where the key is absent or null; galvani an empty map.
  return {{"tensors", verdict["tensors"]},
          {"metadata", verdict["metadata"].is_null() ? json::object() : verdict["metadata"]}};
}

// GGUF values: see the generator's docstring for the form.
json describe_gguf(const GgufArray& a);

json describe_gguf(const GgufValue& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, GgufArray>) return describe_gguf(x);
        else if constexpr (std::is_same_v<T, float>) return {{"bits", hex_bits(std::bit_cast<uint32_t>(x), 4)}};
        else if constexpr (std::is_same_v<T, double>) return {{"bits", hex_bits(std::bit_cast<uint64_t>(x), 8)}};
        else return {{"value", x}};
      },
      v);
}

json describe_gguf(const GgufArray& a) {
  constexpr uint64_t kShortArray = 16;  // the generator's SHORT_ARRAY
  json d = {{"count", a.count}, {"elem", gguf_type_name(a.type)}};
  const size_t each = gguf_scalar_size(a.type);
  if (a.count <= kShortArray || a.type == GgufType::ARRAY) {
    json values = json::array();
    for (size_t i = 0; i < a.count; ++i) {
      const uint8_t* p = a.raw.data() + i * each;
      switch (a.type) {
        case GgufType::ARRAY: values.push_back(describe_gguf(a.arrays[i])); break;
        case GgufType::STRING: values.push_back({{"value", a.strings[i]}}); break;
        case GgufType::BOOL: values.push_back({{"value", p[0] != 0}}); break;
        case GgufType::FLOAT32: values.push_back({{"bits", hex_bits(io::detail::gguf::load<uint32_t>(p), 4)}}); break;
        case GgufType::FLOAT64: values.push_back({{"bits", hex_bits(io::detail::gguf::load<uint64_t>(p), 8)}}); break;
        case GgufType::UINT64: values.push_back({{"value", io::detail::gguf::load<uint64_t>(p)}}); break;
        default: {
          bool ok = true;
          values.push_back({{"value", io::detail::gguf::int_at(a, i, ok)}});
        }
      }
    }
    d["values"] = values;
  } else if (a.type == GgufType::STRING) {
    Sha256 h;
    for (const auto& s : a.strings) {
      uint8_t len[8];
      for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(s.size()) >> (8 * i));
      h.update({len, 8});
      h.update({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
    }
    d["sha256"] = h.hex_digest();
  } else {
    d["sha256"] = sha256_hex(a.raw);
  }
  return d;
}

json read_gguf(const GgufFile& g) {
  json metadata = json::array();
  for (const auto& [key, value] : g.metadata().entries()) {
    json d = describe_gguf(value);
    d["key"] = key;
    d["type"] = gguf_type_name(gguf_type_of(value));
    metadata.push_back(d);
  }
  json tensors = json::array();
  for (const auto& t : g.tensors()) {
    json d = {{"name", t.name},     {"type", t.type_name()},   {"ne", t.ne},
              {"shape", t.shape},   {"offset", t.offset},      {"nbytes", t.nbytes},
              {"sha256", sha256_hex(g.bytes(t))}};
    if (ggml_can_dequantize(t.type)) {
      std::vector<float> values(size_t(t.numel));
      g.dequantize(t, values);
      d["dequant_sha256"] =
          sha256_hex({reinterpret_cast<const uint8_t*>(values.data()), values.size() * sizeof(float)});
    }
    tensors.push_back(d);
  }
  return {{"version", g.version()},       {"alignment", g.alignment()}, {"data_start", g.data_start()},
          {"metadata", metadata},         {"tensors", tensors}};
}

json want_gguf(const json& verdict) {
  return {{"version", verdict["version"]},   {"alignment", verdict["alignment"]},
          {"data_start", verdict["data_start"]}, {"metadata", verdict["metadata"]},
          {"tensors", verdict["tensors"]}};
}

// ------------------------------------------------------------------ the comparison

// Reads every file of `format` with `read` (which returns what galvani read, or throws) and
// checks it against the verdicts and kDeliberate. `read` is called twice: through a mapping
// of the file and from a heap copy of its bytes (`from_bytes`), which must agree.
void run_corpus(const std::string& format, const std::function<json(const fs::path&, bool)>& read,
                const std::function<json(const json&)>& want_of, size_t min_files) {
  const json verdicts = load_verdicts(format);
  size_t files = 0, accepted = 0, deliberate_seen = 0;
  for (const auto& [name, v] : verdicts["files"].items()) {
    INFO(format << " file " << name << ": " << v["what"].get<std::string>());
    const fs::path path = kCorpus / format / name;
    REQUIRE(fs::exists(path));
    json got;
    json got_bytes;
    const std::string error = outcome([&] { got = read(path, false); });
    const std::string error_bytes = outcome([&] { got_bytes = read(path, true); });
    CHECK(error == error_bytes);
    const bool ref_accepts = v["accepted"].get<bool>();
    INFO("the reference: " << (ref_accepts ? std::string("accepts") : v.value("error", std::string("rejects"))));
    INFO("galvani: " << (error.empty() ? std::string("accepts") : error));
    ++files;

    if (const Deliberate* d = deliberate(format, name)) {
      ++deliberate_seen;
      INFO("a deliberate difference: " << d->why);
      CHECK(ref_accepts == d->galvani_rejects);  // the reference still does the opposite
      if (d->galvani_rejects) {
        CHECK_THAT(error, Catch::Contains(d->phrase));
        CHECK_THAT(error, Catch::Contains(name));
      } else {
        CHECK(error.empty());
      }
      continue;
    }

    CHECK(error.empty() == ref_accepts);
    if (ref_accepts && error.empty()) {
      ++accepted;
      const json want = want_of(v);
      CHECK(got.dump(1) == want.dump(1));
      CHECK(got_bytes == got);
    } else if (!error.empty()) {
      CHECK_THAT(error, Catch::Contains(name));  // the error names the file
    }
  }
  CHECK(files >= min_files);
  CHECK(accepted >= 20);
  // Every deliberate difference of this format names a file of the corpus.
  size_t listed = 0;
  for (const auto& d : kDeliberate)
    if (format == d.format) {
      ++listed;
      INFO("kDeliberate names " << d.file);
      CHECK(verdicts["files"].contains(d.file));
    }
  CHECK(deliberate_seen == listed);
}

}  // namespace

TEST_CASE("safetensors: galvani accepts what safetensors accepts and reads the same, file by file",
          "[io][safetensors][differential]") {
  run_corpus(
      "safetensors",
      [](const fs::path& path, bool from_bytes) {
        return read_safetensors(from_bytes ? SafetensorsFile::from_bytes(read_bytes(path), path.string())
                                           : SafetensorsFile::open(path));
      },
      want_safetensors, 60);
}

TEST_CASE("GGUF: galvani accepts what gguf-py accepts and reads the same, file by file", "[io][gguf][differential]") {
  run_corpus(
      "gguf",
      [](const fs::path& path, bool from_bytes) {
        return read_gguf(from_bytes ? GgufFile::from_bytes(read_bytes(path), path.string()) : GgufFile::open(path));
      },
      want_gguf, 50);
}

TEST_CASE("the differential corpus's deliberate differences each give a reason", "[io][differential]") {
  std::set<std::string> seen;
  for (const auto& d : kDeliberate) {
    INFO(d.format << "/" << d.file);
    CHECK(std::string(d.why).size() > 40);
    CHECK(seen.insert(std::string(d.format) + "/" + d.file).second);
    if (d.galvani_rejects) CHECK(std::string(d.phrase).size() > 3);
  }
}
