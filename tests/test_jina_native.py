"""The native Jina v2 backend against Jina's own modelling code.

The reference vectors in tests/fixtures/jina_tiny/reference.json were computed by Jina's code
(jinaai/jina-bert-implementation on transformers 4.57, a throw-away environment; the fixture's
README says how) from the committed tiny checkpoint. Here evalkit's native encoder, on the
installed transformers 5.x and without any remote code, must reproduce them to 1e-5 in float32
on the CPU, under every weight layout found in the wild; and must refuse a checkpoint that is
not the model its config describes, naming the keys.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from evalkit.encoders import jina_bert
from evalkit.encoders.base import BatchReport, Role
from evalkit.encoders.backends.jina import build, load_view
from evalkit.errors import ConfigError
from evalkit.schema import validate_model_config
from tests.fixtures.jina_tiny import FOLDER, REFERENCE, relayout

TOL = 1e-5
REF = json.loads(REFERENCE.read_text(encoding="utf-8"))
TEXTS = REF["texts"]
SHORT_BATCH = REF["batches"][0]  # four short texts of different lengths
LONG_BATCH = REF["batches"][3]  # a short text padded to a ~3,000-token one


def jina_cfg(folder=FOLDER, **kw):
    return validate_model_config({"backend": "jina", "name": "jina_tiny", "model_id": str(folder), "device": "cpu",
                                  "dtype": "float32", **kw})


def ids_of(encoder, texts):
    return [encoder.view.with_specials(c) for c in encoder.view.encode(texts)]


def batch_vectors(encoder, indices):
    return encoder.forward_ids(ids_of(encoder, [TEXTS[i] for i in indices]))


@pytest.fixture(scope="module")
def native():
    encoder = build(jina_cfg())
    yield encoder
    encoder.close()


@pytest.fixture(scope="module")
def native_singles(native):
    """Every reference text encoded alone (two of them ~3,000 tokens)."""
    return np.concatenate([native.forward_ids([ids]) for ids in ids_of(native, TEXTS)])


@pytest.fixture(scope="module")
def native_batches(native):
    """The reference's padded batches: four short texts; a short one padded to ~3,000 tokens."""
    return [batch_vectors(native, batch["indices"]) for batch in (SHORT_BATCH, LONG_BATCH)]


def test_native_vectors_equal_jina_reference_alone_and_in_padded_batches(native, native_singles, native_batches):
    assert native.meta.backend == "jina" and native.meta.extra["key_layout"] == "plain"
    assert np.abs(native_singles - np.asarray(REF["singles"])).max() <= TOL
    for got, batch in zip(native_batches, (SHORT_BATCH, LONG_BATCH)):
        assert np.abs(got - np.asarray(batch["vectors"])).max() <= TOL, batch["indices"]
    # not trivially equal: the texts' vectors differ from each other far beyond the tolerance
    assert np.abs(native_singles[0] - native_singles[1]).max() > 100 * TOL


def test_padding_does_not_change_a_texts_vector(native_singles, native_batches):
    for got, batch in zip(native_batches, (SHORT_BATCH, LONG_BATCH)):
        assert np.abs(got - native_singles[batch["indices"]]).max() <= TOL


@pytest.mark.parametrize("layout", [{"bert_prefix": True}, {"fmt": "bin"}, {"bert_prefix": True, "fmt": "bin"}],
                         ids=["bert_prefix+mlm_head", "pytorch_model.bin", "bert_prefix.bin"])
def test_every_weight_layout_gives_the_reference_vectors(tmp_path, layout):
    encoder = build(jina_cfg(relayout(FOLDER, tmp_path / "ckpt", **layout)))
    assert encoder.meta.extra["key_layout"] == ("bert." if layout.get("bert_prefix") else "plain")
    assert encoder.meta.extra["weights"] == ("pytorch_model.bin" if layout.get("fmt") == "bin" else "model.safetensors")
    got = batch_vectors(encoder, SHORT_BATCH["indices"])
    assert np.abs(got - np.asarray(SHORT_BATCH["vectors"])).max() <= TOL


