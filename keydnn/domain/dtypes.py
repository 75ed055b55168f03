"""The dtypes KeyDNN tensors may hold, by name (the domain knows names; NumPy dtypes live in infrastructure)."""

FLOAT_DTYPES = ("float32", "float64")
INDEX_DTYPES = ("int64",)
MASK_DTYPES = ("bool",)
SUPPORTED_DTYPES = FLOAT_DTYPES + INDEX_DTYPES + MASK_DTYPES
DEFAULT_FLOAT = "float32"
