// Elementwise kernels: binary (array/array and array/scalar, compare ops writing bool), unary, clip, where.
// Each op has a vectorised contiguous path (16-byte accesses, grid-stride) and a generic strided path
// that walks up to 8 broadcast dims with int32 index math whenever the offsets fit.
#include "kd_common.cuh"

namespace {

using kd::Offsets;
using kd::Vec;

// MODE: 0 both operands are arrays, 1 the right one is a scalar, 2 the left one is.
template <int OP>
struct Binary {
  template <typename T>
  __device__ __forceinline__ static auto apply(T a, T b) {
    if constexpr (OP == KD_ADD) return T(a + b);
    else if constexpr (OP == KD_SUB) return T(a - b);
    else if constexpr (OP == KD_MUL) return T(a * b);
    else if constexpr (OP == KD_DIV) return T(a / b);
    else if constexpr (OP == KD_POW) {
      if constexpr (std::is_same<T, int64_t>::value) {
        // Exponentiation by squaring; negative exponents give 0 as integer truncation would.
        if (b < 0) return T(a == 1 ? 1 : (a == -1 ? ((b & 1) ? -1 : 1) : 0));
        T r = 1;
        while (b) {
          if (b & 1) r *= a;
          a *= a;
          b >>= 1;
        }
        return r;
      } else {
        // --use_fast_math turns powf into exp2(b*log2(a)), which is NaN for negative bases: use pow.
        return T(pow((double)a, (double)b));
      }
    } else if constexpr (OP == KD_MAXIMUM) return kd::nan_max(a, b);
    else if constexpr (OP == KD_MINIMUM) return kd::nan_min(a, b);
    else if constexpr (OP == KD_RELU_BACKWARD) return b > T(0) ? a : T(0);
    else if constexpr (OP == KD_EQ) return uint8_t(a == b);
    else if constexpr (OP == KD_NE) return uint8_t(a != b);
    else if constexpr (OP == KD_LT) return uint8_t(a < b);
    else if constexpr (OP == KD_LE) return uint8_t(a <= b);
    else if constexpr (OP == KD_GT) return uint8_t(a > b);
    else return uint8_t(a >= b);
  }
};

template <int OP, typename T>
using BinaryOut = typename std::conditional<(OP >= KD_EQ), uint8_t, T>::type;

template <typename T, int OP, int MODE, int V>
__global__ void binary_contiguous(BinaryOut<OP, T> *__restrict__ out, const T *__restrict__ a,
                                  const T *__restrict__ b, T s, int64_t n) {
  using Out = BinaryOut<OP, T>;
  const int64_t nv = n / V;
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < nv; i += step) {
    Vec<T, V> va, vb;
    Vec<Out, V> vo;
    if (MODE != 2) va = reinterpret_cast<const Vec<T, V> *>(a)[i];
    if (MODE != 1) vb = reinterpret_cast<const Vec<T, V> *>(b)[i];
#pragma unroll
    for (int j = 0; j < V; ++j)
      vo.v[j] = Binary<OP>::apply(MODE == 2 ? s : va.v[j], MODE == 1 ? s : vb.v[j]);
    reinterpret_cast<Vec<Out, V> *>(out)[i] = vo;
  }
  for (int64_t i = nv * V + blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += step)
    out[i] = Binary<OP>::apply(MODE == 2 ? s : a[i], MODE == 1 ? s : b[i]);
}

template <typename T, int OP, int MODE, typename I>
__global__ void binary_strided(BinaryOut<OP, T> *out, const T *a, const T *b, T s, Offsets<I, 3> offs, I n) {
  for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    I o[3];
    offs.get(i, o);
    out[o[0]] = Binary<OP>::apply(MODE == 2 ? s : a[o[1]], MODE == 1 ? s : b[o[2]]);
  }
}

bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

// A contiguous call is the 1-D strided case with unit strides, which also serves misaligned views.
kd_iter contiguous_iter(int64_t n, int noperands) {
  kd_iter c{};
  c.ndim = 1;
  c.noperands = noperands;
  c.shape[0] = n;
  for (int k = 0; k < noperands; ++k) c.strides[k][0] = 1;
  return c;
}


