"""Compression: the exact seed search, checkpoint readers and the `.seedlm` container.

- `encoder` (with `search_tables`, `search_gemm`, `search_cpu`, `search_torch`): format §4.
- `checkpoints`, `llama2c`: safetensors, Hugging Face folders, torch state dicts, llama2.c.
- `container`: the `.seedlm` file (format §5.1), and `read_header` for its header alone (no torch).
"""
