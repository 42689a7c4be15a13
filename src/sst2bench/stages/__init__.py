"""The pipeline's stages, one module each: settings and earlier results in, one typed result out.

Notebooks call these (and only draw and explain), and the CLI calls the same functions. A stage
whose prerequisite is missing writes a result with ``status: skipped`` and the reason, so the
report can say why. This package imports nothing itself, so each stage depends only on what its
own module imports (the pipeline's cache keys are import closures).
"""