template <typename T, int OP, int MODE>
int launch_binary(void *out_, const void *a_, const void *b_, T s, int64_t n, const kd_iter *it) {
  using Out = BinaryOut<OP, T>;
  Out *out = static_cast<Out *>(out_);
  const T *a = static_cast<const T *>(a_);
  const T *b = static_cast<const T *>(b_);
  if (n == 0) return KD_OK;
  constexpr int V = 16 / sizeof(T);
  if (it == nullptr && ((uintptr_t)out % (sizeof(Out) * V) == 0) && (MODE == 2 || aligned16(a)) &&
      (MODE == 1 || aligned16(b))) {
    kd::launch(binary_contiguous<T, OP, MODE, V>, kd::grid_for(n / V + 1), kd::kThreads, out, a, b, s, n);
    return kd::check_launch("binary");
  }
  // Misaligned contiguous views (an odd offset) take the 1-D strided path.
  kd_iter c = it ? *it : contiguous_iter(n, 3);
  kd::collapse(c);
  if (kd::fits_int32(c))
    kd::launch(binary_strided<T, OP, MODE, int32_t>, kd::grid_for(n), kd::kThreads, out, a, b, s,
               Offsets<int32_t, 3>(c), (int32_t)n);
  else
    kd::launch(binary_strided<T, OP, MODE, int64_t>, kd::grid_for(n), kd::kThreads, out, a, b, s,
               Offsets<int64_t, 3>(c), n);
  return kd::check_launch("binary");
}

template <typename T, int MODE>
int binary_op(int op, void *out, const void *a, const void *b, T s, int64_t n, const kd_iter *it) {
  constexpr bool is_int = std::is_same<T, int64_t>::value;
  constexpr bool is_bool = std::is_same<T, uint8_t>::value;
  if constexpr (MODE == 2) {  // scalar on the left: only the non-commutative ops get here
    if (!is_bool) {
      switch (op) {
        case KD_SUB: return launch_binary<T, KD_SUB, MODE>(out, a, b, s, n, it);
        case KD_POW: return launch_binary<T, KD_POW, MODE>(out, a, b, s, n, it);
        case KD_RELU_BACKWARD: return launch_binary<T, KD_RELU_BACKWARD, MODE>(out, a, b, s, n, it);
        default: break;
      }
      if (!is_int && op == KD_DIV) return launch_binary<T, KD_DIV, MODE>(out, a, b, s, n, it);
    }
    return kd::fail(KD_ERR_DTYPE, "binary: op %d is not defined for this dtype", op);
  }
  if (!is_bool) {
    switch (op) {
      case KD_ADD: return launch_binary<T, KD_ADD, MODE>(out, a, b, s, n, it);
      case KD_SUB: return launch_binary<T, KD_SUB, MODE>(out, a, b, s, n, it);
      case KD_MUL: return launch_binary<T, KD_MUL, MODE>(out, a, b, s, n, it);
      case KD_POW: return launch_binary<T, KD_POW, MODE>(out, a, b, s, n, it);
      case KD_MAXIMUM: return launch_binary<T, KD_MAXIMUM, MODE>(out, a, b, s, n, it);
      case KD_MINIMUM: return launch_binary<T, KD_MINIMUM, MODE>(out, a, b, s, n, it);
      case KD_RELU_BACKWARD: return launch_binary<T, KD_RELU_BACKWARD, MODE>(out, a, b, s, n, it);
      default: break;
    }
    if (!is_int && op == KD_DIV) return launch_binary<T, KD_DIV, MODE>(out, a, b, s, n, it);
  }
  switch (op) {
    case KD_EQ: return launch_binary<T, KD_EQ, MODE>(out, a, b, s, n, it);
    case KD_NE: return launch_binary<T, KD_NE, MODE>(out, a, b, s, n, it);
    case KD_LT: return launch_binary<T, KD_LT, MODE>(out, a, b, s, n, it);
    case KD_LE: return launch_binary<T, KD_LE, MODE>(out, a, b, s, n, it);
    case KD_GT: return launch_binary<T, KD_GT, MODE>(out, a, b, s, n, it);
    case KD_GE: return launch_binary<T, KD_GE, MODE>(out, a, b, s, n, it);
    default: break;
  }
  return kd::fail(KD_ERR_DTYPE, "binary: op %d is not defined for this dtype", op);
}

template <int OP>
struct Unary {
  template <typename T>
  __device__ __forceinline__ static T apply(T x) {
    if constexpr (OP == KD_NEG) return -x;
    else if constexpr (OP == KD_EXP) return exp(x);
    else if constexpr (OP == KD_LOG) return log(x);
    else if constexpr (OP == KD_SQRT) return sqrt(x);
    else if constexpr (OP == KD_TANH) return tanh(x);
    else if constexpr (OP == KD_SIGMOID) {
      // exp of a non-positive argument only: no overflow for large |x|.
      T e = exp(-(x < T(0) ? -x : x));
      return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    } else if constexpr (OP == KD_ABS) return x < T(0) ? -x : x;
    else if constexpr (OP == KD_SIGN) return kd::is_nan(x) ? x : T((x > T(0)) - (x < T(0)));
    else return x < T(0) ? T(0) : x;  // relu keeps NaN, as np.maximum(x, 0) does
  }
};

