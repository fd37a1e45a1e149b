// core/dtype.hpp — element types and the conversions between them.
//
// f32 is the working type on the CPU, f64 exists for gradient checks, bf16/f16
// are how real checkpoints arrive (Mistral-7B ships bf16), i32/i64 hold token
// ids, u8 holds packed NF4 nibbles and quantized optimizer states.
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

#include "error.hpp"

namespace galvani {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, u8 };

// bfloat16: the top 16 bits of an IEEE float32 (8 exponent bits, 7 mantissa bits).
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  explicit bf16(float f) : bits(from_float(f)) {}
  explicit operator float() const { return std::bit_cast<float>(uint32_t(bits) << 16); }
  // Round to nearest, ties to even, as torch's .to(torch.bfloat16) does.
  static uint16_t from_float(float f) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
    uint32_t lsb = (u >> 16) & 1u;
    u += 0x7fffu + lsb;
    return uint16_t(u >> 16);
  }
};

// IEEE half: 5 exponent bits, 10 mantissa bits, subnormals below 2^-14.
struct f16 {
  uint16_t bits = 0;
  f16() = default;
  explicit f16(float f) : bits(from_float(f)) {}
  explicit operator float() const { return to_float(bits); }

  static uint16_t from_float(float f) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);          // NaN
    if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);         // overflow (incl. rounding) -> inf
    if (a < 0x38800000u) {                                         // below 2^-14: subnormal or zero
      // Add 0.5 (as a float) so the FPU's own round-to-nearest-even does the work.
      float r = std::bit_cast<float>(a) + 0.5f;
      return uint16_t(sign | (std::bit_cast<uint32_t>(r) - 0x3f000000u));
    }
    uint32_t mant_odd = (a >> 13) & 1u;
    a += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round to nearest even
    return uint16_t(sign | (a >> 13));
  }
  static float to_float(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {  // zero or subnormal: mant * 2^-24
      float v = float(mant) * 5.9604644775390625e-8f;
      return sign ? -v : v;
    }
    return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
  }
};

inline size_t itemsize(DType t) {
  switch (t) {
    case DType::f32: case DType::i32: return 4;
    case DType::f64: case DType::i64: return 8;
    case DType::bf16: case DType::f16: return 2;
    case DType::u8: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::u8: return "u8";
  }
  return "?";
}

inline bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::bf16 || t == DType::f16;
}

// The C++ type behind each DType, both ways.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <class T> inline constexpr DType dtype_v = dtype_of<T>::value;

// Call f.template operator()<T>() with the C++ type of `t`. `op` names the
// caller in the error when the dtype is not one the caller supports.
template <class F>
decltype(auto) visit_dtype(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    case DType::bf16: return f.template operator()<bf16>();
    case DType::f16: return f.template operator()<f16>();
    case DType::i32: return f.template operator()<int32_t>();
    case DType::i64: return f.template operator()<int64_t>();
    case DType::u8: return f.template operator()<uint8_t>();
  }
  throw Error(detail::cat(op, ": unknown dtype"));
}

// Only the types CPU math kernels are written for: f32 (work) and f64 (gradient checks).
template <class F>
decltype(auto) visit_float(DType t, const char* op, F&& f) {
  if (t == DType::f32) return f.template operator()<float>();
  if (t == DType::f64) return f.template operator()<double>();
  throw Error(detail::cat(op, ": expected a f32 or f64 tensor, got ", dtype_name(t),
                          " (convert with .to(DType::f32))"));
}

// Integer index types (token ids, labels).
template <class F>
decltype(auto) visit_index(DType t, const char* op, F&& f) {
  if (t == DType::i64) return f.template operator()<int64_t>();
  if (t == DType::i32) return f.template operator()<int32_t>();
  throw Error(detail::cat(op, ": expected an i32 or i64 index tensor, got ", dtype_name(t)));
}

// Scalar conversion between any two element types (through float for bf16/f16).
template <class To, class From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, From>) return v;
  else if constexpr (std::is_same_v<From, bf16> || std::is_same_v<From, f16>) return convert<To>(float(v));
  else if constexpr (std::is_same_v<To, bf16> || std::is_same_v<To, f16>) return To(float(v));
  else return static_cast<To>(v);
}

}  // namespace galvani
