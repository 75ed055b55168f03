// 2-D max and average pooling on contiguous NCHW. Average-pool backward gathers (a thread per input cell sums
// the windows covering it), so it is deterministic even with overlapping windows.
#include "kd_common.cuh"

namespace {

template <typename T>
using Acc = typename kd::AccOf<T>::type;

// The geometry in the kernel's index type, so every division and modulo below is done in it.
template <typename I>
struct Geom {
  I n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
  __device__ explicit Geom(const kd_pool2d &p)
      : n((I)p.n), c((I)p.c), h((I)p.h), w((I)p.w), oh((I)p.oh), ow((I)p.ow), kh((I)p.kh), kw((I)p.kw),
        sh((I)p.sh), sw((I)p.sw), ph((I)p.ph), pw((I)p.pw) {}
};

template <typename T, typename I>
__global__ void max_forward(T *y, int64_t *argmax, const T *x, kd_pool2d pool) {
  const Geom<I> p(pool);
  const I total = p.n * p.c * p.oh * p.ow;
  for (I idx = blockIdx.x * (I)blockDim.x + threadIdx.x; idx < total;
       idx += (I)gridDim.x * blockDim.x) {
    const I ow = idx % p.ow, oh = (idx / p.ow) % p.oh, plane = idx / (p.ow * p.oh);
    const T *xp = x + plane * p.h * p.w;
    const I h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
    // Padded cells are -inf and never win; start from the window's first real cell, as the reference does.
    const I hs = h0 < 0 ? 0 : h0, ws = w0 < 0 ? 0 : w0;
    T best = -INFINITY;
    int64_t best_k = (int64_t)hs * p.w + ws;
    for (I i = 0; i < p.kh; ++i) {
      const I h = h0 + i;
      if (h < 0 || h >= p.h) continue;
      for (I j = 0; j < p.kw; ++j) {
        const I w = w0 + j;
        if (w < 0 || w >= p.w) continue;
        const T v = xp[h * p.w + w];
        if (v > best || (kd::is_nan(v) && !kd::is_nan(best))) {
          best = v;
          best_k = (int64_t)h * p.w + w;
        }
      }
    }
    y[idx] = best;
    argmax[idx] = best_k;
  }
}

// Output rows/cols whose windows cover input coordinate `c`: [lo, hi).
template <typename I>
__device__ __forceinline__ void covering(I c, I pad, I k, I s, I out, I &lo, I &hi) {
  const I first = c + pad - k + 1;
  lo = first <= 0 ? 0 : (first + s - 1) / s;
  hi = (c + pad) / s + 1;
  if (hi > out) hi = out;
}

// The backward contract carries no window geometry, so gradients are scattered to the argmax cells with
// atomicAdd. Cells covered by one window (stride >= kernel) get one add each and are exact; overlapping
// windows may sum in any order (last-bit differences between runs). Out-of-range indices are skipped.
template <typename T, typename I>
__global__ void max_backward(T *gx, const T *gy, const int64_t *argmax, kd_pool2d pool) {
  const Geom<I> p(pool);
  const I total = p.n * p.c * p.oh * p.ow, plane_size = p.h * p.w;
  for (I idx = blockIdx.x * (I)blockDim.x + threadIdx.x; idx < total;
       idx += (I)gridDim.x * blockDim.x) {
    const I plane = idx / (I)(p.oh * p.ow);
    const int64_t k = argmax[idx];
    if (k >= 0 && k < plane_size) atomicAdd(gx + (int64_t)plane * plane_size + k, gy[idx]);
  }
}

template <typename T, typename I>
__global__ void avg_forward(T *y, const T *x, kd_pool2d pool) {
  const Geom<I> p(pool);
  const I total = p.n * p.c * p.oh * p.ow;
  const Acc<T> scale = Acc<T>(1) / Acc<T>(p.kh * p.kw);
  for (I idx = blockIdx.x * (I)blockDim.x + threadIdx.x; idx < total;
       idx += (I)gridDim.x * blockDim.x) {
    const I ow = idx % p.ow, oh = (idx / p.ow) % p.oh, plane = idx / (p.ow * p.oh);
    const T *xp = x + plane * p.h * p.w;
    const I h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
    Acc<T> acc = 0;
    for (I i = 0; i < p.kh; ++i) {
      const I h = h0 + i;
      if (h < 0 || h >= p.h) continue;
      for (I j = 0; j < p.kw; ++j) {
        const I w = w0 + j;
        if (w >= 0 && w < p.w) acc += (Acc<T>)xp[h * p.w + w];
      }
    }
    y[idx] = T(acc * scale);
  }
}

template <typename T, typename I>
__global__ void avg_backward(T *gx, const T *gy, kd_pool2d pool) {
  const Geom<I> p(pool);
  const I total = p.n * p.c * p.h * p.w;
  const Acc<T> scale = Acc<T>(1) / Acc<T>(p.kh * p.kw);
  for (I idx = blockIdx.x * (I)blockDim.x + threadIdx.x; idx < total;
       idx += (I)gridDim.x * blockDim.x) {
    const I w = idx % p.w, h = (idx / p.w) % p.h, plane = idx / (p.w * p.h);
    I oh0, oh1, ow0, ow1;
    covering(h, p.ph, p.kh, p.sh, p.oh, oh0, oh1);
    covering(w, p.pw, p.kw, p.sw, p.ow, ow0, ow1);
    const T *g = gy + plane * p.oh * p.ow;
    Acc<T> acc = 0;
    for (I oh = oh0; oh < oh1; ++oh)
      for (I ow = ow0; ow < ow1; ++ow) acc += (Acc<T>)g[oh * p.ow + ow];
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
  if (total == 0) return KD_OK;                                                      \
  const bool narrow = fits_int32(p);

// 32-bit index arithmetic (a 64-bit division is a long emulated sequence, and these kernels do several per
// element) whenever every index, and an index plus the grid's stride, fits.
static bool fits_int32(const kd_pool2d *p) {
  const int64_t biggest = std::max(p->n * p->c * p->h * p->w, p->n * p->c * p->oh * p->ow);
  return biggest < (int64_t)INT32_MAX / 2;
}

#define KD_POOL_LAUNCH(kernel, ...)                                                            \
  if (narrow) kd::launch(kernel<scalar_t, int32_t>, kd::grid_for(total), kd::kThreads, __VA_ARGS__); \
  else kd::launch(kernel<scalar_t, int64_t>, kd::grid_for(total), kd::kThreads, __VA_ARGS__)

extern "C" int kd_max_pool2d_forward(int dtype, void *y, int64_t *argmax, const void *x, const kd_pool2d *p) {
  KD_POOL_PRELUDE("max_pool2d_forward", p->n * p->c * p->oh * p->ow);
  KD_DISPATCH_FLOAT(dtype, "max_pool2d_forward",
    KD_POOL_LAUNCH(max_forward, static_cast<scalar_t *>(y), argmax,
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
    KD_POOL_LAUNCH(max_backward, static_cast<scalar_t *>(gx),
               static_cast<const scalar_t *>(gy), argmax, *p));
  return kd::check_launch("max_pool2d_backward");
}

extern "C" int kd_avg_pool2d_forward(int dtype, void *y, const void *x, const kd_pool2d *p) {
  KD_POOL_PRELUDE("avg_pool2d_forward", p->n * p->c * p->oh * p->ow);
  KD_DISPATCH_FLOAT(dtype, "avg_pool2d_forward",
    KD_POOL_LAUNCH(avg_forward, static_cast<scalar_t *>(y),
               static_cast<const scalar_t *>(x), *p));
  return kd::check_launch("avg_pool2d_forward");
}

extern "C" int kd_avg_pool2d_backward(int dtype, void *gx, const void *gy, const kd_pool2d *p) {
  KD_POOL_PRELUDE("avg_pool2d_backward", p->n * p->c * p->h * p->w);
  KD_DISPATCH_FLOAT(dtype, "avg_pool2d_backward",
    KD_POOL_LAUNCH(avg_backward, static_cast<scalar_t *>(gx),
               static_cast<const scalar_t *>(gy), *p));
  return kd::check_launch("avg_pool2d_backward");
}
