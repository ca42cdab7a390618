"""Generation backends beside transformers' `model.generate`: the vectorised loop detector (`loops`), the GGUF export
(`gguf_export`) and the engines that read it (`engines`: OpenVINO GenAI, llama.cpp), chosen by
`benchmarks/generate_bench.py`.

`ENGINES` lives here, in a module without imports, because `generation` reads it while it is being imported and
the engines import `generation` back.
"""

# Engine name -> the package that provides it.
ENGINES = {"openvino": "openvino_genai", "llamacpp": "xllamacpp"}
