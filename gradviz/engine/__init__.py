"""The autodiff engine: tensors that record a tape, and the passes that walk it."""
