"""The interactive (click-trained) model: its training data, recipe and training command."""
