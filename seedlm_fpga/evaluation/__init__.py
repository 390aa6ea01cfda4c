"""Model evaluation: llama2.c forward pass, tokenizer, data-free baselines, perplexity."""
