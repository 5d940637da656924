"""Models of warmpool's custom resources: the single source of truth for the CRDs."""
