// The CUDA NF4 kernels' index logic (kernels/nf4_tiling.hpp), run on the CPU for every thread of
// a block: GEMV lanes summed, GEMM tiles assembled, and compared with galvani's CPU quantizer
// and dequantizer. This runs in every CI build, GPU or not; tests/cuda/test_nf4_cuda.cu runs the
// kernels themselves where a GPU is present.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <galvani/quant/quantize_4bit.hpp>

#include "../kernels/nf4_tiling.hpp"

using namespace galvani;
using namespace galvani::kernels;

namespace {

struct Quantized {
  quant::Quantized4bit q;
  std::vector<float> absmax;  // f32, un-nested
  std::vector<float> dense;   // dequantize_4bit, f32 (N, K)
  std::vector<float> lut;
  Nf4Weight view;
};

Quantized quantize(int64_t N, int64_t K, int64_t bs, quant::QuantType qt, bool nested, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> w(size_t(N * K));
  for (float& v : w) v = normal(rng);
  Quantized out;
  quant::Quantize4bitOptions opt;
  opt.blocksize = bs;
  opt.quant_type = qt;
  opt.double_quant = nested;
  out.q = quant::quantize_4bit(Tensor::from_vector(w, {N, K}), opt);
  out.absmax = out.q.state.absmax_f32();
  const Tensor dense = quant::dequantize_4bit(out.q.packed, out.q.state, DType::f32);
  out.dense.assign(dense.data<float>(), dense.data<float>() + N * K);
  for (int i = 0; i < 16; ++i) out.lut.push_back(quant::code4_value(qt, uint8_t(i)));
  out.view = Nf4Weight{out.q.packed.data<uint8_t>(), out.absmax.data(), N, K, bs, qt};
  return out;
}

struct WeightCase {
  int64_t N, K, bs;
  quant::QuantType qt;
  bool nested;
};
// K % 8 != 0 (the GEMV's element path), blocks straddling rows, N and K off the 64/32 tiles,
// a block larger than the weight, FP4, odd K (rows starting mid-byte) and an odd N·K.
const WeightCase kShapes[] = {{1, 64, 64, quant::QuantType::nf4, false},   {5, 100, 64, quant::QuantType::nf4, true},
                         {37, 96, 128, quant::QuantType::fp4, false}, {70, 200, 64, quant::QuantType::nf4, true},
                         {9, 1000, 4096, quant::QuantType::nf4, true}, {3, 8, 32, quant::QuantType::nf4, false},
                         {7, 33, 32, quant::QuantType::nf4, true},      {3, 9, 32, quant::QuantType::fp4, false}};

}  // namespace

TEST_CASE("nf4_weight_at is the CPU dequantizer's value, 0 outside the weight", "[cuda][nf4]") {
  for (const WeightCase& s : kShapes) {
    const Quantized w = quantize(s.N, s.K, s.bs, s.qt, s.nested, uint32_t(s.N + s.K));
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t k = 0; k < s.K; ++k) {
        const float got = nf4_weight_at(w.view, w.lut.data(), n, k);
        REQUIRE(std::memcmp(&got, &w.dense[size_t(n * s.K + k)], 4) == 0);
      }
    CHECK(nf4_weight_at(w.view, w.lut.data(), s.N, 0) == 0.0f);
    CHECK(nf4_weight_at(w.view, w.lut.data(), 0, s.K) == 0.0f);
  }
}

TEST_CASE("the GEMV's 32 lanes cover each row once and sum to x · Ŵᵀ", "[cuda][nf4]") {
  for (const WeightCase& s : kShapes) {
    const Quantized w = quantize(s.N, s.K, s.bs, s.qt, s.nested, uint32_t(s.N * 3 + s.K));
    constexpr int MR = 4;
    const int mrows = 3;  // fewer than MR: the kernel's last pass over M
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(size_t(mrows * s.K));
    for (float& v : x) v = normal(rng);
    INFO("shape [" << s.N << ", " << s.K << "] blocksize " << s.bs << (nf4_gemv_fast_path(s.K) ? " (word path)" : " (element path)"));
    for (int64_t n = 0; n < s.N; ++n) {
      std::vector<int> visits(size_t(mrows * s.K), 0);
      float total[MR] = {};
      for (int lane = 0; lane < 32; ++lane) {
        float acc[MR] = {};
        nf4_gemv_lane<MR>(lane, 32, w.view, w.lut.data(), n, mrows,
                          [&](int m, int64_t k) {
                            REQUIRE(m < mrows);
                            REQUIRE(k < s.K);
                            ++visits[size_t(m * s.K + k)];
                            return x[size_t(m * s.K + k)];
                          },
                          acc);
        for (int m = 0; m < MR; ++m) total[m] += acc[m];
      }
      for (int v : visits) REQUIRE(v == 1);
      for (int m = 0; m < mrows; ++m) {
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < s.K; ++k) {
          const double t = double(x[size_t(m * s.K + k)]) * w.dense[size_t(n * s.K + k)];
          ref += t, mag += std::fabs(t);
        }
        REQUIRE(std::fabs(total[m] - ref) <= 1e-5 * mag + 1e-30);
      }
      CHECK(total[MR - 1] == 0.0f);  // rows past mrows are left alone
    }
  }
}

