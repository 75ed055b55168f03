// Reductions (sum, max, min, argmax) over the middle axis of a contiguous (outer, k, inner) array.
// inner == 1 reduces rows (a warp per short row, a block per long one); inner > 1 reduces columns with a
// thread per output, reading coalesced along inner. When there are too few outputs to fill the GPU the
// k axis is split into a fixed number of chunks whose partials a second launch combines, so results are
// deterministic: the combination order depends only on the shape.
#include <float.h>

#include <algorithm>

#include "kd_common.cuh"

namespace {

template <typename T>
struct ArgAcc {
  T v;
  int64_t i;
};

template <typename T>
__device__ __forceinline__ T lowest() {
  if constexpr (std::is_same<T, float>::value) return -INFINITY;
  else if constexpr (std::is_same<T, double>::value) return -(double)INFINITY;
  else if constexpr (std::is_same<T, int64_t>::value) return INT64_MIN;
  else return T(0);
}
template <typename T>
__device__ __forceinline__ T highest() {
  if constexpr (std::is_same<T, float>::value) return INFINITY;
  else if constexpr (std::is_same<T, double>::value) return (double)INFINITY;
  else if constexpr (std::is_same<T, int64_t>::value) return INT64_MAX;
  else return T(1);
}

template <typename T>
__device__ __forceinline__ T shfl_value(T v, int o) {
  if constexpr (std::is_same<T, uint8_t>::value) return (T)__shfl_xor_sync(0xffffffffu, (int)v, o);
  else if constexpr (std::is_same<T, int64_t>::value) return (T)__shfl_xor_sync(0xffffffffu, (long long)v, o);
  else return __shfl_xor_sync(0xffffffffu, v, o);
}

template <typename T, int OP>
struct Reducer {
  using Acc = typename std::conditional<OP == KD_ARGMAX, ArgAcc<T>, T>::type;
  using Out = typename std::conditional<OP == KD_ARGMAX, int64_t, T>::type;

  __device__ __forceinline__ static Acc identity() {
    if constexpr (OP == KD_SUM) return T(0);
    else if constexpr (OP == KD_MAX) return lowest<T>();
    else if constexpr (OP == KD_MIN) return highest<T>();
    else return Acc{lowest<T>(), INT64_MAX};
  }
  __device__ __forceinline__ static Acc make(T v, int64_t k) {
    if constexpr (OP == KD_ARGMAX) return Acc{v, k};
    else return v;
  }
  __device__ __forceinline__ static Acc combine(Acc a, Acc b) {
    if constexpr (OP == KD_SUM) return a + b;
    else if constexpr (OP == KD_MAX) return kd::nan_max(a, b);
    else if constexpr (OP == KD_MIN) return kd::nan_min(a, b);
    else {
      // NumPy: the first NaN wins, else the first of the largest values.
      bool an = kd::is_nan(a.v), bn = kd::is_nan(b.v);
      if (an != bn) return an ? a : b;
      if (!an && a.v != b.v) return a.v > b.v ? a : b;
      return a.i <= b.i ? a : b;
    }
  }
  __device__ __forceinline__ static Out finish(Acc a) {
    if constexpr (OP == KD_ARGMAX) return a.i;
    else return a;
  }
  __device__ __forceinline__ static Acc shfl(Acc a, int o) {
    if constexpr (OP == KD_ARGMAX) {
      return Acc{shfl_value(a.v, o), (int64_t)__shfl_xor_sync(0xffffffffu, (long long)a.i, o)};
    } else {
      return shfl_value(a, o);
    }
  }
  __device__ __forceinline__ static Acc warp_reduce(Acc a) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) a = combine(a, shfl(a, o));
    return a;
  }
};

// Reads element k of an input row: a raw value on the first pass, a stored partial on the second.
template <typename R, typename T, bool PARTIAL>
__device__ __forceinline__ typename R::Acc load(const void *in, int64_t idx, int64_t k) {
  if constexpr (PARTIAL) return static_cast<const typename R::Acc *>(in)[idx];
  else return R::make(static_cast<const T *>(in)[idx], k);
}

