// Library-wide plumbing: the thread-local error message, launch checks, device facts and iteration-space
// collapsing shared by every kernel family.
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cuda.h>

#include "kd_common.cuh"

namespace {
thread_local char g_error[512] = "";
int g_sms[64] = {0};

// cuLaunchKernel and cuGetErrorString, fetched from the driver through the runtime (so the library needs no
// link against libcuda); null where the driver does not offer them.
using LaunchKernelFn = CUresult (*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                    unsigned, CUstream, void **, void **);
using ErrorStringFn = CUresult (*)(CUresult, const char **);

template <typename F>
F driver_function(const char *name) {
  void *fn = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  if (cudaGetDriverEntryPointByVersion(name, &fn, 12000, cudaEnableDefault, &found) != cudaSuccess ||
      found != cudaDriverEntryPointSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return reinterpret_cast<F>(fn);
}

struct CachedFunction {
  const void *kernel;
  int device;
  CUfunction fn;
};
constexpr int kFunctionSlots = 512;

// Per-thread launch state in one thread_local (each thread_local of a shared library costs a TLS lookup).
struct LaunchState {
  // Direct-mapped cache of (host stub, device) -> CUfunction; a collision just looks the function up again.
  CachedFunction functions[kFunctionSlots];
  // The first launch failure since the last check_launch: a driver CUresult or a runtime cudaError_t.
  int driver_error;
  int runtime_error;
};
thread_local LaunchState g_launch = {};

// The multiprocessor count shared by every device, or 0 when they differ (or cannot be asked).
int uniform_sm_count() {
  int count = 0, shared = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count <= 0) {
    cudaGetLastError();
    return 0;
  }
  for (int dev = 0; dev < count; ++dev) {
    int sms = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || sms <= 0) {
      cudaGetLastError();
      return 0;
    }
    if (shared != 0 && sms != shared) return 0;
    shared = sms;
  }
  return shared;
}
}  // namespace

namespace kd {

cudaStream_t g_stream = nullptr;

int fail(int code, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(g_error, sizeof(g_error), fmt, args);
  va_end(args);
  return code;
}

void launch_raw(const void *kernel, dim3 grid, dim3 block, size_t shared, void **args) {
  // KEYDNN_CUDA_RUNTIME_LAUNCH=1 keeps every launch on cudaLaunchKernel (for comparisons and as a fallback).
  static const LaunchKernelFn driver_launch =
      getenv("KEYDNN_CUDA_RUNTIME_LAUNCH") ? nullptr : driver_function<LaunchKernelFn>("cuLaunchKernel");
  LaunchState &state = g_launch;
  int dev = 0;
  if (driver_launch != nullptr && cudaGetDevice(&dev) == cudaSuccess) {
    CachedFunction &slot =
        state.functions[(((uintptr_t)kernel >> 4) ^ ((uintptr_t)dev * 40503u)) % kFunctionSlots];
    if (slot.kernel != kernel || slot.device != dev) {
      cudaFunction_t fn = nullptr;
      if (cudaGetFuncBySymbol(&fn, kernel) == cudaSuccess && fn != nullptr) {
        slot = {kernel, dev, reinterpret_cast<CUfunction>(fn)};
      } else {
        cudaGetLastError();
        slot = {};
      }
    }
    if (slot.kernel == kernel) {
      CUresult r = driver_launch(slot.fn, grid.x, grid.y, grid.z, block.x, block.y, block.z, (unsigned)shared,
                                 reinterpret_cast<CUstream>(g_stream), args, nullptr);
      if (r != CUDA_SUCCESS && state.driver_error == 0) state.driver_error = (int)r;
      return;
    }
  }
  cudaError_t err = cudaLaunchKernel(kernel, grid, block, args, shared, g_stream);
  if (err != cudaSuccess && state.runtime_error == 0) state.runtime_error = (int)err;
}

int check_launch(const char *op) {
  LaunchState &state = g_launch;
  if (state.driver_error != 0) {
    static const ErrorStringFn error_string = driver_function<ErrorStringFn>("cuGetErrorString");
    const int code = state.driver_error;
    state.driver_error = 0;
    const char *msg = nullptr;
    if (error_string == nullptr || error_string((CUresult)code, &msg) != CUDA_SUCCESS || msg == nullptr)
      msg = "unknown driver error";
    cudaGetLastError();
    return fail(KD_ERR_CUDA, "%s: %s (CUDA driver error %d)", op, msg, code);
  }
  cudaError_t err = cudaGetLastError();  // read (and clear) either way
  if (state.runtime_error != 0) {  // a fallback launch's own failure comes first
    err = (cudaError_t)state.runtime_error;
    state.runtime_error = 0;
  }
  if (err != cudaSuccess) return fail(KD_ERR_CUDA, "%s: %s (cuda error %d)", op, cudaGetErrorString(err),
                                      (int)err);
  return KD_OK;
}

int num_sms() {
  static const int uniform = uniform_sm_count();  // the usual machine: no need to ask which device is current
  if (uniform > 0) return uniform;
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

extern "C" int kd_abi_version(void) { return 3; }

// Process-wide, not per thread: KeyDNN drives the device from one Python thread (the library is a PyDLL).
extern "C" int kd_set_stream(void *stream) {
  kd::g_stream = static_cast<cudaStream_t>(stream);
  return KD_OK;
}

extern "C" void *kd_get_stream(void) { return kd::g_stream; }

extern "C" int64_t kd_sizeof(const char *name) {
  static const struct {
    const char *name;
    int64_t size;
  } sizes[] = {{"kd_iter", sizeof(kd_iter)},
               {"kd_scalar", sizeof(kd_scalar)},
               {"kd_fault", sizeof(kd_fault)},
               {"kd_pool2d", sizeof(kd_pool2d)},
               {"kd_binary_args", sizeof(kd_binary_args)},
               {"kd_binary_scalar_args", sizeof(kd_binary_scalar_args)},
               {"kd_unary_args", sizeof(kd_unary_args)},
               {"kd_cast_args", sizeof(kd_cast_args)},
               {"kd_fill_args", sizeof(kd_fill_args)},
               {"kd_gemm_args", sizeof(kd_gemm_args)}};
  for (const auto &s : sizes)
    if (strcmp(s.name, name) == 0) return s.size;
  return -1;
}
