"""Every model at tiny size: output contract, masking, mixed lengths, grayscale, backward."""

from __future__ import annotations

import pytest
import torch

from tests.training.models.zoo import ATTENTION_MODELS, FRAMES, POOLED_2D, TINY, clip_batch
from training.models import MODEL_NAMES, build_model


def tiny(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, TINY[name])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_output_contract(name):
    frames = FRAMES.get(name, 7)
    x, mask = clip_batch([frames, frames - 2, 3], frames)
    with torch.no_grad():
        out = tiny(name).eval()(x, mask)
    assert out["logits"].shape == (3, 4) and out["logits"].dtype == torch.float32
    assert torch.isfinite(out["logits"]).all()
    attention = out["attention"]
    if name not in ATTENTION_MODELS:
        assert attention is None
        return
    assert attention.shape == (3, 4, frames)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 4))
    assert (attention[~mask[:, None, :].expand(-1, 4, -1)] == 0).all()  # exactly 0, not merely small
    assert (attention[mask[:, None, :].expand(-1, 4, -1)] > 0).all()


@pytest.mark.parametrize("name", POOLED_2D)
def test_padding_changes_nothing(name):
    """A clip padded with garbage (even NaN) frames gives the logits of the unpadded clip, alone or in a batch."""
    model = tiny(name).eval()
    x, mask = clip_batch([8, 5, 2], 8)
    x[1, 6] = float("nan")
    with torch.no_grad():
        out = model(x, mask)
        for i, n in enumerate([8, 5, 2]):
            alone = model(x[i:i + 1, :n], mask[i:i + 1, :n])
            torch.testing.assert_close(out["logits"][i:i + 1], alone["logits"], atol=1e-5, rtol=1e-5)
            if out["attention"] is not None:
                torch.testing.assert_close(out["attention"][i, :, :n], alone["attention"][0], atol=1e-6, rtol=1e-5)
                assert (out["attention"][i, :, n:] == 0).all()


@pytest.mark.parametrize("name", ["c3d", "r2plus1d"])
def test_3d_models_zero_padded_frames(name):
    """3-D CNNs see the fixed-length clip with padded frames set to 0: their content (garbage, NaN) is ignored."""
    model = tiny(name).eval()
    frames = FRAMES.get(name, 8)
    x, mask = clip_batch([frames, 4], frames, seed=1)
    other = x.clone()
    other[1, 4:] = float("nan")
    with torch.no_grad():
        torch.testing.assert_close(model(x, mask)["logits"], model(other, mask)["logits"])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_grayscale_is_expanded(name):
    """C=1 input equals the same frames repeated to 3 channels."""
    model = tiny(name).eval()
    frames = FRAMES.get(name, 5)
    x, mask = clip_batch([frames, 3], frames)
    with torch.no_grad():
        gray = model(x, mask)["logits"]
        rgb = model(x.repeat(1, 1, 3, 1, 1), mask)["logits"]
    torch.testing.assert_close(gray, rgb)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_backward_gives_finite_grads(name):
    model = tiny(name).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    frames = FRAMES.get(name, 6)
    for step in range(2):
        x, mask = clip_batch([frames, 4], frames, seed=step)
        target = torch.tensor([[1.0, 0, 0, 1], [0, 1, 1, 0]])
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x, mask)["logits"], target)
        loss.backward()
        for pname, param in model.named_parameters():
            assert param.grad is not None, pname
            assert torch.isfinite(param.grad).all(), pname
        optimiser.step()
    assert torch.isfinite(loss)


@pytest.mark.parametrize(("mask_rows", "message"), [
    ([[False] * 4], "at least one real frame"),
    ([[1, 1, 0, 1]], "tail padding"),
])
def test_bad_masks(mask_rows, message):
    model = tiny("cnn_lstm").eval()
    x = torch.randn(1, 4, 1, 32, 32)
    with pytest.raises(ValueError, match=message):
        model(x, torch.tensor(mask_rows, dtype=torch.bool))


def test_mask_dtype_and_shape_checked():
    model = tiny("usvn")
    x = torch.randn(2, 4, 1, 32, 32)
    with pytest.raises(ValueError, match="bool tensor of shape"):
        model(x, torch.ones(2, 4))
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(2, 4, 2, 32, 32), torch.ones(2, 4, dtype=torch.bool))


def test_c3d_rejects_other_clip_shapes():
    model = tiny("c3d")
    x, mask = clip_batch([12], 12)
    with pytest.raises(ValueError, match="built for 16 frames of 32x32"):
        model(x, mask)


def test_frame2d_takes_the_max_over_real_frames():
    model = tiny("frame2d").eval()
    x, mask = clip_batch([6, 3], 6)
    with torch.no_grad():
        out = model(x, mask)
    frame = out["frame_logits"]
    assert torch.isneginf(frame[1, 3:]).all()
    torch.testing.assert_close(out["logits"], frame.amax(dim=1))
    torch.testing.assert_close(torch.sigmoid(out["logits"]), torch.sigmoid(frame).amax(dim=1))
