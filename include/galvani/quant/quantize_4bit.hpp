// quant/quantize_4bit.hpp — NF4/FP4 quantize and dequantize, bit-compatible with bitsandbytes.
//
//   quantize_4bit(W, opts)        W (any shape; f32, bf16 or f16) → packed u8 [(n+1)/2, 1] and a
//                                 QuantState4bit (absmax, code, nested absmax, offset, shape,
//                                 dtype): bnb's F.quantize_4bit(W, blocksize, compress_statistics,
//                                 quant_type) on the CPU, byte for byte (tests/test_quant_nf4.cpp).
//   dequantize_4bit(packed, st)   → W' (st.shape) in st.dtype or a dtype you choose:
//                                 bnb's F.dequantize_4bit.
//   QuantState4bit::to_json()     the bytes transformers stores under
//                                 "<prefix>.weight.quant_state.bitsandbytes__nf4";
//   QuantState4bit::from_json()   reads them back, with errors naming the tensor.
//
// The per-element arithmetic is in quant/nf4_format.hpp. The block scaling here follows
// bitsandbytes' CPU quantizer (backends/default/ops.py, which quantize_4bit takes on a CPU):
//   * a full block is scaled by x * (1 / absmax): one float32 reciprocal per block, then a
//     multiply — bit-exact parity depends on it (x / absmax rounds differently);
//   * the last, short block is scaled by x / absmax — bnb's CPU code divides there;
//   * absmax is clamped to 1e-38 before the reciprocal, so an all-zero block scales to 0 and
//     gets the code of 0 (NF4 code 7, byte 0x77), where bnb's CUDA kernel computes 0 * inf = NaN
//     and writes code 0. Both dequantize to ±0, so only the packed bytes differ. (The short
//     block keeps the clamped value, 1e-38, as its absmax; full blocks keep 0.)
// Dequantizing follows the format's definition, absmax[i / blocksize] over the flat index (bnb's
// CUDA kernel and default backend). bnb 0.50.2's AVX-512 CPU dequantizer instead indexes absmax
// per row and is wrong when a row is not a whole number of blocks (a (16, 96) weight, blocksize
// 64); the fixture records where, and galvani does not copy that.
// Following the CPU rule means a model quantized on load here is byte-identical to what
// transformers writes on the same machine, which the tests can check without a GPU.
#pragma once
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "../core/tensor.hpp"
#include "../io/json.hpp"
#include "blockwise8.hpp"
#include "nf4_format.hpp"
#include "quantize_4bit_array.hpp"

namespace galvani::quant {

inline const char* quant_type_name(QuantType t) { return t == QuantType::nf4 ? "nf4" : "fp4"; }

// torch's name of a dtype, as bnb writes it into the quant state ("bfloat16").
inline std::string torch_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::bf16: return "bfloat16";
    case DType::f16: return "float16";
    case DType::f64: return "float64";
    default: throw Error(galvani::detail::cat("4-bit quantization: no float dtype ", dtype_name(t)));
  }
}
inline std::optional<DType> dtype_from_torch_name(const std::string& s) {
  if (s == "float32") return DType::f32;
  if (s == "bfloat16") return DType::bf16;
  if (s == "float16") return DType::f16;
  if (s == "float64") return DType::f64;
  return std::nullopt;
}

// Python's repr() of a float (json.dumps writes floats that way): the shortest digits that
// round-trip, fixed notation for 1e-4 <= |v| < 1e16 (with ".0" if integral), else d.ddde±XX.
inline std::string python_float_repr(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string s(buf, r.ptr);  // "-d.ddde±XX"
  const size_t e = s.find('e');
  const int exp10 = std::stoi(s.substr(e + 1));
  std::string mant = s.substr(0, e);
  const bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out;
  if (exp10 >= -5 && exp10 < 16) {  // repr switches to exponent form below 1e-4 (exp10 < -4)
    if (exp10 < -4) goto sci;
    if (exp10 < 0) out = "0." + std::string(size_t(-exp10 - 1), '0') + digits;
    else if (int(digits.size()) <= exp10 + 1) out = digits + std::string(size_t(exp10 + 1 - int(digits.size())), '0') + ".0";
    else out = digits.substr(0, size_t(exp10 + 1)) + "." + digits.substr(size_t(exp10 + 1));
    return (neg ? "-" : "") + out;
  }
sci:
  out = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
  char ebuf[16];
  std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
  return (neg ? "-" : "") + out + ebuf;
}

// bnb's QuantState for a 4-bit weight.
struct QuantState4bit {
  QuantType quant_type = QuantType::nf4;
  int64_t blocksize = 64;
  DType dtype = DType::f32;  // the original weight's dtype: what dequantize_4bit returns
  Shape shape;               // the original weight's shape ((out, in) for a linear)
  Tensor absmax;             // f32 [nblocks]; u8 [nblocks] when nested
  Tensor code;               // f32 [16] ("quant_map")
  bool nested = false;
  Tensor nested_absmax;      // f32 [ceil(nblocks / 256)]
  Tensor nested_code;        // f32 [256] ("nested_quant_map")
  float offset = 0.0f;       // "nested_offset": mean of the absmax, subtracted before quantizing them
  int64_t nested_blocksize = kNestedBlocksize;