// GROUP threads (a warp, or the whole block) reduce one row chunk. blockIdx.y is the chunk.
template <typename T, int OP, bool PARTIAL, int GROUP>
__global__ void reduce_rows(typename Reducer<T, OP>::Out *out, typename Reducer<T, OP>::Acc *partial,
                            const void *in, int64_t rows, int64_t k, int64_t chunk) {
  using R = Reducer<T, OP>;
  using Acc = typename R::Acc;
  constexpr int per_block = GROUP == 32 ? kd::kThreads / 32 : 1;
  const int lane = GROUP == 32 ? (threadIdx.x & 31) : threadIdx.x;
  const int64_t row = GROUP == 32 ? blockIdx.x * (int64_t)per_block + (threadIdx.x >> 5) : blockIdx.x;
  const int64_t s = blockIdx.y;
  const int64_t begin = s * chunk;
  const int64_t end = k < begin + chunk ? k : begin + chunk;
  Acc acc[4] = {R::identity(), R::identity(), R::identity(), R::identity()};
  if (row < rows) {
    const int64_t base = row * k;
    int64_t j = begin + lane;
    // Four independent accumulators keep several loads in flight per thread.
    for (; j + 3 * GROUP < end; j += 4 * GROUP) {
#pragma unroll
      for (int u = 0; u < 4; ++u)
        acc[u] = R::combine(acc[u], load<R, T, PARTIAL>(in, base + j + u * GROUP, j + u * GROUP));
    }
    for (; j < end; j += GROUP) acc[0] = R::combine(acc[0], load<R, T, PARTIAL>(in, base + j, j));
  }
  Acc a = R::combine(R::combine(acc[0], acc[1]), R::combine(acc[2], acc[3]));
  a = R::warp_reduce(a);
  if constexpr (GROUP != 32) {
    __shared__ Acc shared[32];
    const int warp = threadIdx.x >> 5;
    if ((threadIdx.x & 31) == 0) shared[warp] = a;
    __syncthreads();
    a = (int)threadIdx.x < (GROUP >> 5) ? shared[threadIdx.x] : R::identity();
    if (warp == 0) a = R::warp_reduce(a);
  }
  if (lane == 0 && row < rows) {
    if (partial) partial[row * gridDim.y + s] = a;
    else out[row] = R::finish(a);
  }
}

// One thread per (outer, inner) output; blockIdx.y is the k chunk.
template <typename T, int OP, bool PARTIAL>
__global__ void reduce_columns(typename Reducer<T, OP>::Out *out, typename Reducer<T, OP>::Acc *partial,
                               const void *in, int64_t outer, int64_t k, int64_t inner, int64_t chunk) {
  using R = Reducer<T, OP>;
  const int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (idx >= outer * inner) return;
  const int64_t o = idx / inner, i = idx - o * inner;
  const int64_t s = blockIdx.y;
  const int64_t end = k < (s + 1) * chunk ? k : (s + 1) * chunk;
  typename R::Acc a = R::identity();
  const int64_t base = o * k * inner + i;
  for (int64_t j = s * chunk; j < end; ++j) a = R::combine(a, load<R, T, PARTIAL>(in, base + j * inner, j));
  if (partial) partial[s * outer * inner + idx] = a;
  else out[idx] = R::finish(a);
}

struct Plan {
  int64_t splits, chunk;
  bool warp_rows;
};

Plan plan(int64_t outer, int64_t k, int64_t inner) {
  const int64_t sms = kd::num_sms();
  Plan p{1, k > 0 ? k : 1, k <= 1024};
  int64_t blocks, min_chunk;
  if (inner == 1) {
    blocks = p.warp_rows ? kd::ceil_div(outer, kd::kThreads / 32) : outer;
    min_chunk = 4096;
  } else {
    blocks = kd::ceil_div(outer * inner, kd::kThreads);
    min_chunk = 32;
  }
  if (blocks < 2 * sms && k > 2 * min_chunk) {
    int64_t s = kd::ceil_div(4 * sms, blocks);
    s = std::min(s, kd::ceil_div(k, min_chunk));
    s = std::min(s, (int64_t)1024);
    p.chunk = kd::ceil_div(k, s);
    p.splits = kd::ceil_div(k, p.chunk);
    if (p.splits > 1 && inner == 1) p.warp_rows = false;  // long rows: a block per chunk
  }
  return p;
}

