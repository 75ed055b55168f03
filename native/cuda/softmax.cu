// Softmax and log-softmax over the middle axis of a contiguous (outer, k, inner) array, and the fused
// softmax cross-entropy forward/backward on (N, C) logits. Rows (inner == 1) get a warp each when short and
// a block each when long; columns get a thread per (outer, inner). Max-shifted, so stable.
#include "kd_common.cuh"

namespace {

template <typename T>
using Acc = typename kd::AccOf<T>::type;

// GROUP threads reduce over a row: a warp (GROUP 32, kThreads/32 rows per block) or the whole block.
template <int GROUP, typename A>
__device__ __forceinline__ A group_max(A v) {
  if constexpr (GROUP == 32) return kd::warp_max(v);
  else return kd::block_max(v);
}
template <int GROUP, typename A>
__device__ __forceinline__ A group_sum(A v) {
  if constexpr (GROUP == 32) return kd::warp_sum(v);
  else return kd::block_sum(v);
}

// Returns (max, sum of exp(x - max)) of row x[0..k) to every thread of the group.
template <int GROUP, typename T>
__device__ __forceinline__ void row_stats(const T *x, int64_t k, int lane, Acc<T> &m, Acc<T> &s) {
  using A = Acc<T>;
  A mx = -INFINITY;
  for (int64_t j = lane; j < k; j += GROUP) mx = kd::nan_max(mx, (A)x[j]);
  m = group_max<GROUP>(mx);
  A sum = 0;
  for (int64_t j = lane; j < k; j += GROUP) sum += kd::fast_exp((A)x[j] - m);
  s = group_sum<GROUP>(sum);
}

template <int GROUP>
__device__ __forceinline__ void row_position(int64_t &row, int &lane) {
  if constexpr (GROUP == 32) {
    row = blockIdx.x * (int64_t)(kd::kThreads / 32) + (threadIdx.x >> 5);
    lane = threadIdx.x & 31;
  } else {
    row = blockIdx.x;
    lane = threadIdx.x;
  }
}

template <typename T, int GROUP, bool LOG>
__global__ void softmax_rows(T *out, const T *in, int64_t rows, int64_t k) {
  int64_t row;
  int lane;
  row_position<GROUP>(row, lane);
  if (GROUP == 32 && row >= rows) return;  // whole warps leave together; blocks never overrun
  const T *x = in + row * k;
  T *y = out + row * k;
  Acc<T> m, s;
  row_stats<GROUP>(x, k, lane, m, s);
  if (LOG) {
    Acc<T> shift = m + kd::fast_log(s);
    for (int64_t j = lane; j < k; j += GROUP) y[j] = T((Acc<T>)x[j] - shift);
  } else {
    Acc<T> inv = Acc<T>(1) / s;
    for (int64_t j = lane; j < k; j += GROUP) y[j] = T(kd::fast_exp((Acc<T>)x[j] - m) * inv);
  }
}

template <typename T, bool LOG>
__global__ void softmax_columns(T *out, const T *in, int64_t outer, int64_t k, int64_t inner) {
  using A = Acc<T>;
  const int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (idx >= outer * inner) return;
  const int64_t o = idx / inner, i = idx - o * inner;
  const T *x = in + o * k * inner + i;
  T *y = out + o * k * inner + i;
  A m = -INFINITY, s = 0;
  for (int64_t j = 0; j < k; ++j) m = kd::nan_max(m, (A)x[j * inner]);
  for (int64_t j = 0; j < k; ++j) s += kd::fast_exp((A)x[j * inner] - m);
  if (LOG) {
    A shift = m + kd::fast_log(s);
    for (int64_t j = 0; j < k; ++j) y[j * inner] = T((A)x[j * inner] - shift);
  } else {
    A inv = A(1) / s;
    for (int64_t j = 0; j < k; ++j) y[j * inner] = T(kd::fast_exp((A)x[j * inner] - m) * inv);
  }
}

template <typename T, int GROUP>
__global__ void xent_forward(T *loss, T *probs, const T *logits, const int64_t *labels, int64_t n,
                             int64_t c, kd_fault *fault, int64_t ticket) {
  int64_t row;
  int lane;
  row_position<GROUP>(row, lane);
  if (GROUP == 32 && row >= n) return;
  const T *x = logits + row * c;
  T *p = probs + row * c;
  Acc<T> m, s;
  row_stats<GROUP>(x, c, lane, m, s);
  Acc<T> inv = Acc<T>(1) / s;
  for (int64_t j = lane; j < c; j += GROUP) p[j] = T(kd::fast_exp((Acc<T>)x[j] - m) * inv);
  if (lane == 0) {
    int64_t label = labels[row];
    // An out-of-range label cannot raise from a kernel: it yields a NaN loss instead of reading out of
    // bounds, and the first one is recorded for the host to raise at its next synchronisation.
    if (label >= 0 && label < c) {
      loss[row] = T(log(s) - ((Acc<T>)x[label] - m));
    } else {
      loss[row] = T(NAN);
      kd::record_fault(fault, ticket, row, label);
    }
  }
}

template <typename T>
__global__ void xent_backward(T *d, const T *probs, const int64_t *labels, const T *g, int64_t n, int64_t c) {
  const int64_t total = n * c;
  KD_GRID_STRIDE(i, total) {
    int64_t r = i / c, j = i - r * c;
    T v = probs[i] - (labels[r] == j ? T(1) : T(0));
    d[i] = v * g[r];
  }
}

template <typename T, bool LOG>
void launch_softmax(T *out, const T *in, int64_t outer, int64_t k, int64_t inner) {
  if (inner == 1) {
    if (k <= 1024)
      kd::launch(softmax_rows<T, 32, LOG>, (unsigned)kd::ceil_div(outer, kd::kThreads / 32), kd::kThreads,
                 out, in, outer, k);
    else
      kd::launch(softmax_rows<T, 512, LOG>, (unsigned)outer, 512, out, in, outer, k);
  } else {
    kd::launch(softmax_columns<T, LOG>, (unsigned)kd::ceil_div(outer * inner, kd::kThreads), kd::kThreads,
               out, in, outer, k, inner);
  }
}

// Backward of softmax / log-softmax given the forward's output y and the incoming gradient g:
//   softmax:      dx = y * (g - sum(g * y))
//   log-softmax:  dx = g - exp(y) * sum(g)
// One read of y and g and one write of dx per element (the composite formula takes five passes).
template <typename T, int GROUP, bool LOG>
__global__ void softmax_backward_rows(T *dx, const T *y, const T *g, int64_t rows, int64_t k) {
  using A = Acc<T>;
  int64_t row;
  int lane;
  row_position<GROUP>(row, lane);
  if (GROUP == 32 && row >= rows) return;
  const T *yr = y + row * k, *gr = g + row * k;
  T *d = dx + row * k;
  A acc = 0;
  if (LOG) {
    for (int64_t j = lane; j < k; j += GROUP) acc += (A)gr[j];
  } else {
    for (int64_t j = lane; j < k; j += GROUP) acc += (A)gr[j] * (A)yr[j];
  }
  const A dot = group_sum<GROUP>(acc);
  if (LOG) {
    for (int64_t j = lane; j < k; j += GROUP) d[j] = T((A)gr[j] - kd::fast_exp((A)yr[j]) * dot);
  } else {
    for (int64_t j = lane; j < k; j += GROUP) d[j] = T((A)yr[j] * ((A)gr[j] - dot));
  }
}

template <typename T, bool LOG>
__global__ void softmax_backward_columns(T *dx, const T *y, const T *g, int64_t outer, int64_t k,
                                         int64_t inner) {
  using A = Acc<T>;
  const int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (idx >= outer * inner) return;
  const int64_t o = idx / inner, i = idx - o * inner, base = o * k * inner + i;
  A dot = 0;
  for (int64_t j = 0; j < k; ++j) {
    const int64_t at = base + j * inner;
    dot += LOG ? (A)g[at] : (A)g[at] * (A)y[at];
  }
  for (int64_t j = 0; j < k; ++j) {
    const int64_t at = base + j * inner;
    dx[at] = LOG ? T((A)g[at] - kd::fast_exp((A)y[at]) * dot) : T((A)y[at] * ((A)g[at] - dot));
  }
}

template <typename T, bool LOG>
void launch_softmax_backward(T *dx, const T *y, const T *g, int64_t outer, int64_t k, int64_t inner) {
  if (inner == 1) {
    if (k <= 1024)
      kd::launch(softmax_backward_rows<T, 32, LOG>, (unsigned)kd::ceil_div(outer, kd::kThreads / 32),
                 kd::kThreads, dx, y, g, outer, k);
    else
      kd::launch(softmax_backward_rows<T, 512, LOG>, (unsigned)outer, 512, dx, y, g, outer, k);
  } else {
    kd::launch(softmax_backward_columns<T, LOG>, (unsigned)kd::ceil_div(outer * inner, kd::kThreads),
               kd::kThreads, dx, y, g, outer, k, inner);
  }
}

}  // namespace

