// Counter-based random numbers: Philox4x32-10 keyed by the 64-bit seed, one counter per group of outputs
// (4 floats or 2 doubles), so element i's value depends only on (seed, i), never on the launch shape.
#include "kd_common.cuh"

namespace {

struct U4 {
  uint32_t x, y, z, w;
};

__device__ __forceinline__ U4 philox(uint64_t counter, uint64_t seed) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  U4 c{(uint32_t)counter, (uint32_t)(counter >> 32), 0u, 0u};
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0 = __umulhi(M0, c.x), lo0 = M0 * c.x;
    uint32_t hi1 = __umulhi(M1, c.z), lo1 = M1 * c.z;
    c = U4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
    k0 += W0;
    k1 += W1;
  }
  return c;
}

// Uniform in [0, 1): 24 random bits for float, 53 for double.
__device__ __forceinline__ float unit_float(uint32_t x) { return (x >> 8) * (1.0f / 16777216.0f); }
__device__ __forceinline__ double unit_double(uint32_t hi, uint32_t lo) {
  uint64_t bits = ((uint64_t)hi << 21) ^ (uint64_t)(lo >> 11);
  return (double)(bits & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

// Fills `per` consecutive unit uniforms of group g (per = 4 for float, 2 for double).
template <typename T>
__device__ __forceinline__ void unit_group(uint64_t g, uint64_t seed, T (&u)[4]) {
  U4 r = philox(g, seed);
  if constexpr (std::is_same<T, float>::value) {
    u[0] = unit_float(r.x);
    u[1] = unit_float(r.y);
    u[2] = unit_float(r.z);
    u[3] = unit_float(r.w);
  } else {
    u[0] = unit_double(r.x, r.y);
    u[1] = unit_double(r.z, r.w);
  }
}

template <typename T>
__host__ __device__ constexpr int per_group() {
  return std::is_same<T, float>::value ? 4 : 2;
}

// KIND: 0 uniform(low=a, high=b), 1 normal(mean=a, std=b), 2 dropout mask(p=a, scale=b)
template <typename T, int KIND>
__global__ void random_kernel(T *out, int64_t n, double a, double b, uint64_t seed) {
  constexpr int P = per_group<T>();
  const int64_t groups = (n + P - 1) / P;
  KD_GRID_STRIDE(g, groups) {
    T u[4];
    unit_group<T>((uint64_t)g, seed, u);
    T v[4];
    if constexpr (KIND == 0) {
#pragma unroll
      for (int j = 0; j < P; ++j) v[j] = T(a + (b - a) * u[j]);
    } else if constexpr (KIND == 1) {
      // Box-Muller on pairs; 1 - u keeps the log argument in (0, 1].
#pragma unroll
      for (int j = 0; j < P; j += 2) {
        T radius = sqrt(T(-2) * log(T(1) - u[j]));
        T angle = T(6.283185307179586) * u[j + 1];
        v[j] = T(a + b * radius * cos(angle));
        v[j + 1] = T(a + b * radius * sin(angle));
      }
    } else {
#pragma unroll
      for (int j = 0; j < P; ++j) v[j] = u[j] >= T(a) ? T(b) : T(0);
    }
    const int64_t base = g * P;
#pragma unroll
    for (int j = 0; j < P; ++j)
      if (base + j < n) out[base + j] = v[j];
  }
}

template <int KIND>
int launch_random(int dtype, void *out, int64_t n, double a, double b, uint64_t seed, const char *op) {
  if (n == 0) return KD_OK;
  KD_DISPATCH_FLOAT(dtype, op,
    constexpr int P = per_group<scalar_t>();
    kd::launch(random_kernel<scalar_t, KIND>, kd::grid_for((n + P - 1) / P), kd::kThreads,
               static_cast<scalar_t *>(out), n, a, b, seed));
  return kd::check_launch(op);
}

}  // namespace

extern "C" int kd_uniform(int dtype, void *out, int64_t n, double low, double high, uint64_t seed) {
  return launch_random<0>(dtype, out, n, low, high, seed, "uniform");
}

extern "C" int kd_normal(int dtype, void *out, int64_t n, double mean, double std, uint64_t seed) {
  return launch_random<1>(dtype, out, n, mean, std, seed, "normal");
}

extern "C" int kd_dropout_mask(int dtype, void *out, int64_t n, double p, uint64_t seed) {
  // keep with probability 1 - p; p == 1 drops everything (scale unused)
  double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  return launch_random<2>(dtype, out, n, p, scale, seed, "dropout_mask");
}
