"""The cuDNN RNN binding's symbol resolution (backends/cuda/_cudnn_rnn.py) on the CPU, over stand-in libraries:
a symbol libcudnn lacks comes from a sub-library, one that no library has is reported by name, and a cuDNN
status turns into a NativeLibraryError carrying the function's name and cuDNN's message."""

from __future__ import annotations

import pytest

from keydnn.domain.errors import DeviceNotSupportedError, NativeLibraryError
from keydnn.infrastructure.backends.cuda import _cudnn, _cudnn_rnn


class _Fn:
    def __init__(self, status=0):
        self.status, self.calls = status, []

    def __call__(self, *args):
        self.calls.append(args)
        return self.status


class _Lib:
    def __init__(self, names, status=0):
        for n in names:
            setattr(self, n, _Fn(status))


@pytest.fixture()
def fresh(monkeypatch):
    monkeypatch.setattr(_cudnn_rnn, "_rnn_functions", {})
    monkeypatch.setattr(_cudnn_rnn, "_rnn_error", [])
    return monkeypatch


def test_missing_symbols_come_from_a_sublibrary(fresh):
    names = list(_cudnn_rnn._RNN_FUNCTIONS)
    main, adv = _Lib(names[3:]), _Lib(names[:3])
    fresh.setattr(_cudnn_rnn, "lib", lambda: main)
    fresh.setattr(_cudnn_rnn, "_sublibraries", lambda: [adv])
    api = _cudnn_rnn.rnn_api()
    assert api[names[0]] is getattr(adv, names[0]) and api[names[5]] is getattr(main, names[5])
    restype, argtypes = _cudnn_rnn._RNN_FUNCTIONS["cudnnRNNForward"]
    assert api["cudnnRNNForward"].argtypes == argtypes and api["cudnnRNNForward"].restype is restype


def test_absent_symbols_are_named(fresh):
    names = list(_cudnn_rnn._RNN_FUNCTIONS)
    fresh.setattr(_cudnn_rnn, "lib", lambda: _Lib([n for n in names if n != "cudnnRNNBackwardData_v8"]))
    fresh.setattr(_cudnn_rnn, "_sublibraries", lambda: [])
    with pytest.raises(DeviceNotSupportedError, match="cudnnRNNBackwardData_v8"):
        _cudnn_rnn.rnn_api()
    with pytest.raises(DeviceNotSupportedError):  # remembered, not retried
        _cudnn_rnn.rnn_api()


def test_a_failed_call_names_the_function_and_cudnns_message(fresh):
    names = list(_cudnn_rnn._RNN_FUNCTIONS)
    main = _Lib(names, status=3)
    main.cudnnGetErrorString = lambda status: b"CUDNN_STATUS_BAD_PARAM"
    fresh.setattr(_cudnn_rnn, "lib", lambda: main)
    fresh.setattr(_cudnn, "lib", lambda: main)
    with pytest.raises(NativeLibraryError, match=r"lstm_sequence_forward \(cudnnRNNForward\).*BAD_PARAM"):
        _cudnn_rnn.rnn_call("lstm_sequence_forward", "cudnnRNNForward", *([None] * 20))


def test_signatures_have_the_headers_arity():
    """Argument counts of cudnn_adv.h / cudnn_ops.h / cudnn_graph.h (cuDNN 9) for every declared function."""
    arity = {"cudnnCreateRNNDescriptor": 1, "cudnnSetRNNDescriptor_v8": 15, "cudnnGetRNNWeightSpaceSize": 3,
             "cudnnGetRNNTempSpaceSizes": 6, "cudnnGetRNNWeightParams": 10, "cudnnCreateRNNDataDescriptor": 1,
             "cudnnSetRNNDataDescriptor": 8, "cudnnRNNForward": 20, "cudnnRNNBackwardData_v8": 22,
             "cudnnRNNBackwardWeights_v8": 16, "cudnnCreateDropoutDescriptor": 1, "cudnnSetDropoutDescriptor": 6,
             "cudnnSetTensorNdDescriptor": 5, "cudnnGetTensorNdDescriptor": 6}
    assert {n: len(a) for n, (_, a) in _cudnn_rnn._RNN_FUNCTIONS.items()} == arity
