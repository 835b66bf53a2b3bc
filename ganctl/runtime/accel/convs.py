"""Convolutions on small feature maps as plain matrix products (CPU, bf16).

oneDNN, PyTorch's CPU convolution library, is slow where a layer has many channels and few
positions. Measured on an AVX-512 BF16 CPU (``benchmarks/gemm_convs.py``):

- The 4x4 -> 8x8 transposed convolution of the DCGAN generator at batch 128 computes its weight
  gradient at a quarter of the bf16 peak (128 ms; 48 ms as a matrix product).
- The U-Net's 1x1 to 8x8 layers at batch 1 spend 4-12 ms per weight gradient that is worth
  about 2 ms of memory traffic.

Each of a convolution's three products (the output, the input gradient, the weight gradient) is
one matrix product between the weights and the image patches, or into them (the patches are then
summed back into the map). :class:`GemmConv2d` and :class:`GemmConvTranspose2d` compute exactly
what ``nn.Conv2d`` and ``nn.ConvTranspose2d`` compute, with the same parameters and state_dict
keys: :func:`accelerate` turns a built network's ``nn`` layers into them in place (and
:func:`as_plain_nn` back). On the CPU in bf16 they take that route for the products
:func:`route_for` picks; everywhere else, and for the other products, they are the ``nn`` modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_forced = None  # a Route every eligible layer takes (benchmarks/gemm_convs.py), or None: the rule


def force_route(route: Route | None) -> None:
    """Make every eligible layer take ``route`` instead of :func:`route_for`'s (None: the rule again)."""
    global _forced
    _forced = route


@dataclass(frozen=True)
class Route:
    """Which of a convolution's three products run as matrix products (the rest go to oneDNN)."""

    output: bool
    input_grad: bool
    weight_grad: bool


def has_amx() -> bool:
    """The CPU has AMX tiles (Intel Sapphire Rapids on), on which oneDNN's bf16 kernels are faster."""
    global _amx
    if _amx is None:
        probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
        try:
            _amx = bool(probe()) if probe is not None else False
        except RuntimeError:
            _amx = False
    return _amx


_amx: bool | None = None


def route_for(positions: int, batch: int, transposed: bool, in_channels: int = 0, out_channels: int = 0,
              amx: bool | None = None) -> Route | None:
    """The route for a layer whose smaller map has ``positions`` per image (None: all oneDNN);
    ``amx`` (default: what this CPU has) picks the thresholds measured with AMX.

    ``rows`` = positions x batch is the height of the matrices. From ``benchmarks/gemm_convs.py``
    in bf16 (every layer of the pix2pix, DCGAN and WGAN-GP trainings, both ways), on an AMD EPYC
    with AVX-512 BF16 and no AMX:

    - outputs: the product wins up to 256 rows (the U-Net's 16x16 and smaller maps at batch 1),
      and on 4x4 maps up to 2048 rows (DCGAN's 4x4 -> 8x8 layer at batch 128: 50 against 68 ms);
      oneDNN wins from about 1,000 rows of larger maps (the PatchGAN's 31x31 layers, 8x8 maps at
      batch 128). A transposed layer to one channel (the MNIST generators' last) gains 2.5x.
    - input gradients: the same for transposed layers. For ordinary ones oneDNN is as fast from
      about 128 rows, except where the input has one channel (the MNIST discriminators' first
      layer: 2.9 against 8.2 ms) and so the product is a thin matrix.
    - weight gradients: oneDNN is slowest here (128 against 48 ms for DCGAN's 4x4 -> 8x8 layer).
      The product wins up to 1,024 rows, and up to 8,192 on maps of at most 8x8; not for a layer
      to one channel (a matrix-vector product: the PatchGAN's last layer).

    With AMX (an Intel Xeon, 2026-12-05, two runs) oneDNN wins three of those back: an ordinary
    layer's output above 64 rows (the U-Net's 32x32 -> 16x16 layer: 1.6 against 2.0 ms), and a
    weight gradient above 512 rows of a map larger than 8x8 (the PatchGAN's 31x31 layer: 5.8-6.1
    against 7.1-7.7 ms); an ordinary layer's input gradient goes to the product up to 256 rows
    (that U-Net layer: 1.6-1.8 against 2.1-2.5 ms). DCGAN's layers at batch 128 route as without.
    """
    if amx is None:
        amx = has_amx()
    rows = positions * batch
    small_map = positions <= 16 and rows <= 2048
    to_one = out_channels == 1
    out_rows = 256 if transposed or not amx else 64
    in_rows = 256 if amx else 64
    w_rows = 512 if amx else 1024
    route = Route(
        output=rows <= out_rows or small_map or (transposed and to_one),
        input_grad=(rows <= 256 or small_map or to_one) if transposed else (rows <= in_rows or in_channels == 1),
        weight_grad=(rows <= w_rows or (positions <= 64 and rows <= 8192)) and not (to_one and rows > 256),
    )
    return route if route.output or route.input_grad or route.weight_grad else None


