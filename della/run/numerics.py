"""TF32: whether float32 matrix products on a CUDA card of compute capability 8 or newer (Ampere,
Hopper, ...) round their inputs to TensorFloat-32 (10-bit mantissa), several times faster than
IEEE float32 and with about 1e-3 relative error per product.

It changes numbers, so it is a named setting (`tf32` in the config, `--tf32` of train / generate /
evaluate) and every metrics.json and train_done.json records whether it was in effect. The
default is on: the paper trained on an RTX 3090 (Ampere) in 2021-22, when PyTorch 1.7-1.11 ran
float32 matmuls as TF32 on such cards by default; the official code sets nothing
(docs/paper-vs-code.md). It does nothing on the CPU or on older cards.
"""

from __future__ import annotations

ON, OFF = "on", "off"
# the first CUDA compute capability with TF32 tensor cores (Ampere)
TF32_MIN_CAPABILITY = 8


def set_tf32(enabled: bool) -> None:
    """TF32 for CUDA matmuls and cuDNN convolutions on (`tf32`) or off (IEEE float32), through
    PyTorch's per-backend `fp32_precision` (not the legacy `allow_tf32`: mixing the two is an
    error in PyTorch 2.9+)."""
    import torch

    precision = "tf32" if enabled else "ieee"
    torch.backends.cuda.matmul.fp32_precision = precision
    torch.backends.cudnn.conv.fp32_precision = precision


def tf32_in_effect(device) -> str:
    """What a number computed on `device` (a torch.device) met: on, off, or why TF32 does not apply."""
    import torch

    if device.type != "cuda":
        return f"does not apply ({device.type})"
    major, _ = torch.cuda.get_device_capability(device)
    if major < TF32_MIN_CAPABILITY:
        return f"does not apply (compute capability {major}.x has no TF32)"
    return ON if torch.backends.cuda.matmul.fp32_precision == "tf32" else OFF
