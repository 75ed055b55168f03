// A packed-argument entry to cuBLAS GEMM. cuBLAS is bound by Python (ctypes) and not linked here, so this
// library builds without cuBLAS headers: Python hands over the addresses of cublasGemmEx and
// cublasGemmStridedBatchedEx once (kd_blas_bind), and kd_gemm calls them with a record's fields. That makes
// a GEMM one ctypes call with one bytes argument instead of 19-23 converted ones. The prototypes below are
// cuBLAS's C ABI (cublas_api.h): its enums (cublasOperation_t, cudaDataType, cublasComputeType_t,
// cublasGemmAlgo_t) are passed as int.
#include "kd_common.cuh"

namespace {

using gemm_ex_fn = int (*)(void *handle, int transa, int transb, int m, int n, int k, const void *alpha,
                           const void *A, int a_type, int lda, const void *B, int b_type, int ldb,
                           const void *beta, void *C, int c_type, int ldc, int compute, int algo);
using gemm_strided_fn = int (*)(void *handle, int transa, int transb, int m, int n, int k, const void *alpha,
                                const void *A, int a_type, int lda, long long stride_a, const void *B,
                                int b_type, int ldb, long long stride_b, const void *beta, void *C,
                                int c_type, int ldc, long long stride_c, int batch, int compute, int algo);

gemm_ex_fn g_gemm = nullptr;
gemm_strided_fn g_gemm_strided = nullptr;

constexpr int kCublasNotInitialized = 1;  // CUBLAS_STATUS_NOT_INITIALIZED

}  // namespace

extern "C" int kd_blas_bind(void *gemm_ex, void *gemm_strided_batched_ex) {
  if (gemm_ex == nullptr || gemm_strided_batched_ex == nullptr)
    return kd::fail(KD_ERR_ARGUMENT, "blas_bind: null cuBLAS function address");
  g_gemm = reinterpret_cast<gemm_ex_fn>(gemm_ex);
  g_gemm_strided = reinterpret_cast<gemm_strided_fn>(gemm_strided_batched_ex);
  return KD_OK;
}

extern "C" int kd_gemm(const kd_gemm_args *g) {
  if (g_gemm == nullptr || g_gemm_strided == nullptr) return kCublasNotInitialized;
  if (g->batch == 1)
    return g_gemm(g->handle, g->transa, g->transb, g->m, g->n, g->k, g->alpha, g->a, g->dtype, g->lda, g->b,
                  g->dtype, g->ldb, g->beta, g->c, g->dtype, g->ldc, g->compute, g->algo);
  return g_gemm_strided(g->handle, g->transa, g->transb, g->m, g->n, g->k, g->alpha, g->a, g->dtype, g->lda,
                        g->stride_a, g->b, g->dtype, g->ldb, g->stride_b, g->beta, g->c, g->dtype, g->ldc,
                        g->stride_c, g->batch, g->compute, g->algo);
}

namespace kd {

// Row-major C (m, n) = A (m, k) @ op(B) + beta C, op(B) = B (k, n) or (trans_b) B^T with B stored (n, k); host
// alpha = 1 and beta. In cuBLAS's column-major terms that is C^T = op(B)^T A^T. Returns cuBLAS's status.
int gemm_rows(void *handle, int dtype, int compute, bool trans_b, int64_t m, int64_t n, int64_t k, const void *a,
              int64_t lda, const void *b, int64_t ldb, const void *one, const void *beta, void *c, int64_t ldc) {
  if (g_gemm == nullptr) return kCublasNotInitialized;
  return g_gemm(handle, trans_b ? 1 : 0, 0, (int)n, (int)m, (int)k, one, b, dtype, (int)ldb, a, dtype, (int)lda,
                beta, c, dtype, (int)ldc, compute, -1);
}

}  // namespace kd