def _conv_size(size: int, k: int, stride: int, padding: int) -> int:
    """A convolution's output length along one axis (also a transposed convolution's input length)."""
    return (size + 2 * padding - k) // stride + 1


def _eligible(module: nn.Module) -> bool:
    """The geometry the matrix route computes: one group, no dilation, zero padding given as
    numbers, and for a transposed layer no output padding."""
    return (module.groups == 1 and module.dilation == (1, 1) and module.padding_mode == "zeros"
            and not isinstance(module.padding, str) and getattr(module, "output_padding", (0, 0)) == (0, 0))


def _route(module: nn.Module, x: torch.Tensor, transposed: bool) -> Route | None:
    if not (x.device.type == "cpu" and x.dim() == 4 and _eligible(module)):
        return None
    if not (x.dtype == torch.bfloat16 or (torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)):
        return None
    if transposed:
        positions = x.shape[2] * x.shape[3]
    else:
        k, st, pd = module.kernel_size, module.stride, module.padding
        ho, wo = _conv_size(x.shape[2], k[0], st[0], pd[0]), _conv_size(x.shape[3], k[1], st[1], pd[1])
        if ho <= 0 or wo <= 0:  # a kernel larger than the padded input: nn's own error says so
            return None
        positions = ho * wo
    if _forced is not None:
        return _forced
    return route_for(positions, x.shape[0], transposed, module.in_channels, module.out_channels)


def _low_precision(*tensors):
    """Autocast's cast for a CPU matrix product, done here because autocast does not see inside the
    Function (the patch gathers and the matrix products run with autocast off)."""
    if torch.is_autocast_enabled("cpu"):
        dtype = torch.get_autocast_dtype("cpu")
        return tuple(t if t is None else t.to(dtype) for t in tensors)
    return tensors


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B*H*W, C), one row per position (free for a channels_last tensor)."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _from_rows(rows: torch.Tensor, b: int, h: int, w: int) -> torch.Tensor:
    """(B*H*W, C) -> (B, C, H, W) laid out channels_last (no copy)."""
    return rows.view(b, h, w, -1).permute(0, 3, 1, 2)


def _padded_nhwc(x: torch.Tensor, padding) -> torch.Tensor:
    """x (B, C, H, W) in any layout as a (B, H + 2ph, W + 2pw, C) row-major tensor, zero-padded
    (no copy for an unpadded channels_last x)."""
    b, c, h, w = x.shape
    ph, pw = padding
    if not (ph or pw):
        return x.permute(0, 2, 3, 1).contiguous()
    xp = x.new_zeros((b, h + 2 * ph, w + 2 * pw, c))
    xp[:, ph:ph + h, pw:pw + w] = x.permute(0, 2, 3, 1)
    return xp


