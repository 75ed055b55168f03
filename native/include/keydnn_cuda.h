/* KeyDNN's CUDA kernel library: the plain C ABI bound by keydnn/infrastructure/backends/cuda/_lib.py.
 *
 * Every function returns a kd_status (kd_gemm: cuBLAS's status; the *_workspace and kd_sizeof queries: a
 * size); on failure kd_last_error() holds the message (thread-local). All work runs on the stream set by
 * kd_set_stream (the legacy default stream, 0, unless changed: CUDA graph capture switches it) and never
 * synchronises. Pointers are device addresses of the first
 * element of a view; strides and offsets count elements, and may be negative.
 */
#ifndef KEYDNN_CUDA_H
#define KEYDNN_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KD_MAX_DIMS 8
#define KD_MAX_OPERANDS 4

/* dtype codes: the order of storage.SUPPORTED_DTYPES */
enum { KD_F32 = 0, KD_F64 = 1, KD_I64 = 2, KD_BOOL = 3 };

enum kd_status { KD_OK = 0, KD_ERR_ARGUMENT = 1, KD_ERR_DTYPE = 2, KD_ERR_CUDA = 3 };

/* binary ops; the compare ops (KD_EQ and after) write bool */
enum {
  KD_ADD = 0, KD_SUB, KD_MUL, KD_DIV, KD_POW, KD_MAXIMUM, KD_MINIMUM, KD_RELU_BACKWARD,
  KD_EQ, KD_NE, KD_LT, KD_LE, KD_GT, KD_GE
};
enum { KD_NEG = 0, KD_EXP, KD_LOG, KD_SQRT, KD_TANH, KD_SIGMOID, KD_ABS, KD_SIGN, KD_RELU };
enum { KD_SUM = 0, KD_MAX, KD_MIN, KD_ARGMAX };

/* Broadcast iteration space: operand 0 is the output, 1.. the inputs; stride 0 broadcasts. */
typedef struct {
  int32_t ndim;
  int32_t noperands;
  int64_t shape[KD_MAX_DIMS];
  int64_t strides[KD_MAX_OPERANDS][KD_MAX_DIMS];
} kd_iter;

/* A scalar operand, read as .f by float kernels and as .i by int64/bool kernels. */
typedef struct {
  double f;
  int64_t i;
} kd_scalar;

typedef struct {
  int64_t n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
} kd_pool2d;

/* A check a kernel cannot raise: the first failing launch in stream order (while ticket == 0) writes its
 * ticket (> 0), the index of the offending element and its value. The host reads the record after its next
 * synchronisation, raises the error there and clears the record. */
typedef struct {
  int64_t ticket, index, value;
} kd_fault;

const char *kd_last_error(void);
int kd_abi_version(void);
/* the cudaStream_t every later launch, copy and memset goes to (process-wide; NULL: the legacy stream) */
int kd_set_stream(void *stream);
void *kd_get_stream(void);

/* The hottest entry points take their arguments in one record (kd_*_args) plus the iteration space:
 * Python packs the record with one precompiled struct call, and ctypes hands a bytes object to a pointer
 * parameter without converting anything, where each separately declared argument costs a conversion.
 * kd_sizeof() reports the record sizes so the Python side can refuse a library whose layout differs.
 * it == NULL means every operand is contiguous with n elements. */
typedef struct {
  int32_t op, dtype;
  void *out;
  const void *a, *b;
  int64_t n;
} kd_binary_args;
/* scalar_left: 0 -> out = a op s, 1 -> out = s op a */
typedef struct {
  int32_t op, dtype;
  void *out;
  const void *a;
  kd_scalar s;
  int32_t scalar_left, pad_;
  int64_t n;
} kd_binary_scalar_args;
typedef struct {
  int32_t op, dtype;
  void *out;
  const void *a;
  int64_t n;
} kd_unary_args;
/* dtype codes of the output and of the input */
typedef struct {
  int32_t out_dtype, in_dtype;
  void *out;
  const void *a;
  int64_t n;
} kd_cast_args;
typedef struct {
  int32_t dtype, pad_;
  void *out;
  kd_scalar value;
  int64_t n;
} kd_fill_args;

