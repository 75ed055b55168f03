/* KeyDNN native CPU library: the plain C ABI that keydnn/infrastructure/backends/native_cpu/_lib.py binds.
 *
 * Every kernel returns a keydnn_status (0 = success). Arrays are C-contiguous; the Python side validates
 * shapes and dtypes before calling, and the kernels re-check what they need to stay in bounds.
 * Each op family lives in one source file under native/cpu/ and comes in _f32 and _f64 flavours.
 */
#ifndef KEYDNN_CPU_H
#define KEYDNN_CPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum keydnn_status {
    KEYDNN_OK = 0,
    KEYDNN_ERR_INVALID_ARGUMENT = 1, /* null pointer, non-positive size or inconsistent geometry */
    KEYDNN_ERR_INDEX_OUT_OF_RANGE = 2 /* an index array points outside its plane */
};

/* Geometry of one batched 2-D convolution over C-contiguous NCHW tensors; weight is (o, c/groups, kh, kw). */
typedef struct keydnn_conv_geom {
    int64_t n, c, h, w;  /* input batch, channels and spatial size */
    int64_t o, groups;   /* output channels; groups divides c and o */
    int64_t kh, kw;      /* kernel */
    int64_t sh, sw;      /* stride */
    int64_t ph, pw;      /* symmetric zero padding */
    int64_t dh, dw;      /* dilation */
    int64_t oh, ow;      /* output spatial size, must equal what the rest implies */
} keydnn_conv_geom;

/* Geometry of one 2-D pooling over `planes` = N*C contiguous H*W planes. */
typedef struct keydnn_pool_geom {
    int64_t planes, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
} keydnn_pool_geom;

const char* keydnn_cpu_status_string(int status);
int keydnn_cpu_max_threads(void);

/* blas_threads.cpp: a threads callback for OpenBLAS (openblas_set_threads_callback_function) that runs its
 * `numjobs` jobs, all at once, on this library's OpenMP team; keydnn_cpu_blas_calls counts the calls served. */
typedef void (*keydnn_blas_job)(int thread_num, void* jobdata, int job_arg);
void keydnn_cpu_blas_threads(int sync, keydnn_blas_job job, int numjobs, size_t jobdata_elsize, void* jobdata,
                             int job_arg);
uint64_t keydnn_cpu_blas_calls(void);

/* conv.cpp: y (n, o, oh, ow) = conv(x, w) + b (b may be NULL); gx and gw are overwritten. */
int keydnn_conv2d_forward_f32(const float* x, const float* w, const float* b, const keydnn_conv_geom* g, float* y);
int keydnn_conv2d_forward_f64(const double* x, const double* w, const double* b, const keydnn_conv_geom* g,
                              double* y);
int keydnn_conv2d_backward_input_f32(const float* gy, const float* w, const keydnn_conv_geom* g, float* gx);
int keydnn_conv2d_backward_input_f64(const double* gy, const double* w, const keydnn_conv_geom* g, double* gx);
int keydnn_conv2d_backward_weight_f32(const float* gy, const float* x, const keydnn_conv_geom* g, float* gw);
int keydnn_conv2d_backward_weight_f64(const double* gy, const double* x, const keydnn_conv_geom* g, double* gw);

/* pool.cpp: argmax is a flat index into each H*W plane (first maximum, NaN wins). */
int keydnn_max_pool2d_forward_f32(const float* x, const keydnn_pool_geom* g, float* y, int64_t* argmax);
int keydnn_max_pool2d_forward_f64(const double* x, const keydnn_pool_geom* g, double* y, int64_t* argmax);
/* gx (planes, in_plane) = scatter-add of gy (planes, out_plane) at argmax; the window geometry is not needed. */
int keydnn_max_pool2d_backward_f32(const float* gy, const int64_t* argmax, int64_t planes, int64_t in_plane,
                                   int64_t out_plane, float* gx);
int keydnn_max_pool2d_backward_f64(const double* gy, const int64_t* argmax, int64_t planes, int64_t in_plane,
                                   int64_t out_plane, double* gx);
int keydnn_avg_pool2d_forward_f32(const float* x, const keydnn_pool_geom* g, float* y);
int keydnn_avg_pool2d_forward_f64(const double* x, const keydnn_pool_geom* g, double* y);
int keydnn_avg_pool2d_backward_f32(const float* gy, const keydnn_pool_geom* g, float* gx);
int keydnn_avg_pool2d_backward_f64(const double* gy, const keydnn_pool_geom* g, double* gx);

