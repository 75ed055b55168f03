"""The kernel contract: every backend (numpy, native_cpu, cuda) offers these names with these signatures.

Kernels take and return *storage* (a NumPy array on the CPU, a ``CudaArray`` on CUDA) and know nothing
of autograd. Semantics are NumPy's unless stated. Ops call ``kernels_for(device).<name>(...)``.
``b`` arguments of binary kernels may also be Python scalars (on either side for subtract/divide/power).
"""

KERNELS: dict[str, str] = {
    # creation and transfer (creation kernels allocate on the table's own device)
    "empty": "(shape, dtype) -> uninitialised array",
    "zeros": "(shape, dtype)",
    "full": "(shape, value, dtype)",
    "arange": "(start, stop, step, dtype) -> 1-D",
    "uniform": "(shape, low, high, dtype, seed) -> U[low, high)",
    "normal": "(shape, mean, std, dtype, seed) -> N(mean, std^2)",
    "dropout_mask": "(shape, p, dtype, seed) -> array of 0 and 1/(1-p), keep probability 1-p",
    "from_host": "(ndarray) -> storage on this device (a copy)",
    "to_host": "(storage) -> ndarray (a copy for device storage)",
    # elementwise with broadcasting; out= writes in place into an existing array of the result shape
    "add": "(a, b, out=None)",
    "subtract": "(a, b, out=None)",
    "multiply": "(a, b, out=None)",
    "divide": "(a, b, out=None)",
    "power": "(a, b, out=None)",
    "maximum": "(a, b, out=None)",
    "minimum": "(a, b, out=None)",
    "equal": "(a, b) -> bool",
    "not_equal": "(a, b) -> bool",
    "less": "(a, b) -> bool",
    "less_equal": "(a, b) -> bool",
    "greater": "(a, b) -> bool",
    "greater_equal": "(a, b) -> bool",
    "negative": "(a)",
    "exp": "(a)",
    "log": "(a)",
    "sqrt": "(a)",
    "tanh": "(a)",
    "sigmoid": "(a) -> 1 / (1 + exp(-a)), stable for large |a|",
    "abs": "(a)",
    "sign": "(a)",
    "relu": "(a) -> max(a, 0)",
    "relu_backward": "(g, y) -> g where y > 0 else 0",
    "clip": "(a, lo, hi)",
    "where": "(cond, a, b) -> cond bool; a, b arrays or scalars",
    "astype": "(a, dtype) -> a copy converted to dtype",
    "copyto": "(dst, src) -> None; dst[...] = src (src broadcast, cast to dst dtype)",
    # reductions: axis is None, an int or a tuple of ints (already normalised to be non-negative)
    "sum": "(a, axis, keepdims)",
    "max": "(a, axis, keepdims)",
    "min": "(a, axis, keepdims)",
    "argmax": "(a, axis, keepdims) -> int64",
    # layout; reshape/transpose/broadcast_to may return views
    "reshape": "(a, shape)",
    "transpose": "(a, axes)",
    "broadcast_to": "(a, shape)",
    "ascontiguousarray": "(a)",
    "concatenate": "(arrays, axis)",
    "stack": "(arrays, axis)",
    # indexing: index is a tuple of int, slice, None, Ellipsis, or int64/bool index arrays (host ndarray
    # or storage of this backend); NumPy basic + advanced semantics
    "getitem": "(a, index) -> a copy (or view for basic indexing)",
    "setitem": "(a, index, values) -> None; a[index] = values",
    "index_add": "(shape, dtype, index, values) -> zeros(shape) with values added at index; repeats accumulate",
    # linear algebra: numpy matmul semantics for >= 2-D operands (batched, broadcast batch dims)
    "matmul": "(a, b)",
    # fused nn kernels
    "softmax": "(a, axis)",
    "log_softmax": "(a, axis)",
    "softmax_backward": "(y, g, axis) -> dx = y * (g - sum(g * y, axis)); y is softmax's output",
    "log_softmax_backward": "(y, g, axis) -> dx = g - exp(y) * sum(g, axis); y is log_softmax's output",
    "softmax_xent_forward": "(logits (N,C), labels int64 (N,)) -> (loss (N,), probs (N,C)); a label outside "
                            "[0, C) raises ShapeError (a device backend may raise at its next synchronisation)",
    "softmax_xent_backward": "(probs (N,C), labels (N,), g (N,)) -> dlogits (N,C) = (probs - onehot) * g[:,None]",
    "sgd_step": "(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay) -> None, in place",
    "adam_step": "(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled) -> None, in place",
    # convolution, NCHW; stride, padding, dilation are (h, w) int pairs; groups an int
    "conv2d_forward": "(x, w, b_or_None, stride, padding, dilation, groups) -> y",
    "conv2d_backward_input": "(gy, w, x_shape, stride, padding, dilation, groups) -> gx",
    "conv2d_backward_weight": "(gy, x, w_shape, stride, padding, dilation, groups) -> gw",
    # pooling, NCHW; kernel, stride, padding are (h, w) pairs
    "max_pool2d_forward": "(x, kernel, stride, padding) -> (y, argmax int64 flat index into H*W per (n,c))",
    "max_pool2d_backward": "(gy, argmax, x_shape) -> gx",
    "avg_pool2d_forward": "(x, kernel, stride, padding) -> y; padded cells count as zeros, divisor kh*kw",
    "avg_pool2d_backward": "(gy, x_shape, kernel, stride, padding) -> gx",
    # normalisation over every axis but 1 (batch norm) or the trailing n axes (layer norm)
    "batch_norm_forward": "(x, gamma, beta, eps) -> (y, mean (C,), invstd (C,))",
    "batch_norm_backward": "(gy, x, gamma, mean, invstd) -> (gx, ggamma, gbeta)",
    "batch_norm_running_update": "(running_mean, running_var, mean, invstd, momentum, eps, n) -> None, in place: "
                                 "rm = (1 - m) rm + m mean; rv = (1 - m) rv + m (1 / invstd^2 - eps) n / (n - 1)",
    "layer_norm_forward": "(x, gamma, beta, n_axes, eps) -> (y, mean, invstd) (mean/invstd keepdims)",
    "layer_norm_backward": "(gy, x, gamma, mean, invstd, n_axes) -> (gx, ggamma, gbeta)",
    # one LSTM step's gates (backends/composite.py writes them over the primitives; native CPU fuses them).
    # v (N,4H): pre-activations i, f, g, o with the sigmoid gates' columns halved, so u = tanh(v) gives the
    # sigmoid gates as 0.5 u + 0.5 and g = u
    "lstm_gates_forward": "(v (N,4H), c_prev (N,H)) -> (h, c, u = tanh(v) (N,4H), tanh(c))",
    "lstm_gates_backward": "(dh, dc or None (dL/dc_t through later steps), u, c_prev, tanh_c) -> (dv, dc_prev)",
    # whole recurrent sequences over time-major x (T,N,D) (ops/recurrent.py); h0/c0/biases may be None; saved
    # is opaque to the caller; backward gives one gradient per input (None for a None bias)
    "rnn_sequence_forward": "(x, h0, w_ih, w_hh, b_ih, b_hh, reverse) -> (out (T,N,H), saved)",
    "rnn_sequence_backward": "(saved, g) -> (dx, dh0, dw_ih, dw_hh, db_ih, db_hh)",
    "lstm_sequence_forward": "(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse) -> (out (T+1,N,H): h..., last c; saved)",
    "lstm_sequence_backward": "(saved, g) -> (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh)",
    "gru_sequence_forward": "(x, h0, w_ih, w_hh, b_ih, b_hh, reverse, reset_after) -> (out (T,N,H), saved)",
    "gru_sequence_backward": "(saved, g) -> (dx, dh0, dw_ih, dw_hh, db_ih, db_hh)",
}
