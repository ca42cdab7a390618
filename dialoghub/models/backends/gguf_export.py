"""A transformers Llama (SmolLM2, the tiny test models) written as a float32 GGUF file, with the `gguf` library.

The engines of this package read GGUF. The project's base model comes from a GGUF already, but a base with an
adapter merged into it, or a tiny random test model, does not: this writes them. It does what llama.cpp's
`convert_hf_to_gguf.py` does for a Llama, with gguf's own tensor-name map and vocabulary readers: the hyper-parameters
as GGUF keys, the byte-level BPE vocabulary with its merges and special tokens, every tensor under its GGUF name,
and the query/key projections permuted to GGUF's rotary layout (transformers' GGUF loader undoes it on reading, so
`AutoModelForCausalLM.from_pretrained(folder, gguf_file=...)` gives back the same weights: the test checks that).
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

# llama.cpp's names for pre-tokenizers: SmolLM2's, and the fallback for any other byte-level BPE. The engines are given
# token ids, so this matters only to a tool that tokenizes text with the GGUF's own vocabulary.
SMOLLM_PRE_TOKENIZER = "smollm"
DEFAULT_PRE_TOKENIZER = "default"
WEIGHT_TYPES = ("float32", "float16")


def _permute_rotary(weight, heads: int):
    """transformers' rotate-half query/key rows to GGUF's interleaved pairs (llama.cpp's `LlamaModel.permute`)."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def write_llama_gguf(
    model, tokenizer_dir: str | Path, path: str | Path, *, name: str, pre_tokenizer: str, weights: str = "float32"
) -> Path:
    """Write `model` (a transformers LlamaForCausalLM) and the tokenizer saved in `tokenizer_dir` to `path` as a GGUF
    with `weights` "float32" or "float16" matrices (norms stay float32, as llama.cpp writes them; OpenVINO's GGUF
    reader takes float16 but not float32 matrices)."""
    if weights not in WEIGHT_TYPES:
        raise ValueError(f"weights must be one of {sorted(WEIGHT_TYPES)}, got {weights!r}")
    import gguf
    from transformers import AutoTokenizer

    config = model.config
    if config.model_type != "llama":
        raise ValueError(f"only Llama models are written as GGUF here, not {config.model_type!r}")
    tokenizer_dir = Path(tokenizer_dir)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    rope_theta = (getattr(config, "rope_parameters", None) or {}).get("rope_theta") or config.rope_theta

    arch = gguf.MODEL_ARCH.LLAMA
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[arch])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(float(rope_theta))
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if weights == "float32" else gguf.LlamaFileType.MOSTLY_F16)

    vocab = gguf.vocab.BpeVocab(tokenizer_dir)
    tokens, types = [], []
    for text, _score, token_type in vocab.all_tokens():
        tokens.append(text)
        types.append(token_type)
    # The tokenizer's added tokens are CONTROL when special, else USER_DEFINED, as llama.cpp's converter marks them
    # (gguf's BpeVocab reads them from vocab.json as NORMAL). OpenVINO's GGUF reader fails to compile a model whose
    # chat tokens are NORMAL ("Node ReadValue_... contains dead weak ptr").
    for index, added in AutoTokenizer.from_pretrained(tokenizer_dir).added_tokens_decoder.items():
        if index < len(types):
            types[index] = gguf.TokenType.CONTROL if added.special else gguf.TokenType.USER_DEFINED
    if len(tokens) > config.vocab_size:
        raise ValueError(f"the tokenizer has {len(tokens)} tokens, the model's embedding {config.vocab_size} rows")
    for index in range(len(tokens), config.vocab_size):  # rows the tokenizer never produces
        tokens.append(f"[PAD{index}]")
        types.append(gguf.TokenType.UNUSED)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(tokenizer_dir, load_merges=True, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)

    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for key, tensor in model.state_dict().items():
        if tied and key == "lm_head.weight":
            continue
        gguf_name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ValueError(f"no GGUF name for tensor {key!r}")
        data = tensor.detach().to("cpu").float()
        if key.endswith("self_attn.q_proj.weight"):
            data = _permute_rotary(data, heads)
        elif key.endswith("self_attn.k_proj.weight"):
            data = _permute_rotary(data, kv_heads)
        if weights == "float16" and data.dim() == 2:
            data = data.half()
        writer.add_tensor(gguf_name, data.numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
