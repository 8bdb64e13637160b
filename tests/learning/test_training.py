"""Tests of course_utils.learning.training: the training loop and early stopping.

The checkpoint files themselves are tested in test_checkpoints.py.
"""

import math

import pytest
import torch
from torch import nn

import course_utils as cu


def denoising_data(n=32, size=16, seed=0):
    """Smooth random images and noisy copies of them: (noisy, clean) pairs."""
    g = torch.Generator().manual_seed(seed)
    clean = torch.nn.functional.avg_pool2d(torch.rand(n, 1, size + 3, size + 3, generator=g),
                                           4, stride=1)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=g)
    return noisy, clean


def tiny_unet():
    torch.manual_seed(0)
    return cu.UNet(depth=2, width=4)


def test_training_reduces_the_loss():
    train_data, val_data = denoising_data(), denoising_data(8, seed=1)
    model = tiny_unet()
    history = cu.train(model, train_data, val_data, epochs=10, batch_size=8, lr=3e-3,
                       progress=False)
    assert isinstance(history, cu.History)
    assert len(history.train_loss) == len(history.val_loss) == len(history.val_psnr) == 10
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    # the residual U-Net starts as the identity, so it must beat the noisy input
    noisy_psnr = float(cu.psnr(val_data[0], val_data[1], data_range=1.0).mean())
    assert max(history.val_psnr) > noisy_psnr + 2
    assert history.time > 0 and 1 <= history.best_epoch <= 10
    assert "best epoch" in repr(history)
    assert set(history.losses) == {"training", "validation"}


def test_training_is_deterministic():
    data = denoising_data()
    runs = [cu.train(tiny_unet(), data, data, epochs=2, batch_size=8, progress=False,
                     seed=seed) for seed in (0, 0, 1)]
    assert runs[0].train_loss == pytest.approx(runs[1].train_loss, rel=1e-5)
    assert runs[0].val_loss == pytest.approx(runs[1].val_loss, rel=1e-5)
    # another seed shuffles the batches differently: the tolerance above sees that
    assert runs[0].train_loss != pytest.approx(runs[2].train_loss, rel=1e-5)


def test_early_stopping_restores_the_best_weights():
    data = denoising_data(16)
    model = tiny_unet()
    # a far too large learning rate makes the validation loss jump around
    history = cu.train(model, data, data, epochs=30, batch_size=4, lr=0.5, patience=2,
                       progress=False)
    best = history.best_epoch
    assert history.stopped_early and len(history.train_loss) == best + 2
    assert min(history.val_loss) == history.val_loss[best - 1]
    # the model holds the weights of the best epoch: its validation loss is the best one
    model.eval()
    with torch.no_grad():
        loss = nn.functional.mse_loss(model(data[0]), data[1]).item()
    assert loss == pytest.approx(history.val_loss[best - 1], rel=1e-3)
    assert history.val_loss[-1] != pytest.approx(history.val_loss[best - 1], rel=1e-3)


def test_other_data_kinds_and_losses():
    noisy, clean = denoising_data(12)
    dataset = torch.utils.data.TensorDataset(noisy, clean)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    model = tiny_unet()
    history = cu.train(model, dataset, loader, loss="l1", epochs=1, progress=False)
    assert len(history.val_loss) == 1
    history = cu.train(model, loader, loss=lambda out, target: (out - target).abs().max(),
                       epochs=1, progress=False)
    assert history.val_loss == [] and history.best_epoch is None
    with pytest.raises(ValueError, match="loss must be one of"):
        cu.train(model, (noisy, clean), loss="huber", progress=False)
    with pytest.raises(TypeError, match="split.x_fbp"):
        cu.train(model, cu.SparseViewSetting(size=16, n_train=2, n_val=0, n_test=0).train,
                 progress=False)
    with pytest.raises(ValueError, match="same, non-zero number"):
        cu.train(model, (noisy, clean[:3]), progress=False)


def test_checkpoint_during_training(tmp_path):
    data = denoising_data(8)
    model = tiny_unet()
    history = cu.train(model, data, data, epochs=3, checkpoint=tmp_path / "best.pt",
                       progress=False)
    metadata = cu.load_checkpoint(tiny_unet(), tmp_path / "best.pt")
    assert metadata["epoch"] == history.best_epoch
    assert math.isclose(metadata["val_loss"], min(history.val_loss))


def test_integer_arguments_are_checked():
    data = denoising_data(4)
    model = tiny_unet()
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        cu.train(model, data, epochs=0, progress=False)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        cu.train(model, data, batch_size=2.0, progress=False)
    with pytest.raises(TypeError, match="patience must be an int"):
        cu.train(model, data, data, patience=True, progress=False)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        cu.train(lambda x: x, data, progress=False)


def test_train_one_epoch_is_the_inner_loop_of_train():
    noisy, clean = denoising_data(12)
    batches = [(noisy[k:k + 5], clean[k:k + 5]) for k in range(0, 12, 5)]   # 5, 5, 2
    model = tiny_unet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.eval()
    mean_loss = cu.train_one_epoch(model, batches, "mse", optimizer)
    assert model.training                      # put in training mode first

    # the same steps by hand, on a copy of the starting weights
    by_hand = tiny_unet()
    by_hand.train()
    optimizer = torch.optim.SGD(by_hand.parameters(), lr=0.1)
    losses = []
    for inputs, targets in batches:
        loss = nn.functional.mse_loss(by_hand(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # the mean over pairs: batches are weighted by their size
    assert mean_loss == pytest.approx((5 * losses[0] + 5 * losses[1] + 2 * losses[2]) / 12,
                                      rel=1e-4)
    assert mean_loss != pytest.approx(sum(losses) / 3, rel=1e-4)
    for a, b in zip(model.state_dict().values(), by_hand.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_train_one_epoch_takes_a_data_loader_and_refuses_a_single_pair():
    noisy, clean = denoising_data(16)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(noisy, clean),
                                         batch_size=4, shuffle=True)
    model = tiny_unet()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = [cu.train_one_epoch(model, loader, nn.functional.mse_loss, optimizer)
              for _ in range(8)]
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(TypeError, match="DataLoader"):
        cu.train_one_epoch(model, (noisy, clean), "mse", optimizer)
    with pytest.raises(ValueError, match="loss must be one of"):
        cu.train_one_epoch(model, loader, "huber", optimizer)
    with pytest.raises(ValueError, match="no training pairs"):
        cu.train_one_epoch(model, [], "mse", optimizer)


def test_history_plot():
    history = cu.History(train_loss=[1.0, 0.5], val_loss=[1.2, 0.6], val_psnr=[20.0, 23.0],
                         best_epoch=2)
    fig = history.plot()
    assert len(fig.axes) == 2
    ax = cu.plot_curves(history.losses, logy=True)
    assert len(ax.lines) == 2
