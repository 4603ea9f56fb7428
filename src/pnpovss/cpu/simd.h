// Vectors for the CPU kernels (Dense CRF, fused attention, blur), with GCC/Clang vector
// extensions: VectorOf<T, W> holds W values of T; Vec<W> holds W floats (4: SSE2, 8: AVX2,
// 16: AVX-512) and the matching int32 lanes. The helpers are always
// inlined, so they take the instruction set of the function they are inlined into (the kernels
// compile one entry point per width with __attribute__((target(...))) and choose at run time).
// Files that include this compile with -Wno-psabi: GCC notes the calling convention of wide
// vectors, which never cross a call here.
#pragma once

#include <cstdint>
#include <cstring>

#define PNPOVSS_INLINE inline __attribute__((always_inline))
#define PNPOVSS_UNROLL _Pragma("GCC unroll 16")

namespace pnpovss::cpu::simd {

// What this CPU runs, asked once: AVX2; AVX2 with FMA; AVX-512F (which brings FMA).
inline bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
inline bool cpu_has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
inline bool cpu_has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

template <typename T, int W>
struct VectorType {
  typedef T type __attribute__((vector_size(sizeof(T) * W)));
};
template <typename T, int W>
using VectorOf = typename VectorType<T, W>::type;

template <int W>
struct Vec {
  using F = VectorOf<float, W>;
  using I = VectorOf<int32_t, W>;
};

template <int W>
PNPOVSS_INLINE typename Vec<W>::F load(const float* p) {
  typename Vec<W>::F v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <int W>
PNPOVSS_INLINE void store(float* p, const typename Vec<W>::F& v) {
  std::memcpy(p, &v, sizeof v);
}

template <int W>
PNPOVSS_INLINE typename Vec<W>::F splat_value(float x) {
  typename Vec<W>::F v = {};
  return v + x;
}

// Eigen 3.3's SSE pexp (the Dense CRF reference's softmax applies it to each whole packet of
// four labels): Cephes range reduction and polynomial, within 2 ulp, clamped to +-88.376 (2^n
// underflows to 0 at the low end). SSE2 has no floor, so it truncates and corrects, as here.
// Lane-wise, so any vector width gives the same values (as long as the caller's target does not
// fuse multiply-adds).
// Its constants (also used by the tensor CRF's element-wise copy of it, crf/tensor_crf.cpp).
struct PacketExp {
  static constexpr float kHigh = 88.3762626647950f, kLow = -88.3762626647949f;
  static constexpr float kLog2e = 1.44269504088896341f;
  static constexpr float kLn2High = 0.693359375f, kLn2Low = -2.12194440e-4f;  // ln 2 = high - low
  // The polynomial, highest degree first.
  static constexpr float kPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                     4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
};

template <int W>
PNPOVSS_INLINE typename Vec<W>::F packet_exp(typename Vec<W>::F x) {
  using F = typename Vec<W>::F;
  using I = typename Vec<W>::I;
  using C = PacketExp;
  const F hi = splat_value<W>(C::kHigh), lo = splat_value<W>(C::kLow);
  x = x < hi ? x : hi;
  x = x > lo ? x : lo;
  const F t = x * C::kLog2e + 0.5f;
  F n = __builtin_convertvector(__builtin_convertvector(t, I), F);
  n = n > t ? n - 1.0f : n;
  x = x - n * C::kLn2High;
  x = x - n * C::kLn2Low;
  const F z = x * x;
  F y = splat_value<W>(C::kPoly[0]);
  PNPOVSS_UNROLL
  for (int k = 1; k < 6; ++k) y = y * x + C::kPoly[k];
  y = y * z + x;
  y = y + 1.0f;
  const I bits = (__builtin_convertvector(n, I) + 127) << 23;
  F scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

}  // namespace pnpovss::cpu::simd
