// Copies and creation: dtype casts between any two dtypes over strided/broadcast views (also the plain
// strided copy behind ascontiguousarray), fills and arange.
#include "kd_common.cuh"

namespace {

using kd::Offsets;

template <typename To, typename From>
__device__ __forceinline__ To convert(From x) {
  if constexpr (std::is_same<To, uint8_t>::value) return To(x != From(0));
  else return To(x);
}

template <typename To, typename From, typename I>
__global__ void cast_strided(To *out, const From *a, Offsets<I, 2> offs, I n) {
  for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    I o[2];
    offs.get(i, o);
    out[o[0]] = convert<To>(a[o[1]]);
  }
}

template <typename To, typename From>
__global__ void cast_contiguous(To *__restrict__ out, const From *__restrict__ a, int64_t n) {
  KD_GRID_STRIDE(i, n)
    out[i] = convert<To>(a[i]);
}

// out[b][i][j] = in[b * sb + i + j * sj]: a batched transpose through 32x32 shared-memory tiles, so both
// the reads (along i) and the writes (along j) are coalesced; the generic strided copy reads one of them
// with a large stride.
template <typename T>
__global__ void transpose_tiles(T *__restrict__ out, const T *__restrict__ in, int64_t rows, int64_t cols,
                                int64_t sb, int64_t sj) {
  __shared__ T tile[32][33];
  const int64_t b = blockIdx.z, i0 = (int64_t)blockIdx.y * 32, j0 = (int64_t)blockIdx.x * 32;
  const T *src = in + b * sb;
  for (int r = threadIdx.y; r < 32; r += 8) {
    const int64_t i = i0 + threadIdx.x, j = j0 + r;
    if (i < rows && j < cols) tile[r][threadIdx.x] = src[i + j * sj];
  }
  __syncthreads();
  T *dst = out + b * rows * cols;
  for (int r = threadIdx.y; r < 32; r += 8) {
    const int64_t i = i0 + r, j = j0 + threadIdx.x;
    if (i < rows && j < cols) dst[i * cols + j] = tile[threadIdx.x][r];
  }
}

// A same-dtype copy whose (collapsed) output is contiguous and whose input walks the output's last dim
// with a large stride and the one before it with stride 1 is a (batched) transpose.
template <typename T>
bool try_transpose(T *out, const T *a, const kd_iter &c) {
  const int nd = c.ndim;
  if (nd < 2 || nd > 3) return false;
  const int64_t rows = c.shape[nd - 2], cols = c.shape[nd - 1];
  const int64_t batch = nd == 3 ? c.shape[0] : 1;
  if (c.strides[0][nd - 1] != 1 || c.strides[0][nd - 2] != cols) return false;
  if (nd == 3 && c.strides[0][0] != rows * cols) return false;
  if (c.strides[1][nd - 2] != 1 || c.strides[1][nd - 1] == 1) return false;
  if (rows < 8 || cols < 8 || batch > 65535 || kd::ceil_div(rows, 32) > 65535) return false;
  dim3 grid((unsigned)kd::ceil_div(cols, 32), (unsigned)kd::ceil_div(rows, 32), (unsigned)batch);
  const int64_t batch_stride = nd == 3 ? c.strides[1][0] : 0;
  kd::launch(transpose_tiles<T>, grid, dim3(32, 8), out, a, rows, cols, batch_stride, c.strides[1][nd - 1]);
  return true;
}

