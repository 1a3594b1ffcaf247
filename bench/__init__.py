"""The performance bench: ratios measured side by side in one run (``python -m bench``).

Not part of the product package: it measures ``attention_lens`` against the reader's and floor
forms of each mechanism (reference_attention.py), which only the bench and the tests use.
"""