template <typename T, int OP, int V>
__global__ void unary_contiguous(T *__restrict__ out, const T *__restrict__ a, int64_t n) {
  const int64_t nv = n / V;
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < nv; i += step) {
    Vec<T, V> va = reinterpret_cast<const Vec<T, V> *>(a)[i];
#pragma unroll
    for (int j = 0; j < V; ++j) va.v[j] = Unary<OP>::apply(va.v[j]);
    reinterpret_cast<Vec<T, V> *>(out)[i] = va;
  }
  for (int64_t i = nv * V + blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += step)
    out[i] = Unary<OP>::apply(a[i]);
}

template <typename T, int OP, typename I>
__global__ void unary_strided(T *out, const T *a, Offsets<I, 2> offs, I n) {
  for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    I o[2];
    offs.get(i, o);
    out[o[0]] = Unary<OP>::apply(a[o[1]]);
  }
}

template <typename T, int OP>
int launch_unary(void *out_, const void *a_, int64_t n, const kd_iter *it) {
  T *out = static_cast<T *>(out_);
  const T *a = static_cast<const T *>(a_);
  if (n == 0) return KD_OK;
  if (it == nullptr && aligned16(out) && aligned16(a)) {
    constexpr int V = 16 / sizeof(T);
    kd::launch(unary_contiguous<T, OP, V>, kd::grid_for(n / V + 1), kd::kThreads, out, a, n);
    return kd::check_launch("unary");
  }
  kd_iter c = it ? *it : contiguous_iter(n, 2);
  kd::collapse(c);
  if (kd::fits_int32(c))
    kd::launch(unary_strided<T, OP, int32_t>, kd::grid_for(n), kd::kThreads, out, a, Offsets<int32_t, 2>(c),
               (int32_t)n);
  else
    kd::launch(unary_strided<T, OP, int64_t>, kd::grid_for(n), kd::kThreads, out, a, Offsets<int64_t, 2>(c),
               n);
  return kd::check_launch("unary");
}

template <typename T>
int unary_op(int op, void *out, const void *a, int64_t n, const kd_iter *it) {
  switch (op) {
    case KD_NEG: return launch_unary<T, KD_NEG>(out, a, n, it);
    case KD_ABS: return launch_unary<T, KD_ABS>(out, a, n, it);
    case KD_SIGN: return launch_unary<T, KD_SIGN>(out, a, n, it);
    case KD_RELU: return launch_unary<T, KD_RELU>(out, a, n, it);
    default: break;
  }
  if constexpr (!std::is_same<T, int64_t>::value) {
    switch (op) {
      case KD_EXP: return launch_unary<T, KD_EXP>(out, a, n, it);
      case KD_LOG: return launch_unary<T, KD_LOG>(out, a, n, it);
      case KD_SQRT: return launch_unary<T, KD_SQRT>(out, a, n, it);
      case KD_TANH: return launch_unary<T, KD_TANH>(out, a, n, it);
      case KD_SIGMOID: return launch_unary<T, KD_SIGMOID>(out, a, n, it);
      default: break;
    }
  }
  return kd::fail(KD_ERR_DTYPE, "unary: op %d is not defined for this dtype", op);
}

template <typename T, typename I>
__global__ void clip_kernel(T *out, const T *a, T lo, T hi, int has_lo, int has_hi, Offsets<I, 2> offs, I n) {
  for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    I o[2];
    offs.get(i, o);
    T x = a[o[1]];
    if (has_lo) x = kd::nan_max(x, lo);
    if (has_hi) x = kd::nan_min(x, hi);
    out[o[0]] = x;
  }
}

template <typename T, typename I>
__global__ void where_kernel(T *out, const uint8_t *cond, const T *a, const T *b, T sa, T sb,
                             Offsets<I, 4> offs, I n) {
  for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    I o[4];
    offs.get(i, o);
    out[o[0]] = cond[o[1]] ? (a ? a[o[2]] : sa) : (b ? b[o[3]] : sb);
  }
}