  int64_t numel() const { return numel_of(shape); }
  int64_t nblocks() const { return num_blocks(numel(), blocksize); }

  // The per-block absmax as float32 [nblocks]: itself, or the nested ones dequantized
  // (bnb's dequantize_4bit does this before the element loop; so do galvani's matmuls).
  std::vector<float> absmax_f32() const {
    const int64_t nb = nblocks();
    std::vector<float> out(static_cast<size_t>(nb));
    if (!nested) {
      std::memcpy(out.data(), absmax.data<float>(), size_t(nb) * sizeof(float));
      return out;
    }
    const uint8_t* q = absmax.data<uint8_t>();
    const float* c8 = nested_code.data<float>();
    const float* na = nested_absmax.data<float>();
    for (int64_t b = 0; b < nb; ++b)
      out[size_t(b)] = dequantize_nested_absmax(c8[q[b]], na[b / nested_blocksize], offset);
    return out;
  }

  // json.dumps(QuantState.as_dict(packed=True)'s JSON part), byte for byte.
  std::string to_json() const {
    std::string s = std::string("{\"quant_type\": \"") + quant_type_name(quant_type) + "\", \"blocksize\": " +
                    std::to_string(blocksize) + ", \"dtype\": \"" + torch_dtype_name(dtype) + "\", \"shape\": [";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    s += "]";
    if (nested)
      s += ", \"nested_blocksize\": " + std::to_string(nested_blocksize) +
           ", \"nested_dtype\": \"float32\", \"nested_offset\": " + python_float_repr(double(offset));
    return s + "}";
  }
  // Parses the quant-state JSON of tensor `where` ("…q_proj.weight"); the tensors are filled
  // by the caller. Every missing or wrong field is an error naming `where`.
  static QuantState4bit from_json(const std::string& text, const std::string& where) {
    io::json j = io::parse_json_strict(text, where + ".quant_state");
    GALVANI_CHECK(j.is_object(), where, ": the quant state is not a JSON object");
    auto field = [&](const char* key) -> const io::json& {
      GALVANI_CHECK(j.contains(key), where, ": the quant state has no \"", key, "\" (it has ", j.dump(), ")");
      return j.at(key);
    };
    QuantState4bit st;
    const io::json& qt = field("quant_type");
    GALVANI_CHECK(qt.is_string() && (qt == "nf4" || qt == "fp4"), where, ": unknown quant_type ", qt.dump(),
                  " (bitsandbytes 4-bit is \"nf4\" or \"fp4\")");
    st.quant_type = qt == "nf4" ? QuantType::nf4 : QuantType::fp4;
    const io::json& bs = field("blocksize");
    GALVANI_CHECK(bs.is_number_integer() && valid_4bit_blocksize(bs.get<int64_t>()), where, ": blocksize ", bs.dump(),
                  " is not one bitsandbytes uses (32, 64, …, 4096)");
    st.blocksize = bs.get<int64_t>();
    const io::json& dt = field("dtype");
    auto d = dt.is_string() ? dtype_from_torch_name(dt.get<std::string>()) : std::nullopt;
    GALVANI_CHECK(d, where, ": dtype ", dt.dump(), " is not float32, bfloat16 or float16");
    st.dtype = *d;
    const io::json& sh = field("shape");
    GALVANI_CHECK(sh.is_array(), where, ": shape ", sh.dump(), " is not a list");
    for (const auto& v : sh) {
      GALVANI_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0, where, ": shape ", sh.dump(), " is not a list of sizes");
      st.shape.push_back(v.get<int64_t>());
    }
    st.nested = j.contains("nested_blocksize") || j.contains("nested_offset") || j.contains("nested_dtype");
    if (st.nested) {
      const io::json& nb = field("nested_blocksize");
      GALVANI_CHECK(nb.is_number_integer() && nb.get<int64_t>() > 0, where, ": nested_blocksize ", nb.dump(), " is not a block size");
      st.nested_blocksize = nb.get<int64_t>();
      const io::json& nd = field("nested_dtype");
      GALVANI_CHECK(nd == "float32", where, ": nested_dtype ", nd.dump(), " is not \"float32\"");
      const io::json& off = field("nested_offset");
      GALVANI_CHECK(off.is_number(), where, ": nested_offset ", off.dump(), " is not a number");
      st.offset = float(off.get<double>());
    }
    return st;
  }
};

