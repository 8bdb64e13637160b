"""Networks of the learned lessons: the U-Net of FBPConvNet, and a parameter counter.

Both are taught in lesson 03 (CNN denoising and FBPConvNet).

The U-Net (Ronneberger et al., 2015) is the workhorse of learned post-processing: in
FBPConvNet (Jin et al., 2017) it takes the streaky FBP image of sparse-view data and
returns a clean one.  Picture a "U":

* the **left arm** (encoder) looks at the image at ever coarser scales: at each level two
  3 x 3 convolutions (each followed by batch normalisation and a ReLU), then a 2 x 2 max
  pooling halves the height and width while the next level doubles the channels;
* the **bottom** works on the coarsest image, where each 3 x 3 convolution covers a
  patch ``2**(depth - 1)`` times wider: that is what widens the receptive field.  It is
  wide, not unlimited: with ``depth=3`` one output pixel depends on a 44 x 44 pixel patch
  of the input (measured as the support of the gradient of one output pixel, at 64 x 64
  and at 128 x 128 alike), so on images larger than that it does not see the whole
  image; each further level roughly doubles the reach (FBPConvNet used 5 levels for
  512 x 512 images);
* the **right arm** (decoder) goes back up: a 2 x 2 transposed convolution doubles the
  height and width, the result is concatenated with the encoder's features of the same
  scale (the **skip connection**, which brings back the fine detail lost by pooling),
  and two 3 x 3 convolutions mix them;
* a final 1 x 1 convolution maps the features to the output channels.

With ``residual=True`` the network adds its input to its output, :math:`f(x) = x +
g(x)`: the layers only have to learn the *artefacts* :math:`g(x) \\approx x^* - x`, which
are simpler than the image itself (residual learning, as in FBPConvNet).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..arrays import check_int

__all__ = ["UNet", "count_parameters"]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of a model: the sum of the sizes of its tensors.

    Taught in lesson 03 (CNN denoising, section 2: a small CNN), where it compares the
    small CNN with the U-Net; later lessons count their networks with it.

    Parameters
    ----------
    model : torch.nn.Module
    trainable_only : bool
        Count only parameters with ``requires_grad=True`` (default).

    Returns
    -------
    int
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


#: The layers of a 2D and of a 3D U-Net: convolution, batch norm, transposed convolution.
_LAYERS = {2: (nn.Conv2d, nn.BatchNorm2d, nn.ConvTranspose2d),
           3: (nn.Conv3d, nn.BatchNorm3d, nn.ConvTranspose3d)}


def _conv_block(in_channels: int, out_channels: int, batch_norm: bool,
                dims: int = 2) -> nn.Sequential:
    """Two (3 x 3 convolution, batch normalisation, ReLU); the image size is kept."""
    conv, norm, _ = _LAYERS[dims]
    layers = []
    for channels in (in_channels, out_channels):
        # With batch normalisation a bias is redundant: BN subtracts the mean anyway.
        layers.append(conv(channels, out_channels, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(norm(out_channels))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """The U-Net of FBPConvNet: images ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.

    Taught in lesson 03 (CNN denoising, section 7: FBPConvNet, the U-Net); lessons 06
    and 07 compare against it.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and the output images (1 for a CT slice).
    depth : int
        Number of levels of the "U" (scales): the image is halved ``depth - 1`` times.
        ``depth=1`` is a plain convolutional network without pooling.
    width : int
        Channels at the first level; level ``l`` has ``width * 2**l`` channels.
    residual : bool
        Return ``input + network(input)`` (needs ``in_channels == out_channels``).  The
        last convolution then starts at zero, so that an untrained network is the
        identity: training starts from the input image (e.g. the FBP), not from noise.
    batch_norm : bool
        Batch normalisation after every 3 x 3 convolution.
    dims : {2, 3}
        2 for images ``(B, C, H, W)`` (the default); 3 for volumes ``(B, C, D, H, W)``,
        with 3 x 3 x 3 convolutions and 2 x 2 x 2 pooling (lesson 13, section 5: a 3D
        U-Net after FDK).

    Raises
    ------
    TypeError
        If a channel count, ``depth`` or ``width`` is not an int.
    ValueError
        If one of them is below 1, or ``residual=True`` with different channel counts.

    Notes
    -----
    Receptive field: 44 x 44 pixels for ``depth=3`` (lesson 03, section 7, measures it),
    whatever the image size.  Any ``H, W`` works: the input is zero-padded at the bottom and the right to a
    multiple of ``2**(depth - 1)`` (so that pooling and up-sampling meet again) and the
    output is cropped back.  Parameters: about ``7 * width**2 * 4**depth``
    (0.12 M for ``depth=3, width=16``; 0.47 M for ``depth=3, width=32``).

    References
    ----------
    O. Ronneberger, P. Fischer and T. Brox (2015). U-Net: convolutional networks for
    biomedical image segmentation. MICCAI, LNCS 9351, 234-241.
    K. H. Jin, M. T. McCann, E. Froustey and M. Unser (2017). Deep convolutional neural
    network for inverse problems in imaging. IEEE Transactions on Image Processing 26(9),
    4509-4522.

    Examples
    --------
    >>> net = UNet(depth=3, width=16)
    >>> net(torch.rand(4, 1, 60, 61)).shape
    torch.Size([4, 1, 60, 61])
    >>> UNet(depth=3, width=8, dims=3)(torch.rand(2, 1, 20, 24, 17)).shape
    torch.Size([2, 1, 20, 24, 17])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, depth: int = 3,
                 width: int = 32, residual: bool = True, batch_norm: bool = True,
                 dims: int = 2):
        super().__init__()
        if dims not in _LAYERS:
            raise ValueError(f"dims must be 2 (images) or 3 (volumes), got {dims!r}")
        in_channels = check_int(in_channels, "in_channels")
        out_channels = check_int(out_channels, "out_channels")
        depth = check_int(depth, "depth")
        width = check_int(width, "width")
        if residual and in_channels != out_channels:
            raise ValueError(f"residual=True adds the input to the output, so in_channels "
                             f"and out_channels must be equal, got {in_channels} and "
                             f"{out_channels}")
        self.in_channels, self.depth, self.residual = in_channels, depth, residual
        self.dims = dims
        conv, _, transposed = _LAYERS[dims]
        channels = [width * 2**level for level in range(depth)]

        self.down = nn.ModuleList()        # encoder blocks, finest level first
        previous = in_channels
        for c in channels:
            self.down.append(_conv_block(previous, c, batch_norm, dims))
            previous = c
        self.upsample = nn.ModuleList()    # decoder, coarsest level first
        self.up = nn.ModuleList()
        for c in reversed(channels[:-1]):
            self.upsample.append(transposed(2 * c, c, kernel_size=2, stride=2))
            self.up.append(_conv_block(2 * c, c, batch_norm, dims))   # 2c: skip + upsampled
        self.output = conv(channels[0], out_channels, kernel_size=1)
        if residual:
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layout = "(B, C, H, W)" if self.dims == 2 else "(B, C, D, H, W)"
        if x.dim() != self.dims + 2:
            raise ValueError(f"this UNet (dims={self.dims}) expects "
                             f"{'images' if self.dims == 2 else 'volumes'} of shape "
                             f"{layout}, got {tuple(x.shape)}; add dimensions with "
                             f"x[:, None] or x[None, None]")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"UNet expects {self.in_channels} input channel(s), "
                             f"got {x.shape[1]} (shape {tuple(x.shape)})")
        size = x.shape[2:]
        multiple = 2 ** (self.depth - 1)
        # zero padding at the end of every spatial axis, up to a multiple of 2**(depth-1)
        padding = [p for n in reversed(size) for p in (0, -n % multiple)]
        h = F.pad(x, padding)
        pool = F.max_pool2d if self.dims == 2 else F.max_pool3d

        skips = []
        for level, block in enumerate(self.down):
            if level > 0:
                h = pool(h, 2)
            h = block(h)
            skips.append(h)
        skips.pop()                       # the bottom has no skip connection
        for upsample, block in zip(self.upsample, self.up):
            h = block(torch.cat([skips.pop(), upsample(h)], dim=1))
        out = self.output(h)[(..., *(slice(0, n) for n in size))]
        return x + out if self.residual else out