template <typename T>
T host_scalar(kd_scalar s) {
  if constexpr (std::is_same<T, int64_t>::value) return s.i;
  else if constexpr (std::is_same<T, uint8_t>::value) return (uint8_t)(s.i != 0);
  else return (T)s.f;
}

// `s op a` as `a op' s` where one exists (commutative ops, mirrored compares); else -(op + 1).
int mirrored(int op) {
  switch (op) {
    case KD_ADD: case KD_MUL: case KD_MAXIMUM: case KD_MINIMUM: case KD_EQ: case KD_NE: return op;
    case KD_LT: return KD_GT;
    case KD_LE: return KD_GE;
    case KD_GT: return KD_LT;
    case KD_GE: return KD_LE;
    default: return -op - 1;
  }
}

}  // namespace

extern "C" int kd_binary(const kd_binary_args *g, const kd_iter *it) {
  KD_DISPATCH_ALL(g->dtype, "binary",
                  return binary_op<scalar_t, 0>(g->op, g->out, g->a, g->b, scalar_t(0), g->n, it));
  return KD_OK;
}

extern "C" int kd_binary_scalar(const kd_binary_scalar_args *g, const kd_iter *it) {
  int op = g->scalar_left ? mirrored(g->op) : g->op;
  KD_DISPATCH_ALL(g->dtype, "binary_scalar",
                  scalar_t v = host_scalar<scalar_t>(g->s);
                  return g->scalar_left && op < 0
                             ? binary_op<scalar_t, 2>(-op - 1, g->out, nullptr, g->a, v, g->n, it)
                             : binary_op<scalar_t, 1>(op, g->out, g->a, nullptr, v, g->n, it));
  return KD_OK;
}

extern "C" int kd_unary(const kd_unary_args *g, const kd_iter *it) {
  KD_DISPATCH_NUMERIC(g->dtype, "unary", return unary_op<scalar_t>(g->op, g->out, g->a, g->n, it));
  return KD_OK;
}

extern "C" int kd_clip(int dtype, void *out, const void *a, kd_scalar lo, kd_scalar hi, int has_lo,
                       int has_hi, int64_t n, const kd_iter *it) {
  if (n == 0) return KD_OK;
  kd_iter c = it ? *it : contiguous_iter(n, 2);
  kd::collapse(c);
  bool small = kd::fits_int32(c);
  KD_DISPATCH_NUMERIC(dtype, "clip",
    scalar_t l = host_scalar<scalar_t>(lo); scalar_t h = host_scalar<scalar_t>(hi);
    auto *o = static_cast<scalar_t *>(out); auto *x = static_cast<const scalar_t *>(a);
    if (small) kd::launch(clip_kernel<scalar_t, int32_t>, kd::grid_for(n), kd::kThreads, o, x, l, h, has_lo,
                          has_hi, Offsets<int32_t, 2>(c), (int32_t)n);
    else kd::launch(clip_kernel<scalar_t, int64_t>, kd::grid_for(n), kd::kThreads, o, x, l, h, has_lo, has_hi,
                    Offsets<int64_t, 2>(c), n));
  return kd::check_launch("clip");
}

extern "C" int kd_where(int dtype, void *out, const void *cond, const void *a, const void *b, kd_scalar sa,
                        kd_scalar sb, int64_t n, const kd_iter *it) {
  if (n == 0) return KD_OK;
  kd_iter c = it ? *it : contiguous_iter(n, 4);
  if (!a) for (int d = 0; d < KD_MAX_DIMS; ++d) c.strides[2][d] = 0;
  if (!b) for (int d = 0; d < KD_MAX_DIMS; ++d) c.strides[3][d] = 0;
  c.noperands = 4;
  kd::collapse(c);
  bool small = kd::fits_int32(c);
  const uint8_t *cd = static_cast<const uint8_t *>(cond);
  KD_DISPATCH_ALL(dtype, "where",
    auto *o = static_cast<scalar_t *>(out);
    auto *x = static_cast<const scalar_t *>(a); auto *y = static_cast<const scalar_t *>(b);
    scalar_t va = host_scalar<scalar_t>(sa); scalar_t vb = host_scalar<scalar_t>(sb);
    if (small) kd::launch(where_kernel<scalar_t, int32_t>, kd::grid_for(n), kd::kThreads, o, cd, x, y, va, vb,
                          Offsets<int32_t, 4>(c), (int32_t)n);
    else kd::launch(where_kernel<scalar_t, int64_t>, kd::grid_for(n), kd::kThreads, o, cd, x, y, va, vb,
                    Offsets<int64_t, 4>(c), n));
  return kd::check_launch("where");
}
