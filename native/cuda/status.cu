// Library-wide plumbing: the thread-local error message, launch checks, device facts and iteration-space
// collapsing shared by every kernel family.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kd_common.cuh"

namespace {
thread_local char g_error[512] = "";
int g_sms[64] = {0};
}  // namespace

namespace kd {

int fail(int code, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(g_error, sizeof(g_error), fmt, args);
  va_end(args);
  return code;
}

int check_launch(const char *op) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return fail(KD_ERR_CUDA, "%s: %s (cuda error %d)", op, cudaGetErrorString(err),
                                      (int)err);
  return KD_OK;
}

int num_sms() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return 108;
  if (g_sms[dev] == 0) {
    int count = 0;
    cudaError_t err = cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev);
    if (err != cudaSuccess || count <= 0) count = 108;
    g_sms[dev] = count;
  }
  return g_sms[dev];
}

void collapse(kd_iter &it) {
  int nops = it.noperands;
  // Drop size-1 dims (their strides never matter).
  int nd = 0;
  for (int d = 0; d < it.ndim; ++d) {
    if (it.shape[d] == 1) continue;
    it.shape[nd] = it.shape[d];
    for (int k = 0; k < nops; ++k) it.strides[k][nd] = it.strides[k][d];
    ++nd;
  }
  if (nd == 0) {  // a single element
    it.ndim = 1;
    it.shape[0] = 1;
    for (int k = 0; k < nops; ++k) it.strides[k][0] = 0;
    return;
  }
  // Merge dim d into d+1 (the inner one) when every operand steps over d exactly as a run of d+1.
  int out = 0;
  for (int d = 1; d < nd; ++d) {
    bool merge = true;
    for (int k = 0; k < nops; ++k)
      if (it.strides[k][out] != it.strides[k][d] * it.shape[d]) merge = false;
    if (merge) {
      it.shape[out] *= it.shape[d];
      for (int k = 0; k < nops; ++k) it.strides[k][out] = it.strides[k][d];
    } else {
      ++out;
      it.shape[out] = it.shape[d];
      for (int k = 0; k < nops; ++k) it.strides[k][out] = it.strides[k][d];
    }
  }
  it.ndim = out + 1;
}

bool fits_int32(const kd_iter &it) {
  const int64_t lim = (int64_t)1 << 30;
  int64_t n = 1;
  for (int d = 0; d < it.ndim; ++d) n *= it.shape[d];
  if (n >= lim) return false;
  for (int k = 0; k < it.noperands; ++k) {
    int64_t span = 0;
    for (int d = 0; d < it.ndim; ++d) {
      int64_t s = it.strides[k][d] < 0 ? -it.strides[k][d] : it.strides[k][d];
      span += s * (it.shape[d] - 1);
    }
    if (span >= lim) return false;
  }
  return true;
}

}  // namespace kd

extern "C" const char *kd_last_error(void) { return g_error; }

extern "C" int kd_abi_version(void) { return 1; }