TEST_CASE("the GEMM's tile loaders fill every tile element once, from the right place", "[cuda][nf4]") {
  for (const WeightCase& s : kShapes) {
    const Quantized w = quantize(s.N, s.K, s.bs, s.qt, s.nested, uint32_t(s.N * 5 + s.K));
    INFO("shape [" << s.N << ", " << s.K << "] blocksize " << s.bs);
    for (bool forward : {true, false}) {
      // B(r, c) = Ŵ(c, r) forward (R = K, NC = N), Ŵ(r, c) for the input gradient (R = N, NC = K).
      const int64_t R = forward ? s.K : s.N, NC = forward ? s.N : s.K;
      for (int64_t r0 = 0; r0 < R; r0 += kTileK)
        for (int64_t c0 = 0; c0 < NC; c0 += kTileN) {
          std::vector<float> tile(kTileK * kTileN, -1.0f);
          std::vector<int> visits(kTileK * kTileN, 0);
          for (int tid = 0; tid < kGemmThreads; ++tid)
            gemm_load_b_tile(tid, forward, w.view, w.lut.data(), r0, c0, [&](int i, int j, float v) {
              REQUIRE((i >= 0 && i < kTileK && j >= 0 && j < kTileN));
              tile[size_t(i * kTileN + j)] = v;
              ++visits[size_t(i * kTileN + j)];
            });
          for (int i = 0; i < kTileK; ++i)
            for (int j = 0; j < kTileN; ++j) {
              REQUIRE(visits[size_t(i * kTileN + j)] == 1);
              const int64_t r = r0 + i, c = c0 + j;
              const float want = (r < R && c < NC) ? w.dense[size_t(forward ? c * s.K + r : r * s.K + c)] : 0.0f;
              REQUIRE(tile[size_t(i * kTileN + j)] == want);
            }
        }
    }
  }
  // The A tile: a 70 × 45 input, tiles at the corners.
  const int64_t M = 70, R = 45;
  std::vector<float> A(size_t(M * R));
  for (size_t i = 0; i < A.size(); ++i) A[i] = float(i + 1);
  for (int64_t m0 = 0; m0 < M; m0 += kTileM)
    for (int64_t r0 = 0; r0 < R; r0 += kTileK) {
      std::vector<float> tile(kTileM * kTileK, -1.0f);
      std::vector<int> visits(kTileM * kTileK, 0);
      for (int tid = 0; tid < kGemmThreads; ++tid)
        gemm_load_a_tile(
            tid, m0, r0, M, R,
            [&](int64_t m, int64_t r) {
              REQUIRE((m < M && r < R));
              return A[size_t(m * R + r)];
            },
            [&](int i, int j, float v) {
              tile[size_t(i * kTileK + j)] = v;
              ++visits[size_t(i * kTileK + j)];
            });
      for (int i = 0; i < kTileM; ++i)
        for (int j = 0; j < kTileK; ++j) {
          REQUIRE(visits[size_t(i * kTileK + j)] == 1);
          const int64_t m = m0 + i, r = r0 + j;
          REQUIRE(tile[size_t(i * kTileK + j)] == ((m < M && r < R) ? A[size_t(m * R + r)] : 0.0f));
        }
    }
}

TEST_CASE("the GEMM's thread and warp tiles cover the block tile once; the grid covers the output", "[cuda][nf4]") {
  std::vector<int> simt(kTileM * kTileN, 0), warps(kTileM * kTileN, 0);
  for (int tid = 0; tid < kGemmThreads; ++tid)
    for (int i = 0; i < kSimtRows; ++i)
      for (int j = 0; j < kSimtCols; ++j) ++simt[size_t((simt_row0(tid) + i) * kTileN + simt_col0(tid) + j)];
  for (int warp = 0; warp < kGemmThreads / 32; ++warp)
    for (int i = 0; i < 32; ++i)
      for (int j = 0; j < 32; ++j) ++warps[size_t((wmma_warp_row0(warp) + i) * kTileN + wmma_warp_col0(warp) + j)];
  for (int v : simt) REQUIRE(v == 1);
  for (int v : warps) REQUIRE(v == 1);
  CHECK(gemm_grid_x(1) == 1);
  CHECK(gemm_grid_x(64) == 1);
  CHECK(gemm_grid_x(65) == 2);
  CHECK(gemm_grid_y(130) == 3);
}

TEST_CASE("load_word reads four bytes little-endian, as the GPU's 32-bit load does", "[cuda][nf4]") {
  const uint8_t bytes[4] = {0x12, 0x34, 0x56, 0x78};
  CHECK(load_word(bytes) == 0x78563412u);
}