extern "C" int kd_softmax(int dtype, void *out, const void *a, int64_t outer, int64_t k, int64_t inner,
                          int log) {
  if (outer * k * inner == 0) return KD_OK;
  if (outer > INT32_MAX) return kd::fail(KD_ERR_ARGUMENT, "softmax: too many rows");
  KD_DISPATCH_FLOAT(dtype, "softmax",
    auto *o = static_cast<scalar_t *>(out); auto *x = static_cast<const scalar_t *>(a);
    if (log) launch_softmax<scalar_t, true>(o, x, outer, k, inner);
    else launch_softmax<scalar_t, false>(o, x, outer, k, inner));
  return kd::check_launch("softmax");
}

extern "C" int kd_softmax_backward(int dtype, void *dx, const void *y, const void *g, int64_t outer, int64_t k,
                                   int64_t inner, int log) {
  if (outer * k * inner == 0) return KD_OK;
  if (outer > INT32_MAX) return kd::fail(KD_ERR_ARGUMENT, "softmax_backward: too many rows");
  KD_DISPATCH_FLOAT(dtype, "softmax_backward",
    scalar_t *d = (scalar_t *)dx; const scalar_t *yy = (const scalar_t *)y; const scalar_t *gg = (const scalar_t *)g;
    if (log) launch_softmax_backward<scalar_t, true>(d, yy, gg, outer, k, inner);
    else launch_softmax_backward<scalar_t, false>(d, yy, gg, outer, k, inner));
  return kd::check_launch("softmax_backward");
}

