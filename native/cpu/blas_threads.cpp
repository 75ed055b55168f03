// OpenBLAS's parallel jobs run on this library's OpenMP team (openblas_set_threads_callback_function), so NumPy's
// matmuls and KeyDNN's kernels share one pool of threads instead of two pools spinning against each other.
//
// OpenBLAS hands over `numjobs` jobs that must all run at the same time: the level-3 jobs wait on each other's
// progress flags, so running them one after another on fewer threads would deadlock. A team that comes out
// smaller than asked (nested region, OMP_THREAD_LIMIT, dynamic adjustment) gets plain threads for the rest.
#include <atomic>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

#include "keydnn_cpu.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

std::atomic<uint64_t> g_calls{0};
// One BLAS call at a time on the pool: OpenBLAS's own server serialises its queue the same way, and a job's
// per-thread scratch buffers are indexed by the job number we pass as its thread number.
std::mutex g_pool;

void run_job(keydnn_blas_job job, int index, char* data, size_t elsize, int job_arg) {
    job(index, data + static_cast<size_t>(index) * elsize, job_arg);
}

// Jobs [first, numjobs) on threads of their own, job `mine` on the caller; joins before returning.
void run_with_threads(keydnn_blas_job job, int mine, int first, int numjobs, char* data, size_t elsize,
                      int job_arg) {
    std::vector<std::thread> extra;
    extra.reserve(static_cast<size_t>(numjobs - first));
    for (int j = first; j < numjobs; ++j) extra.emplace_back(run_job, job, j, data, elsize, job_arg);
    run_job(job, mine, data, elsize, job_arg);
    for (auto& t : extra) t.join();
}

}  // namespace

extern "C" void keydnn_cpu_blas_threads(int /*sync*/, keydnn_blas_job job, int numjobs, size_t jobdata_elsize,
                                        void* jobdata, int job_arg) {
    // `sync` is 1 from every OpenBLAS caller; running synchronously is correct for either value.
    if (!job || numjobs < 1) return;
    g_calls.fetch_add(1, std::memory_order_relaxed);
    char* data = static_cast<char*>(jobdata);
    std::lock_guard<std::mutex> lock(g_pool);
    if (numjobs == 1) {
        run_job(job, 0, data, jobdata_elsize, job_arg);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(numjobs)
    {
        const int team = omp_get_num_threads(), tid = omp_get_thread_num();
        if (tid == 0 && team < numjobs)
            run_with_threads(job, 0, team, numjobs, data, jobdata_elsize, job_arg);
        else
            run_job(job, tid, data, jobdata_elsize, job_arg);
    }
#else
    run_with_threads(job, 0, 1, numjobs, data, jobdata_elsize, job_arg);
#endif
}

extern "C" uint64_t keydnn_cpu_blas_calls(void) { return g_calls.load(std::memory_order_relaxed); }