template <typename To, typename From>
int launch_cast(void *out_, const void *a_, int64_t n, const kd_iter *it) {
  To *out = static_cast<To *>(out_);
  const From *a = static_cast<const From *>(a_);
  if (it == nullptr) {
    if (std::is_same<To, From>::value)
      return cudaMemcpyAsync(out, a, n * sizeof(To), cudaMemcpyDeviceToDevice, kd::stream()) == cudaSuccess
                 ? KD_OK : kd::check_launch("copy");
    kd::launch(cast_contiguous<To, From>, kd::grid_for(n), kd::kThreads, out, a, n);
    return kd::check_launch("cast");
  }
  kd_iter c = *it;
  c.noperands = 2;
  kd::collapse(c);
  if (std::is_same<To, From>::value && c.ndim == 1 && c.strides[0][0] == 1 && c.strides[1][0] == 1)
    return cudaMemcpyAsync(out, a, n * sizeof(To), cudaMemcpyDeviceToDevice, kd::stream()) == cudaSuccess
               ? KD_OK : kd::check_launch("copy");
  if constexpr (std::is_same<To, From>::value) {
    if (try_transpose<To>(out, a, c)) return kd::check_launch("copy");
  }
  if (kd::fits_int32(c))
    kd::launch(cast_strided<To, From, int32_t>, kd::grid_for(n), kd::kThreads, out, a, Offsets<int32_t, 2>(c),
               (int32_t)n);
  else
    kd::launch(cast_strided<To, From, int64_t>, kd::grid_for(n), kd::kThreads, out, a, Offsets<int64_t, 2>(c),
               n);
  return kd::check_launch("cast");
}

template <typename To>
int cast_from(int in_dtype, void *out, const void *a, int64_t n, const kd_iter *it) {
  KD_DISPATCH_ALL(in_dtype, "cast", return launch_cast<To, scalar_t>(out, a, n, it));
  return KD_OK;
}

template <typename T, typename I>
__global__ void fill_strided(T *out, T value, Offsets<I, 1> offs, I n) {
  for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    I o[1];
    offs.get(i, o);
    out[o[0]] = value;
  }
}

template <typename T>
__global__ void arange_kernel(T *out, kd_scalar start, kd_scalar step, int64_t n) {
  KD_GRID_STRIDE(i, n) {
    if constexpr (std::is_same<T, int64_t>::value) out[i] = start.i + i * step.i;
    else out[i] = T(start.f + (double)i * step.f);
  }
}

template <typename T>
T host_value(kd_scalar s) {
  if constexpr (std::is_same<T, int64_t>::value) return s.i;
  else if constexpr (std::is_same<T, uint8_t>::value) return (uint8_t)(s.i != 0);
  else return (T)s.f;
}

}  // namespace

extern "C" int kd_cast(const kd_cast_args *g, const kd_iter *it) {
  if (g->n == 0) return KD_OK;
  KD_DISPATCH_ALL(g->out_dtype, "cast", return cast_from<scalar_t>(g->in_dtype, g->out, g->a, g->n, it));
  return KD_OK;
}

extern "C" int kd_fill(const kd_fill_args *g, const kd_iter *it) {
  const int64_t n = g->n;
  void *out = g->out;
  const kd_scalar value = g->value;
  if (n == 0) return KD_OK;
  kd_iter c{};
  if (it) {
    c = *it;
  } else {
    c.ndim = 1;
    c.shape[0] = n;
    c.strides[0][0] = 1;
  }
  c.noperands = 1;
  kd::collapse(c);
  KD_DISPATCH_ALL(g->dtype, "fill",
    scalar_t v = host_value<scalar_t>(value);
    auto *o = static_cast<scalar_t *>(out);
    bool zero_bits = true;
    for (size_t k = 0; k < sizeof(v); ++k) zero_bits &= reinterpret_cast<const unsigned char *>(&v)[k] == 0;
    if (zero_bits && c.ndim == 1 && c.strides[0][0] == 1) {
      if (cudaMemsetAsync(o, 0, n * sizeof(scalar_t), kd::stream()) != cudaSuccess)
        return kd::check_launch("fill");
      return KD_OK;
    }
    if (kd::fits_int32(c))
      kd::launch(fill_strided<scalar_t, int32_t>, kd::grid_for(n), kd::kThreads, o, v, Offsets<int32_t, 1>(c),
                 (int32_t)n);
    else
      kd::launch(fill_strided<scalar_t, int64_t>, kd::grid_for(n), kd::kThreads, o, v, Offsets<int64_t, 1>(c),
                 n));
  return kd::check_launch("fill");
}

extern "C" int kd_arange(int dtype, void *out, kd_scalar start, kd_scalar step, int64_t n) {
  if (n == 0) return KD_OK;
  KD_DISPATCH_NUMERIC(dtype, "arange",
    kd::launch(arange_kernel<scalar_t>, kd::grid_for(n), kd::kThreads, static_cast<scalar_t *>(out), start,
               step, n));
  return kd::check_launch("arange");
}
