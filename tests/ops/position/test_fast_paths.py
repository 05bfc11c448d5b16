"""Where the backends' fast paths run: on a CPU, where they were raced."""

import pytest

from keras_lambda.ops import devices
from keras_lambda.ops.position import fast_paths, spectra


@pytest.mark.parametrize("on_cpu", [True, False], ids=["cpu", "accelerator"])
def test_jax_correlates_one_key_at_a_time_on_a_cpu_only(monkeypatch, on_cpu):
    """JAX's `fft_correlate` fast path takes the per-key form where Keras computes the
    values' spectrum on a CPU (where it was raced), the stacked portable one elsewhere."""
    calls, asked = [], []
    monkeypatch.setattr(spectra, "correlate_per_key", lambda *_: calls.append("per key"))
    monkeypatch.setattr(spectra, "correlate_portable", lambda *_: calls.append("stacked"))
    monkeypatch.setattr(devices, "computes_on_cpu",
                        lambda tensor: asked.append(tensor) or on_cpu)
    value_slots = [("real part", "imaginary part")]
    fast_paths.fast_path("fft_correlate", "jax")(value_slots, None, (8, 8), (4, 4))
    assert calls == ["per key" if on_cpu else "stacked"]
    assert asked == ["real part"]


def test_torch_keeps_the_portable_fft_off_a_cpu(monkeypatch):
    """PyTorch's fast paths (torch.fft on complex tensors) run where Keras computes on a
    CPU; elsewhere its spectrum is the portable (real, imag) pair, which its correlation
    hands to the portable correlation."""
    calls = []
    monkeypatch.setattr(devices, "computes_on_cpu", lambda tensor: False)
    monkeypatch.setattr(spectra, "spectrum_portable", lambda x, lengths: ("real", "imag"))
    monkeypatch.setattr(spectra, "correlate_portable", lambda *_: calls.append("portable"))
    spectrum = fast_paths.fast_path("fft_spectrum", "torch")(None, (8, 8))
    assert spectrum == ("real", "imag")
    fast_paths.fast_path("fft_correlate", "torch")([spectrum], spectrum, (8, 8), (4, 4))
    assert calls == ["portable"]