/* norm.cpp: batch norm over x viewed as (n, c, s) per channel; layer norm over x viewed as (rows, m) per row.
 * gamma/beta may be NULL (no affine transform); ggamma/gbeta are then not written. */
int keydnn_batch_norm_forward_f32(const float* x, const float* gamma, const float* beta, int64_t n, int64_t c,
                                  int64_t s, double eps, float* y, float* mean, float* invstd);
int keydnn_batch_norm_forward_f64(const double* x, const double* gamma, const double* beta, int64_t n,
                                  int64_t c, int64_t s, double eps, double* y, double* mean, double* invstd);
int keydnn_batch_norm_backward_f32(const float* gy, const float* x, const float* gamma, const float* mean,
                                   const float* invstd, int64_t n, int64_t c, int64_t s, float* gx,
                                   float* ggamma, float* gbeta);
int keydnn_batch_norm_backward_f64(const double* gy, const double* x, const double* gamma,
                                   const double* mean, const double* invstd, int64_t n, int64_t c, int64_t s,
                                   double* gx, double* ggamma, double* gbeta);
int keydnn_layer_norm_forward_f32(const float* x, const float* gamma, const float* beta, int64_t rows,
                                  int64_t m, double eps, float* y, float* mean, float* invstd);
int keydnn_layer_norm_forward_f64(const double* x, const double* gamma, const double* beta, int64_t rows,
                                  int64_t m, double eps, double* y, double* mean, double* invstd);
int keydnn_layer_norm_backward_f32(const float* gy, const float* x, const float* gamma, const float* mean,
                                   const float* invstd, int64_t rows, int64_t m, float* gx, float* ggamma,
                                   float* gbeta);
int keydnn_layer_norm_backward_f64(const double* gy, const double* x, const double* gamma,
                                   const double* mean, const double* invstd, int64_t rows, int64_t m,
                                   double* gx, double* ggamma, double* gbeta);

/* recurrent.cpp: one LSTM step's gates. v (n, 4h) pre-activations i, f, g, o with the sigmoid columns halved;
 * outputs h, c, tanh(c) (n, h) and u = tanh(v) (n, 4h). Backward: dh, dc (NULL: zero) (n, h) -> dv, dc_prev. */
/* recurrent.cpp, the whole LSTM sequence: keydnn_cpu_bind_gemm gives the library cblas_sgemm / cblas_dgemm (ILP64 when
 * ilp64); without it the sequence entry points return KEYDNN_ERR_INVALID_ARGUMENT. */
void keydnn_cpu_bind_gemm(void* sgemm, void* dgemm, int ilp64);
int keydnn_lstm_sequence_forward_f32(const float* gx, const float* h0, const float* c0, const float* w, int64_t steps,
                                     int64_t n, int64_t h, int reverse, float* out, float* u, float* cs, float* tcs);
int keydnn_lstm_sequence_forward_f64(const double* gx, const double* h0, const double* c0, const double* w,
                                     int64_t steps, int64_t n, int64_t h, int reverse, double* out, double* u,
                                     double* cs, double* tcs);
int keydnn_lstm_sequence_backward_f32(const float* g, const float* u, const float* cs, const float* tcs,
                                      const float* c0, const float* w, int64_t steps, int64_t n, int64_t h,
                                      int reverse, float* dz, float* dh0, float* dc0, float* work);
int keydnn_lstm_sequence_backward_f64(const double* g, const double* u, const double* cs, const double* tcs,
                                      const double* c0, const double* w, int64_t steps, int64_t n, int64_t h,
                                      int reverse, double* dz, double* dh0, double* dc0, double* work);
int keydnn_lstm_gates_forward_f32(const float* v, const float* c_prev, int64_t n, int64_t h, float* h_out,
                                  float* c_out, float* u_out, float* tc_out);
int keydnn_lstm_gates_forward_f64(const double* v, const double* c_prev, int64_t n, int64_t h, double* h_out,
                                  double* c_out, double* u_out, double* tc_out);
int keydnn_lstm_gates_backward_f32(const float* dh, const float* dc, const float* u, const float* c_prev,
                                   const float* tc, int64_t n, int64_t h, float* dv, float* dc_prev);
int keydnn_lstm_gates_backward_f64(const double* dh, const double* dc, const double* u, const double* c_prev,
                                   const double* tc, int64_t n, int64_t h, double* dv, double* dc_prev);

#ifdef __cplusplus
}
#endif

#endif /* KEYDNN_CPU_H */
