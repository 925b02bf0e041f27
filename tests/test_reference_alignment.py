"""eSpeak word timings and the reference alignment path built from them."""

from __future__ import annotations

import numpy as np
import pytest

from taco_jax.data.reference_alignment import one_hot_alignment, reference_path
from taco_jax.demo import WordTiming, synthesize_espeak_words


def test_espeak_reports_every_word_in_order_inside_the_audio():
    text = "one two three four five six"
    audio, sr, words = synthesize_espeak_words(text)
    assert [text[w.char_start : w.char_start + w.n_chars] for w in words] == text.split()
    samples = [w.sample for w in words]
    assert samples == sorted(samples) and samples[0] >= 0 and samples[-1] < len(audio)
    # Six short words at 175 words per minute: consecutive starts are 0.1-0.8 s apart.
    gaps = np.diff(samples) / sr
    assert np.all((gaps > 0.1) & (gaps < 0.8)), gaps


def test_reference_path_interpolates_between_word_starts():
    # "ab cd~": words at chars 0 and 3, starting at samples 0 and 400; 800 samples, 100 samples per step.
    words = [WordTiming(0, 2, 0), WordTiming(3, 2, 400)]
    path = reference_path(words, n_tokens=6, n_samples=800, n_steps=8, samples_per_step=100.0)
    # Step centres 0.5 .. 7.5 steps; chars 0 -> 3 over steps 0 -> 4, then 3 -> 5 (EOS) over steps 4 -> 8.
    # 0.5*3/4=0.375, 1.125, 1.875, 2.625, then 3 + 0.5*2/4 = 3.25, 3.75, 4.25, 4.75 -> rounded.
    np.testing.assert_array_equal(path, [0, 1, 2, 3, 3, 4, 4, 5])
    hard = one_hot_alignment(path, 6)
    assert hard.shape == (8, 6) and np.all(hard.sum(1) == 1) and hard[7, 5] == 1


def test_reference_path_rejects_bad_timings():
    with pytest.raises(ValueError, match="at least one word"):
        reference_path([], 5, 100, 4, 10.0)
    with pytest.raises(ValueError, match="time order"):
        reference_path([WordTiming(0, 1, 50), WordTiming(2, 1, 10)], 5, 100, 4, 10.0)