template <typename T, int OP, bool PARTIAL>
void launch_rows(typename Reducer<T, OP>::Out *out, typename Reducer<T, OP>::Acc *partial, const void *in,
                 int64_t rows, int64_t k, int64_t chunk, int64_t splits, bool warp_rows) {
  if (warp_rows) {
    dim3 grid((unsigned)kd::ceil_div(rows, kd::kThreads / 32), (unsigned)splits);
    kd::launch(reduce_rows<T, OP, PARTIAL, 32>, grid, kd::kThreads, out, partial, in, rows, k, chunk);
  } else {
    dim3 grid((unsigned)rows, (unsigned)splits);
    kd::launch(reduce_rows<T, OP, PARTIAL, 512>, grid, 512, out, partial, in, rows, k, chunk);
  }
}

template <typename T, int OP>
int run_reduce(void *out_, const void *in, int64_t outer, int64_t k, int64_t inner, void *ws,
               int64_t ws_bytes) {
  using R = Reducer<T, OP>;
  using Acc = typename R::Acc;
  auto *out = static_cast<typename R::Out *>(out_);
  if (outer * inner == 0) return KD_OK;
  Plan p = plan(outer, k, inner);
  Acc *partial = nullptr;
  if (p.splits > 1) {
    if (ws == nullptr || ws_bytes < (int64_t)(p.splits * outer * inner * sizeof(Acc)))
      return kd::fail(KD_ERR_ARGUMENT, "reduce: workspace of %lld bytes is too small", (long long)ws_bytes);
    partial = static_cast<Acc *>(ws);
  }
  if (inner == 1) {
    if (outer > INT32_MAX) return kd::fail(KD_ERR_ARGUMENT, "reduce: too many rows");
    launch_rows<T, OP, false>(partial ? nullptr : out, partial, in, outer, k, p.chunk, p.splits, p.warp_rows);
    if (partial) launch_rows<T, OP, true>(out, nullptr, partial, outer, p.splits, p.splits, 1,
                                          p.splits <= 1024);
  } else {
    dim3 grid((unsigned)kd::ceil_div(outer * inner, kd::kThreads), (unsigned)p.splits);
    kd::launch(reduce_columns<T, OP, false>, grid, kd::kThreads, partial ? nullptr : out, partial, in, outer,
               k, inner, p.chunk);
    if (partial) {
      dim3 grid2((unsigned)kd::ceil_div(outer * inner, kd::kThreads), 1);
      kd::launch(reduce_columns<T, OP, true>, grid2, kd::kThreads, out, nullptr, partial, 1, p.splits,
                 outer * inner, p.splits);
    }
  }
  return kd::check_launch("reduce");
}

template <typename T>
int reduce_op(int op, void *out, const void *in, int64_t outer, int64_t k, int64_t inner, void *ws,
              int64_t ws_bytes) {
  switch (op) {
    case KD_MAX: return run_reduce<T, KD_MAX>(out, in, outer, k, inner, ws, ws_bytes);
    case KD_MIN: return run_reduce<T, KD_MIN>(out, in, outer, k, inner, ws, ws_bytes);
    case KD_ARGMAX: return run_reduce<T, KD_ARGMAX>(out, in, outer, k, inner, ws, ws_bytes);
    default: break;
  }
  if constexpr (!std::is_same<T, uint8_t>::value) {
    if (op == KD_SUM) return run_reduce<T, KD_SUM>(out, in, outer, k, inner, ws, ws_bytes);
  }
  return kd::fail(KD_ERR_DTYPE, "reduce: op %d is not defined for this dtype", op);
}

int64_t acc_size(int op, int dtype) {
  int64_t item = dtype == KD_F32 ? 4 : (dtype == KD_BOOL ? 1 : 8);
  return op == KD_ARGMAX ? 16 : item;
}

}  // namespace

extern "C" int64_t kd_reduce_workspace(int op, int dtype, int64_t outer, int64_t k, int64_t inner) {
  if (outer * inner == 0) return 0;
  Plan p = plan(outer, k, inner);
  return p.splits > 1 ? p.splits * outer * inner * acc_size(op, dtype) : 0;
}

extern "C" int kd_reduce(int op, int dtype, void *out, const void *a, int64_t outer, int64_t k, int64_t inner,
                         void *workspace, int64_t workspace_bytes) {
  KD_DISPATCH_ALL(dtype, "reduce", return reduce_op<scalar_t>(op, out, a, outer, k, inner, workspace,
                                                              workspace_bytes));
  return KD_OK;
}