def test_encode_streams_token_budget_batches_and_reports_truncation(native):
    reports: list[BatchReport] = []

    class Hooks:
        def on_batch_end(self, report):
            reports.append(report)

    encoder = build(jina_cfg(max_length=64))
    encoder.hooks = Hooks()
    texts = [TEXTS[i] for i in SHORT_BATCH["indices"]] + [TEXTS[10]]  # the last: 905 tokens
    vecs = encoder.encode(texts, role=Role.DOCUMENT)
    assert sum(r.n_texts for r in reports) == len(texts)
    assert sum(r.truncated_texts for r in reports) == 1 and sum(r.tokens_cut for r in reports) == 905 - 64
    assert np.abs(vecs[:4] - np.asarray(SHORT_BATCH["vectors"])).max() <= TOL
    # the long text's vector is the one of its first 64 tokens, [SEP] kept at the end
    cut = encoder.tokenizer(TEXTS[10], truncation=True, max_length=64)["input_ids"]
    assert len(cut) == 64 and np.abs(vecs[4] - native.forward_ids([cut])[0]).max() <= TOL
    view = encoder.tokenizer_view()
    assert view.lengths(texts) == [len(x) for x in encoder.tokenizer(texts)["input_ids"]]
    # a rerun whose vectors are all cached gets the same lengths from the tokenizer alone
    assert load_view(jina_cfg(max_length=64)).lengths(texts) == view.lengths(texts)


def test_alibi_slopes_are_the_papers():
    # powers of two: 2^(-8/n), its powers; 12 heads: the 8-head slopes, then every other 16-head slope
    assert jina_bert.alibi_slopes(8) == [2.0 ** -k for k in range(1, 9)]
    expected12 = [2.0 ** -k for k in range(1, 9)] + [2.0 ** -e for e in (0.5, 1.5, 2.5, 3.5)]
    assert np.allclose(jina_bert.alibi_slopes(12), expected12, rtol=1e-12, atol=0)
    assert np.allclose(jina_bert.alibi_slopes(16), [2.0 ** (-k / 2) for k in range(1, 17)], rtol=1e-12, atol=0)


def test_alibi_bias_is_built_for_the_batch_length_only(native, monkeypatch):
    slopes = torch.tensor(jina_bert.alibi_slopes(12))
    bias = jina_bert.alibi_bias(slopes, range(2, 5), 7, torch.float32)
    i, j = np.meshgrid(np.arange(2, 5), np.arange(7), indexing="ij")
    expected = -np.asarray(jina_bert.alibi_slopes(12))[:, None, None] * np.abs(i - j)
    assert bias.shape == (1, 12, 3, 7) and np.allclose(bias[0].numpy(), expected, rtol=1e-6)
    # the model holds no position table at all: no buffers, and no tensor with 8,192 in its shape
    assert list(native.model.buffers()) == []
    assert all(8192 not in p.shape for p in native.model.parameters())
    shapes = []
    real = jina_bert.alibi_bias
    monkeypatch.setattr(jina_bert, "alibi_bias", lambda *a: shapes.append(real(*a).shape) or real(*a))
    native.forward_ids(ids_of(native, ["How is the weather today?", "今天天气怎么样？"]))
    assert shapes == [(1, 12, 10, 10)]  # once per batch (not per layer), its own length


def test_long_batches_attend_in_bounded_blocks_with_the_same_vectors(native, monkeypatch):
    ids = ids_of(native, [TEXTS[6], TEXTS[10]])  # "a" padded to 905 tokens
    whole = native.forward_ids(ids)
    monkeypatch.setattr(jina_bert, "BIAS_BLOCK_ELEMENTS", 2 * 12 * 905 * 100)  # blocks of 100 query rows
    blocks = []
    real = jina_bert.alibi_bias
    monkeypatch.setattr(jina_bert, "alibi_bias", lambda *a: blocks.append(real(*a).shape) or real(*a))
    chunked = native.forward_ids(ids)
    assert len(blocks) == 2 * math.ceil(905 / 100)  # built per layer when the batch needs several blocks
    assert max(b[2] for b in blocks) == 100 and np.abs(chunked - whole).max() <= TOL


