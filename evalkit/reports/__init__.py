"""Reports built from result files: the seed article's comparison table (``seed``)."""
