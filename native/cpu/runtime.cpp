// Library-wide helpers: status strings and the OpenMP thread count reported by `python -m keydnn info`.
#include "keydnn_cpu.h"

#ifdef _OPENMP
#include <omp.h>
#endif

extern "C" const char* keydnn_cpu_status_string(int status) {
    switch (status) {
        case KEYDNN_OK: return "success";
        case KEYDNN_ERR_INVALID_ARGUMENT: return "invalid argument (null pointer or inconsistent geometry)";
        case KEYDNN_ERR_INDEX_OUT_OF_RANGE: return "index out of range";
        default: return "unknown status";
    }
}

extern "C" int keydnn_cpu_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
