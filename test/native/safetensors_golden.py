# Generates the golden safetensors image embedded in test/native/safetensors_test.cpp (kGolden),
# with the reference implementation (pip install safetensors numpy; checked with safetensors 0.8.0):
#   python3 test/native/safetensors_golden.py
# The C++ test parses it and checks every value, and checks that the C++ encoder, given the same
# tensors, writes exactly these bytes.
import numpy as np
from safetensors import TensorSpec, serialize

arrays = {
    "weight": ("float32", [2, 3], (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3)),
    "bias": ("float16", [3], np.array([1.0, -2.5, 65504.0], dtype=np.float16)),
    "bf": ("bfloat16", [2], np.array([0x3F80, 0xBC00], dtype=np.uint16)),  # 1.0, -0.0078125
    "pi": ("float64", [], np.array(np.pi, dtype=np.float64)),
    "ids": ("int64", [3], np.array([-1, 2**40, 7], dtype=np.int64)),
    "mask": ("bool", [4], np.array([True, False, True, True])),
    "empty": ("uint8", [0, 5], np.zeros((0, 5), dtype=np.uint8)),
    "\u00fc\u540d": ("int32", [1], np.array([-123456], dtype=np.int32)),
    "c": ("complex64", [1], np.array([1.5 - 2j], dtype=np.complex64)),
    "f8": ("float8_e4m3fn", [2], np.array([0x38, 0xB8], dtype=np.uint8)),
}
specs = {
    name: TensorSpec(dtype=dtype, shape=shape, data_ptr=a.ctypes.data, data_len=a.nbytes)
    for name, (dtype, shape, a) in arrays.items()
}
out = serialize(specs, metadata={"format": "pt"})
hexs = out.hex()
print(f"// {len(out)} bytes")
for i in range(0, len(hexs), 96):
    print(f'    "{hexs[i:i + 96]}"')