struct Quantize4bitOptions {
  QuantType quant_type = QuantType::nf4;  // bnb's own default is fp4; every QLoRA recipe sets nf4
  int64_t blocksize = 64;
  bool double_quant = false;              // compress_statistics / bnb_4bit_use_double_quant
  Round8 nested_rounding = Round8::cpu;   // see quant/blockwise8.hpp
};

struct Quantized4bit {
  Tensor packed;  // u8 [(n+1)/2, 1]
  QuantState4bit state;
};

// The 4-bit code table as bnb stores it ("quant_map", f32 [16]).
inline Tensor code4_table(QuantType t) {
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[size_t(i)] = code4_value(t, uint8_t(i));
  return Tensor::from_vector(v, {16});
}

// bnb's F.quantize_4bit(W, blocksize, compress_statistics, quant_type) on the CPU.
// W: any shape, f32/bf16/f16, on the CPU. Errors: an unsupported block size or dtype.
inline Quantized4bit quantize_4bit(const Tensor& W, const Quantize4bitOptions& opt = {}, const std::string& name = "weight") {
  GALVANI_CHECK(valid_4bit_blocksize(opt.blocksize), "quantize_4bit(", name, "): blocksize ", opt.blocksize,
                " is not one bitsandbytes accepts (32, 64, 128, 256, 512, 1024, 2048, 4096)");
  GALVANI_CHECK(W.device().is_cpu(), "quantize_4bit(", name, "): the CPU quantizer needs a CPU tensor, got ", W.device().str());
  const Tensor x = W.contiguous();
  const int64_t n = x.numel();
  Quantized4bit q;
  QuantState4bit& st = q.state;
  st.quant_type = opt.quant_type;
  st.blocksize = opt.blocksize;
  st.dtype = W.dtype();
  st.shape = W.shape();
  (void)torch_dtype_name(st.dtype);  // rejects non-float dtypes with a clear error
  st.code = code4_table(opt.quant_type);
  q.packed = Tensor::empty({(n + 1) / 2, 1}, DType::u8);
  Tensor absmax = Tensor::empty({num_blocks(n, opt.blocksize)}, DType::f32);
  uint8_t* packed = q.packed.data<uint8_t>();
  float* am = absmax.data<float>();
  switch (x.dtype()) {
    case DType::f32: quantize_4bit_array(x.data<float>(), n, opt.blocksize, opt.quant_type, packed, am); break;
    case DType::bf16: quantize_4bit_array(x.data<bf16>(), n, opt.blocksize, opt.quant_type, packed, am); break;
    case DType::f16: quantize_4bit_array(x.data<f16>(), n, opt.blocksize, opt.quant_type, packed, am); break;
    case DType::f64: quantize_4bit_array(x.data<double>(), n, opt.blocksize, opt.quant_type, packed, am); break;
    default: throw Error(galvani::detail::cat("quantize_4bit(", name, "): dtype ", dtype_name(x.dtype()), " is not a float dtype"));
  }
  if (!opt.double_quant) {
    st.absmax = absmax;
    return q;
  }
  // Double quantization (bnb's quantize_4bit, compress_statistics=True):
  //   offset = absmax.mean(); qabsmax, state2 = quantize_blockwise(absmax - offset, blocksize=256)
  st.nested = true;
  NestedAbsmax nested = double_quantize_absmax(am, absmax.numel(), opt.nested_rounding);
  st.offset = nested.offset;
  st.absmax = Tensor::from_vector(nested.codes, {absmax.numel()});
  st.nested_absmax = Tensor::from_vector(nested.nested_absmax, {int64_t(nested.nested_absmax.size())});
  st.nested_code = Tensor::from_vector(dynamic_map(), {256});
  return q;
}

// bnb's F.dequantize_4bit(packed, state): W' (state.shape) = value(code) * absmax, computed in
// float32 and cast to `out_dtype` (default: the state's dtype, as bnb does).
inline Tensor dequantize_4bit(const Tensor& packed, const QuantState4bit& st, std::optional<DType> out_dtype = std::nullopt) {
  const int64_t n = st.numel();
  GALVANI_CHECK(packed.dtype() == DType::u8 && packed.numel() == (n + 1) / 2, "dequantize_4bit: packed has ",
                packed.numel(), " bytes (", dtype_name(packed.dtype()), "), the shape ", shape_str(st.shape), " needs ",
                (n + 1) / 2);
  const Tensor p = packed.contiguous();
  const uint8_t* bytes = p.data<uint8_t>();
  const std::vector<float> am = st.absmax_f32();
  Tensor out = Tensor::empty(st.shape, out_dtype.value_or(st.dtype));
  visit_dtype(out.dtype(), "dequantize_4bit", [&]<class T>() {
    T* o = out.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float v = dequantize_code4(st.quant_type, nibble_at(bytes, i), am[size_t(block_of(i, st.blocksize))]);
      if constexpr (std::is_same_v<T, float>) o[i] = v;
      else o[i] = T(v);
    }
  });
  return out;
}

}  // namespace galvani::quant