def _patch_view(t: torch.Tensor, k, stride, cmajor: bool) -> torch.Tensor:
    """Every kernel-sized patch of a padded (B, Hp, Wp, C) row-major tensor, as a strided view
    (B, Ho, Wo, kh, kw, C), or (B, Ho, Wo, C, kh, kw) with ``cmajor``."""
    b, hp, wp, c = t.shape
    sb, sy, sx, sc = t.stride()
    size = (b, _conv_size(hp, k[0], stride[0], 0), _conv_size(wp, k[1], stride[1], 0))
    strides = (sb, stride[0] * sy, stride[1] * sx)
    if cmajor:
        return t.as_strided((*size, c, k[0], k[1]), (*strides, sc, sy, sx), t.storage_offset())
    return t.as_strided((*size, k[0], k[1], c), (*strides, sy, sx, sc), t.storage_offset())


def _patches(x: torch.Tensor, k, stride, padding, cmajor: bool) -> torch.Tensor:
    """Every kernel-sized patch of x as a row: (B*L, kh*kw*C) position-major, which pairs with a
    channels_last weight, or (B*L, C*kh*kw) channel-major (``cmajor``), which pairs with an
    NCHW-contiguous weight viewed as (out, C*kh*kw); either way the weight is used without a copy.
    One gather from the padded NHWC map (``unfold`` and a transpose took 10x longer)."""
    view = _patch_view(_padded_nhwc(x, padding), k, stride, cmajor)
    return view.reshape(-1, k[0] * k[1] * x.shape[1])


def _unpatch(rows: torch.Tensor, b: int, c: int, size, k, stride, padding, cmajor: bool) -> torch.Tensor:
    """The adjoint of :func:`_patches`: sum patch rows back into a (B, C, H, W) map (channels_last).
    The overlapping patches are summed in fp32 (or wider), one kernel tap at a time, into a padded NHWC map."""
    h, w = size
    ph, pw = padding
    acc = rows.new_zeros((b, h + 2 * ph, w + 2 * pw, c), dtype=torch.promote_types(rows.dtype, torch.float32))
    dest = _patch_view(acc, k, stride, cmajor)  # the same positions, as a view of the accumulator
    src = rows.view(dest.shape)
    for i in range(k[0]):
        for j in range(k[1]):
            tap = (slice(None),) * 3 + ((slice(None), i, j) if cmajor else (i, j))
            dest[tap].add_(src[tap])
    out = torch.empty((b, c, h, w), dtype=rows.dtype, device=rows.device, memory_format=torch.channels_last)
    out.permute(0, 2, 3, 1).copy_(acc[:, ph:ph + h, pw:pw + w])
    return out


def _kernel_rows(weight: torch.Tensor, cmajor: bool) -> torch.Tensor:
    """(A, B, kh, kw) -> (A, B*kh*kw) or (A, kh*kw*B): a view of a weight in the matching layout."""
    if cmajor:
        return weight.reshape(weight.shape[0], -1)
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


def _kernel_from_rows(rows: torch.Tensor, shape, cmajor: bool) -> torch.Tensor:
    """The inverse of :func:`_kernel_rows`: a weight gradient in its weight's layout."""
    if cmajor:
        return rows.view(shape)
    a, bb, kh, kw = shape
    return rows.view(a, kh, kw, bb).permute(0, 3, 1, 2)


