"""Generation backends beside transformers' `model.generate`: the vectorised loop detector (`loops`), the GGUF export
(`gguf_export`) and the engines that read it (`engines`: OpenVINO GenAI, llama.cpp), chosen by
`benchmarks/generate_bench.py`.

The engines decode by `models.decoding`, as `generation` does; `generation` plugs them in by `ENGINES`.
"""

# Engine name -> the package that provides it.
ENGINES = {"openvino": "openvino_genai", "llamacpp": "xllamacpp"}
