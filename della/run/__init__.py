"""Running a model: one training loop for every model (train.py), records to tensors (batches.py),
tokenizers (tokenizer.py), sequence lengths (lengths.py), memory per token (memory.py), TF32
(numerics.py), data parallelism (distributed.py), sampling (generate.py) and evaluation
(evaluate.py)."""