class _Conv(torch.autograd.Function):
    """conv2d (``transposed`` False, weight (out, in, kh, kw)) or conv_transpose2d (weight (in, out,
    kh, kw)) with stride and padding, each of the three products (output, input gradient, weight
    gradient) computed by oneDNN or as a matrix product, as ``route`` says."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, transposed, route):
        ctx.save_for_backward(x, weight)
        ctx.geometry = (stride, padding, transposed, route, bias is not None)
        if not route.output:
            conv = F.conv_transpose2d if transposed else F.conv2d
            return conv(x, weight, bias, stride, padding)
        b, _, h, w = x.shape
        k = weight.shape[2:]
        cm = weight.is_contiguous()
        if transposed:
            size = ((h - 1) * stride[0] - 2 * padding[0] + k[0], (w - 1) * stride[1] - 2 * padding[1] + k[1])
            out = _unpatch(_rows(x) @ _kernel_rows(weight, cm), b, weight.shape[1], size, k, stride, padding, cm)
            return out if bias is None else out.add_(bias.view(1, -1, 1, 1))
        ho, wo = _conv_size(h, k[0], stride[0], padding[0]), _conv_size(w, k[1], stride[1], padding[1])
        # written through a row view into a channels_last tensor, so the output is no view (the
        # in-place activations after it could not modify a view made inside a Function)
        out = torch.empty((b, weight.shape[0], ho, wo), dtype=x.dtype, memory_format=torch.channels_last)
        torch.mm(_patches(x, k, stride, padding, cm), _kernel_rows(weight, cm).t(), out=_rows(out))
        return out if bias is None else out.add_(bias.view(1, -1, 1, 1))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, transposed, route, has_bias = ctx.geometry
        grad = grad.to(weight.dtype)
        k = weight.shape[2:]
        cm = weight.is_contiguous()
        grad_x = grad_w = grad_b = None
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if transposed:
            # y = x W scattered into the output's patches: dx = patches(dy) W^T, dW = x^T patches(dy)
            patches = _patches(grad, k, stride, padding, cm) if (need_x and route.input_grad) or (need_w and route.weight_grad) else None
            if need_x and route.input_grad:
                grad_x = _from_rows(patches @ _kernel_rows(weight, cm).t(), x.shape[0], x.shape[2], x.shape[3])
            if need_w and route.weight_grad:
                grad_w = _kernel_from_rows(_rows(x).t() @ patches, weight.shape, cm)
        else:
            # y = patches(x) W^T: dx = unpatch(dy W), dW = dy^T patches(x)
            rows = _rows(grad)
            if need_x and route.input_grad:
                grad_x = _unpatch(rows @ _kernel_rows(weight, cm), x.shape[0], x.shape[1], x.shape[2:], k, stride, padding, cm)
            if need_w and route.weight_grad:
                grad_w = _kernel_from_rows(rows.t() @ _patches(x, k, stride, padding, cm), weight.shape, cm)
        native = ((need_x and not route.input_grad), (need_w and not route.weight_grad))
        if any(native):
            nx, nw, _ = torch.ops.aten.convolution_backward(
                grad, x, weight, None, list(stride), list(padding), [1, 1], transposed, [0, 0], 1, [*native, False])
            grad_x = nx if native[0] else grad_x
            grad_w = nw if native[1] else grad_w
        if has_bias and need_b:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None


def _apply(module: nn.Module, x: torch.Tensor, transposed: bool, route: Route) -> torch.Tensor:
    x, w, b = _low_precision(x, module.weight, module.bias)
    with torch.autocast("cpu", enabled=False):
        return _Conv.apply(x, w, b, module.stride, module.padding, transposed, route)


class GemmConv2d(nn.Conv2d):
    """``nn.Conv2d`` that runs as matrix products on small CPU feature maps (see the module doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        route = _route(self, x, transposed=False)
        return super().forward(x) if route is None else _apply(self, x, False, route)


class GemmConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` that runs as matrix products on small CPU feature maps."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        route = _route(self, x, transposed=True) if output_size is None else None
        return super().forward(x, output_size) if route is None else _apply(self, x, True, route)


_GEMM = {nn.Conv2d: GemmConv2d, nn.ConvTranspose2d: GemmConvTranspose2d}
_PLAIN = {v: k for k, v in _GEMM.items()}


def accelerate(net: nn.Module) -> int:
    """Turn every eligible ``nn.Conv2d`` / ``nn.ConvTranspose2d`` of ``net`` (exactly those classes,
    not subclasses) into its matrix-route class, in place; returns how many. The class is swapped,
    nothing else: the parameters, their layout, hooks and state_dict keys stay as they are."""
    n = 0
    for m in net.modules():
        cls = _GEMM.get(type(m))
        if cls is not None and _eligible(m):
            m.__class__ = cls
            n += 1
    return n


def as_plain_nn(net: nn.Module) -> nn.Module:
    """The inverse of :func:`accelerate`, in place (the parameters stay): the network then runs on
    PyTorch's own convolutions everywhere."""
    for m in net.modules():
        cls = _PLAIN.get(type(m))
        if cls is not None:
            m.__class__ = cls
    return net
