// 2-D max and average pooling on contiguous NCHW. Average-pool backward gathers (a thread per input cell sums
// the windows covering it), so it is deterministic even with overlapping windows.
#include "kd_common.cuh"

namespace {

template <typename T>
using Acc = typename kd::AccOf<T>::type;

template <typename T>
__global__ void max_forward(T *y, int64_t *argmax, const T *x, kd_pool2d p) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t ow = idx % p.ow, oh = (idx / p.ow) % p.oh, plane = idx / (p.ow * p.oh);
    const T *xp = x + plane * p.h * p.w;
    const int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
    // Padded cells are -inf and never win; start from the window's first real cell, as the reference does.
    const int64_t hs = h0 < 0 ? 0 : h0, ws = w0 < 0 ? 0 : w0;
    T best = -INFINITY;
    int64_t best_k = hs * p.w + ws;
    for (int64_t i = 0; i < p.kh; ++i) {
      const int64_t h = h0 + i;
      if (h < 0 || h >= p.h) continue;
      for (int64_t j = 0; j < p.kw; ++j) {
        const int64_t w = w0 + j;
        if (w < 0 || w >= p.w) continue;
        const T v = xp[h * p.w + w];
        if (v > best || (kd::is_nan(v) && !kd::is_nan(best))) {
          best = v;
          best_k = h * p.w + w;
        }
      }
    }
    y[idx] = best;
    argmax[idx] = best_k;
  }
}

// Output rows/cols whose windows cover input coordinate `c`: [lo, hi).
__device__ __forceinline__ void covering(int64_t c, int64_t pad, int64_t k, int64_t s, int64_t out,
                                         int64_t &lo,
                                         int64_t &hi) {
  const int64_t first = c + pad - k + 1;
  lo = first <= 0 ? 0 : (first + s - 1) / s;
  hi = (c + pad) / s + 1;
  if (hi > out) hi = out;
}

// The backward contract carries no window geometry, so gradients are scattered to the argmax cells with
// atomicAdd. Cells covered by one window (stride >= kernel) get one add each and are exact; overlapping
// windows may sum in any order (last-bit differences between runs). Out-of-range indices are skipped.
template <typename T>
__global__ void max_backward(T *gx, const T *gy, const int64_t *argmax, kd_pool2d p) {
  const int64_t total = p.n * p.c * p.oh * p.ow, plane_size = p.h * p.w;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t plane = idx / (p.oh * p.ow), k = argmax[idx];
    if (k >= 0 && k < plane_size) atomicAdd(gx + plane * plane_size + k, gy[idx]);
  }
}

template <typename T>
__global__ void avg_forward(T *y, const T *x, kd_pool2d p) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  const Acc<T> scale = Acc<T>(1) / Acc<T>(p.kh * p.kw);
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t ow = idx % p.ow, oh = (idx / p.ow) % p.oh, plane = idx / (p.ow * p.oh);
    const T *xp = x + plane * p.h * p.w;
    const int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
    Acc<T> acc = 0;
    for (int64_t i = 0; i < p.kh; ++i) {
      const int64_t h = h0 + i;
      if (h < 0 || h >= p.h) continue;
      for (int64_t j = 0; j < p.kw; ++j) {
        const int64_t w = w0 + j;
        if (w >= 0 && w < p.w) acc += (Acc<T>)xp[h * p.w + w];
      }
    }
    y[idx] = T(acc * scale);
  }
}

template <typename T>
__global__ void avg_backward(T *gx, const T *gy, kd_pool2d p) {
  const int64_t total = p.n * p.c * p.h * p.w;
  const Acc<T> scale = Acc<T>(1) / Acc<T>(p.kh * p.kw);
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t w = idx % p.w, h = (idx / p.w) % p.h, plane = idx / (p.w * p.h);
    int64_t oh0, oh1, ow0, ow1;
    covering(h, p.ph, p.kh, p.sh, p.oh, oh0, oh1);
    covering(w, p.pw, p.kw, p.sw, p.ow, ow0, ow1);
    const T *g = gy + plane * p.oh * p.ow;
    Acc<T> acc = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow) acc += (Acc<T>)g[oh * p.ow + ow];
    gx[idx] = T(acc * scale);
  }
}

bool valid(const kd_pool2d *p) {
  return p && p->n >= 0 && p->c >= 0 && p->h > 0 && p->w > 0 && p->oh >= 0 && p->ow >= 0 && p->kh > 0 &&
         p->kw > 0 && p->sh > 0 && p->sw > 0 && p->ph >= 0 && p->pw >= 0;
}

}  // namespace

#define KD_POOL_PRELUDE(name, count)                                                  \
  if (!valid(p)) return kd::fail(KD_ERR_ARGUMENT, "%s: invalid pooling geometry", name); \
  const int64_t total = (count);                                                     \
  if (total == 0) return KD_OK;

extern "C" int kd_max_pool2d_forward(int dtype, void *y, int64_t *argmax, const void *x, const kd_pool2d *p) {
  KD_POOL_PRELUDE("max_pool2d_forward", p->n * p->c * p->oh * p->ow);
  KD_DISPATCH_FLOAT(dtype, "max_pool2d_forward",
    kd::launch(max_forward<scalar_t>, kd::grid_for(total), kd::kThreads, static_cast<scalar_t *>(y), argmax,
               static_cast<const scalar_t *>(x), *p));
  return kd::check_launch("max_pool2d_forward");
}

extern "C" int kd_max_pool2d_backward(int dtype, void *gx, const void *gy, const int64_t *argmax,
                                      const kd_pool2d *p) {
  KD_POOL_PRELUDE("max_pool2d_backward", p->n * p->c * p->oh * p->ow);
  const int64_t gx_size = p->n * p->c * p->h * p->w;
  KD_DISPATCH_FLOAT(dtype, "max_pool2d_backward",
    if (cudaMemsetAsync(gx, 0, gx_size * sizeof(scalar_t), kd::stream()) != cudaSuccess)
      return kd::check_launch("max_pool2d_backward");
    kd::launch(max_backward<scalar_t>, kd::grid_for(total), kd::kThreads, static_cast<scalar_t *>(gx),
               static_cast<const scalar_t *>(gy), argmax, *p));
  return kd::check_launch("max_pool2d_backward");
}

extern "C" int kd_avg_pool2d_forward(int dtype, void *y, const void *x, const kd_pool2d *p) {
  KD_POOL_PRELUDE("avg_pool2d_forward", p->n * p->c * p->oh * p->ow);
  KD_DISPATCH_FLOAT(dtype, "avg_pool2d_forward",
    kd::launch(avg_forward<scalar_t>, kd::grid_for(total), kd::kThreads, static_cast<scalar_t *>(y),
               static_cast<const scalar_t *>(x), *p));
  return kd::check_launch("avg_pool2d_forward");
}

extern "C" int kd_avg_pool2d_backward(int dtype, void *gx, const void *gy, const kd_pool2d *p) {
  KD_POOL_PRELUDE("avg_pool2d_backward", p->n * p->c * p->h * p->w);
  KD_DISPATCH_FLOAT(dtype, "avg_pool2d_backward",
    kd::launch(avg_backward<scalar_t>, kd::grid_for(total), kd::kThreads, static_cast<scalar_t *>(gx),
               static_cast<const scalar_t *>(gy), *p));
  return kd::check_launch("avg_pool2d_backward");
}