/* One cuBLAS GEMM in cuBLAS's own (column-major) terms: batch == 1 calls cublasGemmEx, more calls
 * cublasGemmStridedBatchedEx with the element strides. A, B and C share `dtype` (a cudaDataType). */
typedef struct {
  void *handle;
  const void *alpha, *beta; /* host scalars (CUBLAS_POINTER_MODE_HOST) */
  const void *a, *b;
  void *c;
  int64_t stride_a, stride_b, stride_c;
  int32_t transa, transb, m, n, k, lda, ldb, ldc, dtype, compute, batch, algo;
} kd_gemm_args;

/* sizeof the record named by `name` ("kd_binary_args", ...), or -1 for an unknown name */
int64_t kd_sizeof(const char *name);

int kd_binary(const kd_binary_args *args, const kd_iter *it);
int kd_binary_scalar(const kd_binary_scalar_args *args, const kd_iter *it);
int kd_unary(const kd_unary_args *args, const kd_iter *it);
int kd_clip(int dtype, void *out, const void *a, kd_scalar lo, kd_scalar hi, int has_lo, int has_hi,
            int64_t n, const kd_iter *it);
/* a or b NULL: use the scalar instead */
int kd_where(int dtype, void *out, const void *cond, const void *a, const void *b, kd_scalar sa,
             kd_scalar sb, int64_t n, const kd_iter *it);
int kd_cast(const kd_cast_args *args, const kd_iter *it);
int kd_fill(const kd_fill_args *args, const kd_iter *it);
int kd_arange(int dtype, void *out, kd_scalar start, kd_scalar step, int64_t n);

/* cuBLAS GEMM through addresses bound once: kd_blas_bind takes cublasGemmEx and
 * cublasGemmStridedBatchedEx; kd_gemm returns cuBLAS's status (CUBLAS_STATUS_NOT_INITIALIZED unbound). */
int kd_blas_bind(void *gemm_ex, void *gemm_strided_batched_ex);
int kd_gemm(const kd_gemm_args *args);

/* gru_seed.cu: the seed's GRU (reset before the recurrent product) over a whole sequence; `handle` is a cuBLAS
 * handle, `compute` a cublasComputeType_t; the arrays are contiguous, laid out as composite_rnn.py's. */
int kd_gru_seed_forward(int dtype, void *handle, int compute, const void *gx, const void *h0, const void *w,
                        const void *wn, int64_t steps, int64_t n, int64_t h, int reverse, void *out, void *zrs,
                        void *ns, void *es, void *gh, void *gn);
int kd_gru_seed_backward(int dtype, void *handle, int compute, const void *g, const void *h0, const void *out,
                         const void *zrs, const void *ns, const void *w, const void *wn, int64_t steps, int64_t n,
                         int64_t h, int reverse, void *dgx, void *dh0, void *dz, void *drh, void *ca, void *cb);

/* reductions over the middle axis of a contiguous (outer, k, inner) array; out is (outer, inner) */
int64_t kd_reduce_workspace(int op, int dtype, int64_t outer, int64_t k, int64_t inner);
int kd_reduce(int op, int dtype, void *out, const void *a, int64_t outer, int64_t k, int64_t inner,
              void *workspace, int64_t workspace_bytes);

/* indexing: rows of `inner` elements at element offsets; the inner block is strided as `inner_it`
 * describes (operand 1 = source/destination inside the array, operand 0 = the packed side) */
int kd_gather(int dtype, void *out, const void *src, const int64_t *offsets, int64_t rows,
              const kd_iter *inner_it);
int kd_scatter(int dtype, void *dst, const int64_t *offsets, const void *values, int64_t rows,
               const kd_iter *inner_it, int accumulate);