extern "C" int kd_softmax_xent_forward(int dtype, void *loss, void *probs, const void *logits,
                                       const int64_t *labels, int64_t n, int64_t c, kd_fault *fault,
                                       int64_t ticket) {
  if (n == 0) return KD_OK;
  if (c == 0) return kd::fail(KD_ERR_ARGUMENT, "softmax_xent_forward: no classes");
  KD_DISPATCH_FLOAT(dtype, "softmax_xent_forward",
    auto *l = static_cast<scalar_t *>(loss); auto *p = static_cast<scalar_t *>(probs);
    auto *x = static_cast<const scalar_t *>(logits);
    if (c <= 1024)
      kd::launch(xent_forward<scalar_t, 32>, (unsigned)kd::ceil_div(n, kd::kThreads / 32), kd::kThreads, l, p,
                 x, labels, n, c, fault, ticket);
    else
      kd::launch(xent_forward<scalar_t, 512>, (unsigned)n, 512, l, p, x, labels, n, c, fault, ticket));
  return kd::check_launch("softmax_xent_forward");
}

extern "C" int kd_softmax_xent_backward(int dtype, void *dlogits, const void *probs, const int64_t *labels,
                                        const void *g, int64_t n, int64_t c) {
  if (n * c == 0) return KD_OK;
  KD_DISPATCH_FLOAT(dtype, "softmax_xent_backward",
    kd::launch(xent_backward<scalar_t>, kd::grid_for(n * c), kd::kThreads, static_cast<scalar_t *>(dlogits),
               static_cast<const scalar_t *>(probs), labels, static_cast<const scalar_t *>(g), n, c));
  return kd::check_launch("softmax_xent_backward");
}
