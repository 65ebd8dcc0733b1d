"""Masking of the model's output by the offered tools.

- `toolmodal.masking.grammar`: the hard-masking language (reasoning, then calls to offered tools
  only) as a JSON schema, xgrammar EBNF, Lark (llguidance) and a regex (outlines).
- `toolmodal.masking.hard`: `HardMasker`, grammar-constrained logits processors for
  transformers (xgrammar default; llguidance and outlines selectable), cached per tool set.
- `toolmodal.masking.soft`: `SoftMasker`, a logit bias towards offered tool names.

Deliberately left out: engines (they pick a masker per request's mask mode).
"""
