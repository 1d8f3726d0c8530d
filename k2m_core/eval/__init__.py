"""Evaluation: tokenizer reconstruction, text-to-motion metrics, physics and critics."""