def _bad(tmp_path, **edit) -> str:
    with pytest.raises(ConfigError) as info:
        build(jina_cfg(relayout(FOLDER, tmp_path / "bad", **edit)))
    return str(info.value)


def test_missing_keys_are_named(tmp_path):
    msg = _bad(tmp_path, drop=("encoder.layer.1.mlp.wo.weight", "embeddings.LayerNorm.bias"), bert_prefix=True)
    assert "missing keys (2)" in msg and "encoder.layer.1.mlp.wo.weight" in msg and "embeddings.LayerNorm.bias" in msg
    assert "bert. key layout" in msg and "model.safetensors" in msg


def test_unexpected_encoder_keys_are_named_and_unused_heads_ignored(tmp_path):
    # the qk-post-norm variant (jina-embeddings-v2-base-code) and absolute positions: not this model
    extra = {"encoder.layer.0.attention.self.layer_norm_q.weight": torch.ones(24),
             "embeddings.position_embeddings.weight": torch.zeros(8192, 24),
             "pooler.dense.weight": torch.zeros(24, 24)}  # unused by mean pooling: set aside
    msg = _bad(tmp_path, extra=extra)
    assert "unexpected keys (2)" in msg and "layer_norm_q.weight" in msg and "position_embeddings" in msg
    assert "pooler" not in msg


def test_wrong_shapes_are_named(tmp_path):
    extra = {"encoder.layer.0.mlp.gated_layers.weight": torch.zeros(48, 24)}  # GLU needs 2 x intermediate rows
    msg = _bad(tmp_path, extra=extra, fmt="bin")
    assert "wrong shapes (1)" in msg and "encoder.layer.0.mlp.gated_layers.weight (48, 24) (model: (96, 24))" in msg
    assert "pytorch_model.bin" in msg


def test_a_config_this_backend_does_not_compute_is_refused(tmp_path):
    folder = relayout(FOLDER, tmp_path / "absolute")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(cfg | {"position_embedding_type": "absolute"}))
    with pytest.raises(ConfigError, match=r"config.json: position_embedding_type is 'absolute'"):
        build(jina_cfg(folder))
    (folder / "config.json").write_text(json.dumps(cfg | {"feed_forward_type": "swiglu"}))
    with pytest.raises(ConfigError, match=r"feed_forward_type 'swiglu' is not supported; valid: geglu, reglu"):
        build(jina_cfg(folder))
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(ConfigError, match=r"pools by \['pooling_mode_cls_token'\]"):
        build(jina_cfg(folder))


def test_no_weights_file_names_the_folder_and_the_files_looked_for(tmp_path):
    folder = relayout(FOLDER, tmp_path / "empty")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match=r"no weights file; expected one of model.safetensors, pytorch_model.bin"):
        build(jina_cfg(folder))


def test_normalisation_follows_the_checkpoint_unless_set(native, native_singles):
    assert native.normalize is False and native.meta.normalize is False  # the Jina v2 repos: no Normalize module
    unit = build(jina_cfg(normalize=True)).forward_ids(ids_of(native, TEXTS[:3]))
    expected = native_singles[:3] / np.linalg.norm(native_singles[:3], axis=1, keepdims=True)
    assert np.abs(unit - expected).max() <= TOL


