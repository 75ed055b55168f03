// Advanced indexing: gather rows at precomputed element offsets, scatter into them (assign, or
// accumulate with atomicAdd for index_add). A "row" is the block of trailing dims the index leaves
// whole, walked through the inner iteration space (operand 0: the packed side, operand 1: the array side).
#include "kd_common.cuh"

namespace {

using kd::Offsets;

template <typename T, typename I>
__global__ void gather_kernel(T *out, const T *src, const int64_t *offsets, int64_t rows, I inner,
                              Offsets<I, 2> offs) {
  const int64_t n = rows * (int64_t)inner;
  KD_GRID_STRIDE(i, n) {
    int64_t r = i / inner;
    I o[2];
    offs.get((I)(i - r * inner), o);
    out[r * inner + o[0]] = src[offsets[r] + o[1]];
  }
}

// The common case (an embedding lookup, x[idx] of a contiguous array): each row is one contiguous run on both
// sides. A block per row walks it with unit stride, no per-element division (the general kernels do two), in
// 16-byte vectors where the row's start allows (checked per row on the device: the offsets live there).
template <typename T>
__global__ void gather_rows_kernel(T *out, const T *src, const int64_t *offsets, int64_t rows, int64_t inner,
                                   bool vectors) {
  constexpr int W = 16 / sizeof(T);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *s = src + offsets[r];
    T *o = out + r * inner;
    if (vectors && reinterpret_cast<uintptr_t>(s) % 16 == 0) {
      const int4 *sv = reinterpret_cast<const int4 *>(s);
      int4 *ov = reinterpret_cast<int4 *>(o);
      for (int64_t j = threadIdx.x; j < inner / W; j += blockDim.x) ov[j] = sv[j];
    } else {
      for (int64_t j = threadIdx.x; j < inner; j += blockDim.x) o[j] = s[j];
    }
  }
}

__device__ __forceinline__ void atomic_add(float *p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double *p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int64_t *p, int64_t v) {
  // Two's complement addition is the same on unsigned words.
  atomicAdd(reinterpret_cast<unsigned long long *>(p), (unsigned long long)v);
}
__device__ __forceinline__ void atomic_add(uint8_t *, uint8_t) {}

template <typename T, typename I, bool ACCUMULATE>
__global__ void scatter_kernel(T *dst, const int64_t *offsets, const T *values, int64_t rows, I inner,
                               Offsets<I, 2> offs) {
  const int64_t n = rows * (int64_t)inner;
  KD_GRID_STRIDE(i, n) {
    int64_t r = i / inner;
    I o[2];
    offs.get((I)(i - r * inner), o);
    T v = values[r * inner + o[0]];
    if (ACCUMULATE) atomic_add(dst + offsets[r] + o[1], v);
    else dst[offsets[r] + o[1]] = v;
  }
}

template <typename T, bool ACCUMULATE>
__global__ void scatter_rows_kernel(T *dst, const int64_t *offsets, const T *values, int64_t rows, int64_t inner) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    T *d = dst + offsets[r];
    const T *v = values + r * inner;
    for (int64_t j = threadIdx.x; j < inner; j += blockDim.x) {
      if (ACCUMULATE) atomic_add(d + j, v[j]);
      else d[j] = v[j];
    }
  }
}

// Whether the collapsed inner iteration is one unit-stride run on both sides.
bool contiguous_rows(const kd_iter &c) {
  return c.ndim == 1 && c.strides[0][0] == 1 && c.strides[1][0] == 1;
}

unsigned row_grid(int64_t rows) { return (unsigned)std::min<int64_t>(rows, 65535 * 8); }
int row_threads(int64_t per_row) { return (int)std::min<int64_t>(kd::kThreads, std::max<int64_t>(32, per_row)); }

kd_iter inner_iter(const kd_iter *it) {
  kd_iter c{};
  if (it) {
    c = *it;
  } else {
    c.ndim = 1;
    c.shape[0] = 1;
  }
  c.noperands = 2;
  kd::collapse(c);
  return c;
}

int64_t iter_size(const kd_iter &c) {
  int64_t n = 1;
  for (int d = 0; d < c.ndim; ++d) n *= c.shape[d];
  return n;
}

}  // namespace

extern "C" int kd_gather(int dtype, void *out, const void *src, const int64_t *offsets, int64_t rows,
                         const kd_iter *inner_it) {
  kd_iter c = inner_iter(inner_it);
  int64_t inner = iter_size(c);
  int64_t n = rows * inner;
  if (n == 0) return KD_OK;
  if (contiguous_rows(c)) {
    KD_DISPATCH_ALL(dtype, "gather",
      auto *o = static_cast<scalar_t *>(out); auto *s = static_cast<const scalar_t *>(src);
      constexpr int64_t w = 16 / (int64_t)sizeof(scalar_t);
      const bool vectors = w > 1 && inner % w == 0 && reinterpret_cast<uintptr_t>(o) % 16 == 0;
      kd::launch(gather_rows_kernel<scalar_t>, row_grid(rows), row_threads(vectors ? inner / w : inner), o, s,
                 offsets, rows, inner, vectors));
    return kd::check_launch("gather");
  }
  bool small = kd::fits_int32(c);
  KD_DISPATCH_ALL(dtype, "gather",
    auto *o = static_cast<scalar_t *>(out); auto *s = static_cast<const scalar_t *>(src);
    if (small) kd::launch(gather_kernel<scalar_t, int32_t>, kd::grid_for(n), kd::kThreads, o, s, offsets,
                          rows, (int32_t)inner, Offsets<int32_t, 2>(c));
    else kd::launch(gather_kernel<scalar_t, int64_t>, kd::grid_for(n), kd::kThreads, o, s, offsets, rows,
                    inner, Offsets<int64_t, 2>(c)));
  return kd::check_launch("gather");
}

