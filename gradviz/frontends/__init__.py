"""Front ends: ways of describing a computation for gradviz to draw (the CLI expression language, ...)."""