def test_cli_runs_jina_v2_base_zh_on_the_tiny_checkpoint_with_the_reference_score(tmp_path):
    """``model=jina_v2_base_zh model.model_id=<folder>`` on the installed transformers (5.x): no remote
    code, and the STSBenchmark score Jina's own code gave through evalkit (transformers 4.57)."""
    from tests.helpers import run_cli

    reference = REF["tasks"]["STSBenchmark"]
    proc = run_cli(["model=jina_v2_base_zh", f"model.model_id={FOLDER}", "model.device=cpu", "task=mteb",
                    "task.names=[STSBenchmark]", "callbacks.progress.mode=off"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = (tmp_path / "outputs" / "results").rglob("STSBenchmark.json")
    record = json.loads(result.read_text(encoding="utf-8"))
    assert record["evalkit"]["main_score"] == pytest.approx(reference["main_score"], abs=1e-6)
    assert "jina_v2_base_zh" in str(result.relative_to(tmp_path))
    assert json.dumps(record).count('"backend": "jina"') >= 1


@pytest.mark.parametrize("mistake", ["reversed_slopes", "slopes_1pct_off", "tanh_gelu", "no_token_type", "no_alibi"])
def test_the_comparison_catches_small_architecture_mistakes(mistake, monkeypatch):
    """The reference is sharp: each of these plausible mistakes moves the vectors far beyond 1e-5."""
    encoder = build(jina_cfg())
    model = encoder.model
    if mistake == "reversed_slopes":
        model._slopes = model._slopes[::-1]
    elif mistake == "slopes_1pct_off":
        model._slopes = [s * 1.01 for s in model._slopes]
    elif mistake == "tanh_gelu":
        for layer in model.encoder.layer:
            layer.gate = torch.nn.GELU(approximate="tanh")
    elif mistake == "no_token_type":
        model.embeddings.token_type_embeddings.weight.data[0] = 0
    else:
        real = jina_bert.alibi_bias
        monkeypatch.setattr(jina_bert, "alibi_bias", lambda *a: real(*a) * 0)
    got = batch_vectors(encoder, SHORT_BATCH["indices"])
    assert np.abs(got - np.asarray(SHORT_BATCH["vectors"])).max() > 10 * TOL


def test_bfloat16_runs_and_stays_close(native):
    """The half-precision path (what ``dtype: auto`` gives on CUDA) on the CPU: same dtype for
    the hidden states, the ALiBi bias and the padding mask; vectors close to float32."""
    encoder = build(jina_cfg(dtype="bfloat16"))
    assert encoder.meta.dtype == "bfloat16" and next(encoder.model.parameters()).dtype == torch.bfloat16
    got = batch_vectors(encoder, SHORT_BATCH["indices"])
    ref = np.asarray(SHORT_BATCH["vectors"])
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    assert got.dtype == np.float32 and cos.min() > 0.99
    assert build(jina_cfg(dtype="auto")).meta.dtype == "float32"  # auto on the CPU


HUB_SCRIPT = """
import json, sys
from evalkit.encoders.backends.jina import build
from evalkit.schema import validate_model_config
cfg = validate_model_config({"backend": "jina", "name": "t", "model_id": sys.argv[1], "revision": sys.argv[2],
                             "device": "cpu", "dtype": "float32"})
enc = build(cfg)
ids = [enc.view.with_specials(c) for c in enc.view.encode(json.loads(sys.argv[3]))]
print(json.dumps({"vectors": enc.forward_ids(ids).tolist(), "meta": enc.meta.revision, "extra": enc.meta.extra}))
"""


def test_hub_id_at_the_pinned_revision_loads_from_the_hub_cache_offline(tmp_path):
    """The hub path (huggingface_hub + revision, offline): the tiny checkpoint placed in a Hugging
    Face cache as the pinned revision of jina_v2_base_zh loads and gives the reference vectors; a
    revision the cache does not hold is an error naming the repository and revision."""
    import os
    import subprocess
    import sys

    from evalkit.variants import load_preset

    preset = load_preset("jina_v2_base_zh")
    repo, revision = preset["model_id"], preset["revision"]
    snapshot = tmp_path / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / revision
    relayout(FOLDER, snapshot)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    texts = json.dumps([TEXTS[i] for i in SHORT_BATCH["indices"]])

    def run(rev):  # a fresh process: huggingface_hub reads HF_HUB_CACHE when imported
        out = subprocess.run([sys.executable, "-c", HUB_SCRIPT, repo, rev, texts], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    got = run(revision)
    assert got["meta"] == revision and got["extra"]["weights"] == "model.safetensors"
    assert np.abs(np.asarray(got["vectors"]) - np.asarray(SHORT_BATCH["vectors"])).max() <= TOL
    with pytest.raises(ConfigError, match=f"{repo}@{'0' * 40}: config.json not found"):
        build(jina_cfg(repo, revision="0" * 40))  # offline, this session's own cache: not there
