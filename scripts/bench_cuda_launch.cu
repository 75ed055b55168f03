// Host cost of one kernel launch, four ways, for KeyDNN's own contiguous float32 add kernel: the runtime's
// <<<>>>, cudaLaunchKernel, the driver's cuLaunchKernel with a cached CUfunction (what kd::launch does), and
// the library's whole kd_binary entry. Rounds alternate between the four; medians of 9 rounds of 20,000
// launches, synchronised before each clock read. Prints a markdown table.
//
//   nvcc -O3 -std=c++17 -arch=sm_90 -I native/include scripts/bench_cuda_launch.cu native/cuda/status.cu \
//        -o /tmp/bench_cuda_launch -lcuda && /tmp/bench_cuda_launch
#include <cuda.h>
#include <stdio.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "../native/cuda/elementwise.cu"  // the kernel templates live in an anonymous namespace there

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

int main() {
  float *a, *b, *o;
  if (cudaMalloc(&a, 64) || cudaMalloc(&b, 64) || cudaMalloc(&o, 64)) return 1;
  auto kernel = binary_contiguous<float, KD_ADD, 0, 4>;
  CUfunction fn;
  if (cudaGetFuncBySymbol(reinterpret_cast<cudaFunction_t *>(&fn), (const void *)kernel) != cudaSuccess)
    return 1;
  float s = 0.f;
  int64_t n = 1;
  void *args[] = {&o, &a, &b, &s, &n};
  kd_binary_args record{KD_ADD, KD_F32, o, a, b, 1};
  const char *names[] = {"<<<>>>", "cudaLaunchKernel", "cuLaunchKernel, cached CUfunction (kd::launch)",
                         "kd_binary (the library's entry)"};
  const int kLaunches = 20000, kRounds = 9;
  std::vector<double> us[4];
  for (int round = -1; round < kRounds; ++round) {  // round -1 warms up
    for (int way = 0; way < 4; ++way) {
      cudaDeviceSynchronize();
      double t0 = now();
      for (int i = 0; i < kLaunches; ++i) {
        if (way == 0) kernel<<<1, kd::kThreads>>>(o, a, b, s, n);
        else if (way == 1) cudaLaunchKernel((const void *)kernel, 1, kd::kThreads, args, 0, nullptr);
        else if (way == 2) cuLaunchKernel(fn, 1, 1, 1, kd::kThreads, 1, 1, 0, nullptr, args, nullptr);
        else kd_binary(&record, nullptr);
      }
      cudaDeviceSynchronize();
      if (round >= 0) us[way].push_back((now() - t0) / kLaunches * 1e6);
    }
  }
  if (cudaGetLastError() != cudaSuccess) return 1;
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  printf("# Host cost of one kernel launch (KeyDNN's float32 add, 1 element)\n\nGPU: %s\n\n", prop.name);
  printf("| launch | us per launch |\n|---|---:|\n");
  for (int way = 0; way < 4; ++way) {
    std::sort(us[way].begin(), us[way].end());
    printf("| %s | %.2f |\n", names[way], us[way][kRounds / 2]);
  }
  printf("\nMedians of %d alternating rounds of %d launches, synchronised before each clock read.\n", kRounds,
         kLaunches);
  return 0;
}
