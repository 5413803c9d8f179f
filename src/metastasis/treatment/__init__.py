"""Treatment (MODEL.md 5): surgery and residual disease, systemic therapy, radiotherapy with dose limits,
liver resection, palliative care. Pure functions on arrays; the care pathway decides when they apply."""