/* offsets (outer * n_idx) of a[..., idx, ...] for an int64 index on one axis (dim_size, dim_stride), computed
 * on the device; outer_it walks the axes before it (operand 1: their strides in a; NULL when there are none).
 * An out-of-range index records `fault` (see kd_fault) instead of failing the call. */
int kd_index_offsets(int64_t *offsets, const int64_t *idx, int64_t n_idx, int64_t dim_size, int64_t dim_stride,
                     int64_t base, int64_t outer, const kd_iter *outer_it, kd_fault *fault, int64_t ticket);

/* random numbers: Philox4x32-10 keyed by seed, counter = element group; deterministic per seed */
int kd_uniform(int dtype, void *out, int64_t n, double low, double high, uint64_t seed);
int kd_normal(int dtype, void *out, int64_t n, double mean, double std, uint64_t seed);
int kd_dropout_mask(int dtype, void *out, int64_t n, double p, uint64_t seed);

/* softmax over the middle axis of a contiguous (outer, k, inner) array */
int kd_softmax(int dtype, void *out, const void *a, int64_t outer, int64_t k, int64_t inner, int log);
/* A label outside [0, c) gives that row a NaN loss and, when `fault` is given, is recorded there under
 * `ticket` (see kd_fault) */
int kd_softmax_xent_forward(int dtype, void *loss, void *probs, const void *logits, const int64_t *labels,
                            int64_t n, int64_t c, kd_fault *fault, int64_t ticket);
int kd_softmax_xent_backward(int dtype, void *dlogits, const void *probs, const int64_t *labels,
                             const void *g, int64_t n, int64_t c);

/* fused multi-tensor optimizer steps over `count` contiguous tensors (host arrays of device pointers) */
int kd_sgd_step(int dtype, int64_t count, void *const *params, const void *const *grads, void *const *bufs,
                const int64_t *sizes, double lr, double momentum, double dampening, int nesterov,
                double weight_decay);
int kd_adam_step(int dtype, int64_t count, void *const *params, const void *const *grads, void *const *m,
                 void *const *v, const int64_t *sizes, double lr, double beta1, double beta2, double eps,
                 double weight_decay, int64_t step, int decoupled, const void *scalars);
/* Adam's bias corrections for `step` as kd_adam_step computes them: host_out[0] = 1 / (1 - beta2^step),
 * host_out[1] = lr / (1 - beta1^step), in `dtype`. kd_adam_step reads them from the device array `scalars`
 * (two elements of dtype) instead when it is not NULL: a captured CUDA graph replays frozen arguments, so its
 * host hook writes each replay's corrections there. */
int kd_adam_scalars(int dtype, double lr, double beta1, double beta2, int64_t step, void *host_out);

/* pooling on contiguous NCHW; argmax is a flat index into each H*W plane */
int kd_max_pool2d_forward(int dtype, void *y, int64_t *argmax, const void *x, const kd_pool2d *p);
int kd_max_pool2d_backward(int dtype, void *gx, const void *gy, const int64_t *argmax, const kd_pool2d *p);
int kd_avg_pool2d_forward(int dtype, void *y, const void *x, const kd_pool2d *p);
int kd_avg_pool2d_backward(int dtype, void *gx, const void *gy, const kd_pool2d *p);

/* layer norm over the trailing `cols` elements of each of `rows` contiguous rows; gamma/beta may be NULL */
int kd_layer_norm_forward(int dtype, void *y, void *mean, void *invstd, const void *x, const void *gamma,
                          const void *beta, int64_t rows, int64_t cols, double eps);
int64_t kd_layer_norm_backward_workspace(int dtype, int64_t rows, int64_t cols);
int kd_layer_norm_backward(int dtype, void *gx, void *ggamma, void *gbeta, const void *gy, const void *x,
                           const void *gamma, const void *mean, const void *invstd, int64_t rows,
                           int64_t cols, void *workspace, int64_t workspace_bytes);

#ifdef __cplusplus
}
#endif

#endif /* KEYDNN_CUDA_H */