extern "C" int kd_scatter(int dtype, void *dst, const int64_t *offsets, const void *values, int64_t rows,
                          const kd_iter *inner_it, int accumulate) {
  kd_iter c = inner_iter(inner_it);
  int64_t inner = iter_size(c);
  int64_t n = rows * inner;
  if (n == 0) return KD_OK;
  if (accumulate && dtype == KD_BOOL) return kd::fail(KD_ERR_DTYPE, "index_add: bool cannot be accumulated");
  if (contiguous_rows(c)) {
    KD_DISPATCH_ALL(dtype, "scatter",
      auto *d = static_cast<scalar_t *>(dst); auto *v = static_cast<const scalar_t *>(values);
      if (accumulate) kd::launch(scatter_rows_kernel<scalar_t, true>, row_grid(rows), row_threads(inner), d,
                                 offsets, v, rows, inner);
      else kd::launch(scatter_rows_kernel<scalar_t, false>, row_grid(rows), row_threads(inner), d, offsets, v,
                      rows, inner));
    return kd::check_launch("scatter");
  }
  bool small = kd::fits_int32(c);
  KD_DISPATCH_ALL(dtype, "scatter",
    auto *d = static_cast<scalar_t *>(dst); auto *v = static_cast<const scalar_t *>(values);
    if (accumulate) {
      if (small) kd::launch(scatter_kernel<scalar_t, int32_t, true>, kd::grid_for(n), kd::kThreads, d,
                            offsets, v, rows, (int32_t)inner, Offsets<int32_t, 2>(c));
      else kd::launch(scatter_kernel<scalar_t, int64_t, true>, kd::grid_for(n), kd::kThreads, d, offsets, v,
                      rows, inner, Offsets<int64_t, 2>(c));
    } else {
      if (small) kd::launch(scatter_kernel<scalar_t, int32_t, false>, kd::grid_for(n), kd::kThreads, d,
                            offsets, v, rows, (int32_t)inner, Offsets<int32_t, 2>(c));
      else kd::launch(scatter_kernel<scalar_t, int64_t, false>, kd::grid_for(n), kd::kThreads, d, offsets, v,
                      rows, inner, Offsets<int64_t, 2>(c));
    });
  return kd::check_launch("scatter");
}

// Element offsets of a[..., idx, ...] for one int64 index array on axis `dim`, computed on the device so an
// index that lives there is never read back: offsets[p * n_idx + j] = base + outer(p) + wrap(idx[j]) * stride,
// p walking the axes before `dim` (outer_it: operand 1 holds their strides in `a`). An index outside
// [-dim_size, dim_size) records a fault (raised by the host at its next synchronisation) and reads row 0.
namespace {

__global__ void index_offsets_kernel(int64_t *offsets, const int64_t *idx, int64_t n_idx, int64_t dim_size,
                                     int64_t dim_stride, int64_t base, int64_t total, Offsets<int64_t, 2> outer,
                                     kd_fault *fault, int64_t ticket) {
  KD_GRID_STRIDE(i, total) {
    int64_t p = i / n_idx, j = i - p * n_idx;
    int64_t o[2];
    outer.get(p, o);
    int64_t v = idx[j];
    int64_t w = v < 0 ? v + dim_size : v;
    if (w < 0 || w >= dim_size) {
      kd::record_fault(fault, ticket, j, v);
      w = 0;
    }
    offsets[i] = base + o[1] + w * dim_stride;
  }
}

}  // namespace

extern "C" int kd_index_offsets(int64_t *offsets, const int64_t *idx, int64_t n_idx, int64_t dim_size,
                                int64_t dim_stride, int64_t base, int64_t outer, const kd_iter *outer_it,
                                kd_fault *fault, int64_t ticket) {
  if (n_idx < 0 || outer < 0 || dim_size < 0) return kd::fail(KD_ERR_ARGUMENT, "index_offsets: negative size");
  int64_t total = outer * n_idx;
  if (total == 0) return KD_OK;
  if (!offsets || !idx) return kd::fail(KD_ERR_ARGUMENT, "index_offsets: null pointer");
  kd_iter c = inner_iter(outer_it);
  kd::launch(index_offsets_kernel, kd::grid_for(total), kd::kThreads, offsets, idx, n_idx, dim_size, dim_stride,
             base, total, Offsets<int64_t, 2>(c), fault, ticket);
  return kd::check_launch("index_offsets");
}
